#!/usr/bin/env bash
# Install what the tests need, check style (ruff), types (mypy) and the layers (import-linter),
# and run the whole suite (unit, golden, protocol, end-to-end with real Envoy, curl and
# openssl). Extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup-env.sh" test
cd "$root"
.venv/bin/ruff check src tests bench
.venv/bin/mypy
.venv/bin/lint-imports --no-cache
exec .venv/bin/python -m pytest -n 2 "$@"
