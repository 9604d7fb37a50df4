"""Data plane, side by side: the same TLS-terminating job for bastion's generated Envoy config,
a hand-tuned static Envoy (same binary, the same statistics kept), nginx and HAProxy.

    .venv/bin/python -m bench.dataplane [--seconds 10] [--out bench/results/dataplane.json]

Every contender terminates TLS for SNI `localhost` and proxies one route to the same fast local
backend (nginx answering "ok"). The proxy under test is pinned to core 0 with one worker; load
generators and the backend are pinned to core 1. Workloads: HTTP/2 keep-alive (h2load), HTTP/1.1
keep-alive (wrk), a new TLS connection per request with RSA-2048 and with ECDSA P-256 (wrk with
`Connection: close`), and new mutual-TLS handshakes without a request (four `openssl s_time`
clients with an ECDSA client certificate, which send no SNI: that cell uses a catch-all server). Reports
requests/s and, where the tool gives them, p50/p99 latency, with each ratio against bastion in
the same run. A benchmark: it asserts nothing.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests import certs
from tests.e2e.harness import Bastion, free_port, wait_port

from bastion.dataplane.envoy.bootstrap import stats_config
from bastion.dataplane.envoy.supervisor import envoy_binary
from bench.common import machine, percentile, write_report

PROXY_CORE, LOAD_CORE = "0", "1"
HOST = "localhost"
TYPE = "type.googleapis.com/envoy."


@dataclass
class Material:
    """Server certificates (RSA and ECDSA), a client CA and a client certificate, on disk."""

    root: Path
    rsa: tuple[Path, Path]
    ec: tuple[Path, Path]
    client: tuple[Path, Path]

    def server(self, kind: str) -> tuple[Path, Path]:
        return self.rsa if kind == "rsa" else self.ec


def make_material(work: Path) -> Material:
    root = work / "root.crt"
    root.write_bytes(certs.ca("bench-root")[0].cert + certs.ca("bench-root", "ec")[0].cert)
    return Material(
        root=root,
        rsa=certs.write(certs.leaf(HOST, 11, "bench-root", "rsa"), work, "rsa"),
        ec=certs.write(certs.leaf(HOST, 12, "bench-root", "ec"), work, "ec"),
        # An ECDSA client certificate: with RSA, the clients' own signing saturated the load
        # generator's core first (Envoy at 86 % of its core) and the cell measured the clients.
        client=certs.write(certs.leaf("client", 13, "bench-root", "ec"), work, "client"),
    )


def pin(pid: int, core: str) -> None:
    subprocess.run(["taskset", "-a", "-p", "-c", core, str(pid)], check=True,
                   capture_output=True)


@dataclass
class Contender:
    name: str
    work: Path
    backend_port: int
    material: Material
    kind: str = "rsa"
    mutual: bool = False
    port: int = field(default_factory=free_port)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self) -> None:
        raise NotImplementedError

    def spawn(self, args: list[str], log: str) -> subprocess.Popen[bytes]:
        with open(self.work / log, "ab") as out:
            proc = subprocess.Popen(["taskset", "-c", PROXY_CORE, *args], stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        self.procs.clear()


class Nginx(Contender):
    def start(self) -> None:
        cert, key = self.material.server(self.kind)
        client = (f"ssl_client_certificate {self.material.root}; ssl_verify_client on;"
                  if self.mutual else "")
        conf = self.work / f"nginx-{self.port}.conf"
        conf.write_text(f"""
worker_processes 1; daemon off; pid {self.work}/nginx-{self.port}.pid; error_log stderr warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  client_body_temp_path {self.work}; proxy_temp_path {self.work};
  fastcgi_temp_path {self.work}; uwsgi_temp_path {self.work}; scgi_temp_path {self.work};
  upstream backend {{ server 127.0.0.1:{self.backend_port}; keepalive 128; }}
  server {{
    listen 127.0.0.1:{self.port} ssl http2;
    server_name {HOST};
    ssl_certificate {cert}; ssl_certificate_key {key};
    ssl_protocols TLSv1.2 TLSv1.3;
    keepalive_requests 1000000;
    {client}
    location / {{ proxy_pass http://backend; proxy_http_version 1.1;
                 proxy_set_header Connection ""; }}
  }}
}}
""")
        self.spawn(["nginx", "-p", str(self.work), "-c", str(conf)], "nginx.log")
        wait_port(self.port)


class HAProxy(Contender):
    def start(self) -> None:
        cert, key = self.material.server(self.kind)
        pem = self.work / f"haproxy-{self.kind}.pem"
        pem.write_bytes(cert.read_bytes() + key.read_bytes())
        client = f" ca-file {self.material.root} verify required" if self.mutual else ""
        conf = self.work / f"haproxy-{self.port}.cfg"
        conf.write_text(f"""
