#!/usr/bin/env bash
# Install bastion and run the main job: start the gateway with the httpbin sample and follow
# Istio's Secure Gateways task with `bastion` in place of `kubectl`, printing each command and
# its result. Everything runs on loopback in a temporary directory and is stopped at the end.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup-env.sh" samples
exec "$root/.venv/bin/bastion" demo "$@"
