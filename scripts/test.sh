#!/usr/bin/env bash
# Install what the tests need, lint, and run the whole suite (unit, golden, protocol, end-to-end
# with real Envoy, curl and openssl). Extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup-env.sh" test
cd "$root"
.venv/bin/ruff check src tests
exec .venv/bin/python -m pytest -n 2 "$@"