global
  nbthread 1
  maxconn 8000
  ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend fe
  bind 127.0.0.1:{self.port} ssl crt {pem} alpn h2,http/1.1{client}
  default_backend be
backend be
  server s1 127.0.0.1:{self.backend_port}
""")
        self.spawn(["haproxy", "-f", str(conf)], "haproxy.log")
        wait_port(self.port)


class StaticEnvoy(Contender):
    """The same Envoy binary with a hand-written static config tuned for speed."""

    def start(self) -> None:
        cert, key = self.material.server(self.kind)
        context: dict[str, Any] = {"common_tls_context": {
            "alpn_protocols": ["h2", "http/1.1"],
            "tls_certificates": [{"certificate_chain": {"filename": str(cert)},
                                  "private_key": {"filename": str(key)}}]}}
        if self.mutual:
            context["require_client_certificate"] = True
            context["common_tls_context"]["validation_context"] = {
                "trusted_ca": {"filename": str(self.material.root)}}
        config = {
            "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
            # The same statistics as bastion's gateway keeps (Istio's default list), so that the
            # two differ only in what each does per request.
            "stats_config": stats_config(),
            "static_resources": {
                "listeners": [{
                    "name": "tls",
                    "address": {"socket_address": {"address": "127.0.0.1",
                                                   "port_value": self.port}},
                    "listener_filters": [{
                        "name": "envoy.filters.listener.tls_inspector",
                        "typed_config": {"@type": TYPE + "extensions.filters.listener."
                                                         "tls_inspector.v3.TlsInspector"}}],
                    "filter_chains": [{
                        **({} if self.mutual else {
                            "filter_chain_match": {"server_names": [HOST]}}),
                        "transport_socket": {"name": "tls", "typed_config": {
                            "@type": TYPE + "extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                            **context}},
                        "filters": [{"name": "hcm", "typed_config": {
                            "@type": TYPE + "extensions.filters.network.http_connection_manager.v3."
                                     "HttpConnectionManager",
                            "stat_prefix": "tls", "codec_type": "AUTO",
                            "generate_request_id": False,
                            "route_config": {"virtual_hosts": [{
                                "name": "all", "domains": ["*"],
                                "routes": [{"match": {"prefix": "/"},
                                            "route": {"cluster": "backend"}}]}]},
                            "http_filters": [{"name": "router", "typed_config": {
                                "@type": TYPE + "extensions.filters.http.router.v3.Router",
                                "dynamic_stats": False}}]}}],
                    }],
                }],
                "clusters": [{
                    "name": "backend", "type": "STATIC", "connect_timeout": "1s",
                    "circuit_breakers": {"thresholds": [{
                        "max_connections": 1000000, "max_pending_requests": 1000000,
                        "max_requests": 1000000}]},
                    "load_assignment": {"cluster_name": "backend", "endpoints": [{
                        "lb_endpoints": [{"endpoint": {"address": {"socket_address": {
                            "address": "127.0.0.1", "port_value": self.backend_port}}}}]}]},
                }],
            },
        }
        path = self.work / f"envoy-static-{self.port}.json"
        path.write_text(json.dumps(config))
        self.spawn([str(envoy_binary()), "-c", str(path), "--concurrency", "1",
                    "--disable-hot-restart", "--log-level", "error"], "envoy-static.log")
        wait_port(self.port)


class BastionEnvoy(Contender):
    """bastion's own Envoy, configured over ADS from Istio objects, as users run it."""

    def start(self) -> None:
        cert, key = self.material.server(self.kind)
        self.instance = Bastion(self.work / f"bastion-{self.port}")
        self.instance.workdir.mkdir(parents=True, exist_ok=True)
        self.instance.secure_port = self.port
        self.instance.serve_args = ("--concurrency", "1", "--envoy-log-level", "error",
                                    "--log-level", "WARNING")
        self.instance.start()
        assert self.instance.proc is not None
        pin(self.instance.proc.pid, LOAD_CORE)  # the control plane stays off the proxy's core
        envoy_pid = self.instance.envoy_pid()
        assert envoy_pid is not None
        pin(envoy_pid, PROXY_CORE)
        mode = "MUTUAL" if self.mutual else "SIMPLE"
        data = {"tls.crt": cert.read_bytes(), "tls.key": key.read_bytes()}
        if self.mutual:
            data["ca.crt"] = self.material.root.read_bytes()
        secret = {"apiVersion": "v1", "kind": "Secret",
                  "metadata": {"name": "bench-credential", "namespace": "istio-system"},
                  "data": {k: base64.b64encode(v).decode() for k, v in data.items()}}
        objects = [
            secret,
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "backend"},
             "spec": {"ports": [{"name": "http", "port": 80}]}},
            {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "backend"},
             "subsets": [{"addresses": [{"ip": "127.0.0.1"}],
                          "ports": [{"name": "http", "port": self.backend_port}]}]},
            {"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
             "metadata": {"name": "bench"},
             "spec": {"selector": {"istio": "ingressgateway"}, "servers": [
                 {"port": {"number": 443, "name": "https", "protocol": "HTTPS"},
                  "tls": {"mode": mode, "credentialName": "bench-credential"},
                  # A catch-all server: openssl s_time (the mTLS cell) sends no SNI, and a
                  # Gateway may not name a short host such as `localhost` (Istio's rule).
                  "hosts": ["*"]}]}},
            {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
             "metadata": {"name": "bench"},
             "spec": {"hosts": ["*"] if self.mutual else [HOST], "gateways": ["bench"],
                      "http": [
                 {"route": [{"destination": {"host": "backend", "port": {"number": 80}}}]}]}},
        ]
        self.instance.cli("apply", "-f", "-", input=json.dumps(
            {"apiVersion": "v1", "kind": "List", "items": objects}))
        self.instance.cli("wait", "--timeout", "30s", "vs", "bench")

    def stop(self) -> None:
        instance = getattr(self, "instance", None)
        if instance is not None and instance.proc is not None:
            instance.stop()


