#!/usr/bin/env bash
# Install what the benchmarks need (Python packages into .venv; nginx, haproxy, wrk and h2load
# from Debian if absent) and run them: rotation latency, CLI latency, the task's rotation under
# load (20 runs), scale to 10,000 hosts, the data plane side by side with a tuned static Envoy,
# nginx and HAProxy, what each routing feature costs per request, and remote gateways (a
# rotation across 3 and 10, the control plane's cost per gateway, 10,000 hosts over 10 gateway
# groups). Results: bench/results/.
# With --soak, also the two 10-minute soaks. Benchmarks report; they never fail on a number.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup-env.sh" bench
cd "$root"
py=.venv/bin/python
$py -m bench.rotation --rotations 30
$py -m bench.cli --runs 20
$py -m bench.rotation_load --runs 20
$py -m bench.scale --hosts 100 1000 5000 10000 --changes 30
$py -m bench.dataplane --seconds 10
$py -m bench.features --seconds 10
$py -m bench.remote --gateways 3 10 --rotations 30 --hosts 10000 --groups 10
if [ "${1:-}" = "--soak" ]; then
  $py -m bench.soak data-plane --minutes 10
  $py -m bench.soak control-plane --minutes 10 --hosts 10000
fi
echo "results in bench/results/ (summary: bench/README.md)"
