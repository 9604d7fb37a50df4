#!/usr/bin/env bash
# Shared by demo.sh and test.sh: make sure curl and openssl exist, and that .venv holds bastion
# with the extras named in $1 ("samples" or "test").
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
extras="${1:-samples}"

# Debian packages: curl and openssl always; for the tests and benchmarks also the load clients
# (h2load from nghttp2-client, wrk) and the proxies bastion is compared with (nginx, haproxy);
# for the tests the TLS scanner testssl.sh and Let's Encrypt's test ACME server, Pebble (with
# pebble-challtestsrv, its DNS server), etcd (the shared store: server and etcdctl) and iproute2
# (the multi-host tests' network namespaces), too.
declare -A package=([curl]=curl [openssl]=openssl [h2load]=nghttp2-client [wrk]=wrk
                    [nginx]=nginx [haproxy]=haproxy [taskset]=util-linux [testssl]=testssl.sh
                    [pebble]=pebble [etcd]=etcd-server [etcdctl]=etcd-client [ip]=iproute2)
tools=(curl openssl)
case "$extras" in test|bench) tools+=(h2load wrk nginx haproxy taskset) ;; esac
case "$extras" in test) tools+=(testssl pebble etcd etcdctl ip) ;; esac
missing=()
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || missing+=("${package[$tool]}")
done
if ((${#missing[@]})); then
  echo "installing ${missing[*]} with apt-get" >&2
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

python="${PYTHON:-python3}"
if [ ! -x "$root/.venv/bin/python" ]; then
  "$python" -m venv "$root/.venv"
fi
"$root/.venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
"$root/.venv/bin/python" -m pip install -q --disable-pip-version-check -e "$root[$extras]"