CONTENDERS = {"bastion": BastionEnvoy, "envoy-static": StaticEnvoy, "nginx": Nginx,
              "haproxy": HAProxy}


def loadgen(args: list[str], timeout: float) -> str:
    out = subprocess.run(["taskset", "-c", LOAD_CORE, *args], capture_output=True, text=True,
                         timeout=timeout)
    return out.stdout + out.stderr


def run_h2load(port: int, seconds: int, work: Path) -> dict[str, Any]:
    log = work / f"h2load-{port}.log"
    text = loadgen(["h2load", "-D", str(seconds), "--warm-up-time", "1", "-c", "16", "-m",
                    "10", "-t", "1", f"--log-file={log}", f"https://{HOST}:{port}/"],
                   seconds + 60)
    rps = re.search(r"finished in [\d.]+\w*, ([\d.]+) req/s", text)
    failed = re.search(r"(\d+) failed, (\d+) errored", text)
    durations = []
    if log.exists():
        for line in log.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[1] == "200":
                durations.append(int(parts[2]) / 1000)
    return {"rps": float(rps.group(1)) if rps else 0.0,
            "p50_ms": round(percentile(durations, 0.5), 3) if durations else None,
            "p99_ms": round(percentile(durations, 0.99), 3) if durations else None,
            "errors": int(failed.group(1)) + int(failed.group(2)) if failed else None}


def _wrk_ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(port: int, seconds: int, new_connections: bool) -> dict[str, Any]:
    args = ["wrk", "-t", "1", "-c", "16" if new_connections else "32", "-d", f"{seconds}s",
            "--latency"]
    if new_connections:
        args += ["-H", "Connection: close"]
    text = loadgen([*args, f"https://{HOST}:{port}/"], seconds + 60)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    p50 = re.search(r"\s50%\s+([\d.]+\w+)", text)
    p99 = re.search(r"\s99%\s+([\d.]+\w+)", text)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return {"rps": float(rps.group(1)) if rps else 0.0,
            "p50_ms": round(_wrk_ms(p50.group(1)), 3) if p50 else None,
            "p99_ms": round(_wrk_ms(p99.group(1)), 3) if p99 else None,
            "errors": (sum(map(int, errors.groups())) if errors else 0)
            + (int(non2xx.group(1)) if non2xx else 0)}


def run_s_time(port: int, seconds: int, material: Material) -> dict[str, Any]:
    """New mutual-TLS handshakes per second from four parallel s_time clients. Handshakes only:
    s_time's request is HTTP/1.0, which Envoy (like Istio's gateway) does not serve."""
    cert, key = material.client
    args = ["openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-new", "-time",
            str(seconds), "-cert", str(cert), "-key", str(key), "-CAfile", str(material.root)]
    procs = [subprocess.Popen(["taskset", "-c", LOAD_CORE, *args], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(4)]
    total = 0.0
    for proc in procs:
        out, _ = proc.communicate(timeout=seconds + 60)
        match = re.search(r"([\d.]+) connections/user sec", out)
        done = re.search(r"(\d+) connections in ([\d.]+)s", out)
        if done:
            total += int(done.group(1)) / max(seconds, 1)
        elif match:
            total += float(match.group(1))
    return {"rps": round(total, 1), "p50_ms": None, "p99_ms": None, "errors": None}


WORKLOADS = ["h2-keepalive", "h1-keepalive", "new-conn-rsa", "new-conn-ecdsa", "mtls-new-conn"]


def measure(name: str, workload: str, seconds: int, work: Path, backend_port: int,
            material: Material) -> dict[str, Any]:
    kind = "ec" if workload == "new-conn-ecdsa" else "rsa"
    contender = CONTENDERS[name](name, work, backend_port, material, kind=kind,
                                 mutual=workload == "mtls-new-conn")
    try:
        contender.start()  # inside: a start that fails half-way is still stopped
        if workload == "h2-keepalive":
            return run_h2load(contender.port, seconds, work)
        if workload == "h1-keepalive":
            return run_wrk(contender.port, seconds, new_connections=False)
        if workload == "mtls-new-conn":
            return run_s_time(contender.port, seconds, material)
        return run_wrk(contender.port, seconds, new_connections=True)
    finally:
        contender.stop()


def start_backend(work: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    conf = work / "backend.conf"
    conf.write_text(f"""
worker_processes 1; daemon off; pid {work}/backend.pid; error_log stderr warn;
events {{ worker_connections 8192; }}
http {{ access_log off; keepalive_requests 1000000;
  client_body_temp_path {work}; proxy_temp_path {work};
  fastcgi_temp_path {work}; uwsgi_temp_path {work}; scgi_temp_path {work};
  server {{ listen 127.0.0.1:{port}; location / {{ return 200 "ok\\n"; }} }} }}
""")
    proc = subprocess.Popen(["taskset", "-c", LOAD_CORE, "nginx", "-p", str(work), "-c",
                             str(conf)], start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_port(port)
    return proc, port


def markdown(results: dict[str, dict[str, dict[str, Any]]], seconds: int, repeat: int) -> str:
    lines = ["| workload | contender | req/s | vs bastion | p50 ms | p99 ms | errors |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for workload, by_name in results.items():
        base = by_name.get("bastion", {}).get("rps") or 0
        for name, r in by_name.items():
            ratio = f"{r['rps'] / base:.2f}" if base else "-"
            lines.append(f"| {workload} | {name} | {r['rps']:.0f} | {ratio} | "
                         f"{r['p50_ms'] if r['p50_ms'] is not None else '-'} | "
                         f"{r['p99_ms'] if r['p99_ms'] is not None else '-'} | "
                         f"{r['errors'] if r['errors'] is not None else '-'} |")
    lines.append(f"\nMedian of {repeat} interleaved runs of {seconds} s per cell; ratio = "
                 "contender req/s / bastion req/s.")
    lines += ["", "| workload | bastion / envoy-static (medians) | median of the paired runs' ratios "
              "| paired ratios |", "| --- | --- | --- | --- |"]
    for workload, by_name in results.items():
        ours, theirs = by_name.get("bastion"), by_name.get("envoy-static")
        if not ours or not theirs or not theirs["rps"]:
            continue
        # Runs with the same index ran back to back, so their ratio cancels slow drift.
        paired = sorted(a / b for a, b in zip(ours["runs_rps"], theirs["runs_rps"], strict=True)
                        if b)
        lines.append(f"| {workload} | {ours['rps'] / theirs['rps']:.3f} | "
                     f"{paired[len(paired) // 2]:.3f} | "
                     f"{', '.join(f'{r:.3f}' for r in paired)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5,
                        help="runs per cell, interleaved across contenders; the median is kept")
    parser.add_argument("--workloads", nargs="+", default=WORKLOADS, choices=WORKLOADS)
    parser.add_argument("--contenders", nargs="+", default=list(CONTENDERS),
                        choices=list(CONTENDERS))
    parser.add_argument("--out", type=Path, default=Path("bench/results/dataplane.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bastion-bench-dp-"))
    material = make_material(work)
    backend, backend_port = start_backend(work)
    results: dict[str, dict[str, dict[str, Any]]] = {}
    try:
        for workload in args.workloads:
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in args.contenders}
            for _ in range(args.repeat):  # interleaved, so drift hits every contender alike
                for name in args.contenders:
                    runs[name].append(measure(name, workload, args.seconds, work,
                                              backend_port, material))
            results[workload] = {}
            for name, cell in runs.items():
                ordered = sorted(cell, key=lambda r: r["rps"])
                median = {**ordered[len(ordered) // 2],
                          "runs_rps": [round(r["rps"], 1) for r in cell]}
                results[workload][name] = median
                print(f"{workload:>15} {name:>13}: {median}", flush=True)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(backend.pid, signal.SIGTERM)
    write_report(args.out, {"benchmark": "dataplane", "machine": machine(),
                            "seconds": args.seconds, "repeat": args.repeat, "results": results})
    table = markdown(results, args.seconds, args.repeat)
    args.out.with_suffix(".md").write_text(table + "\n")
    print(table)
    print(f"report: {args.out}")
    sys.exit(0)


if __name__ == "__main__":
    main()
