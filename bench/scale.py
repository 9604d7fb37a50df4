"""Scale: N hosts, each with its own Secret, Gateway server and VirtualService.

    .venv/bin/python -m bench.scale [--hosts 100 1000 5000 10000] [--changes 30]

For each N it starts a fresh `bastion serve` with real Envoy and reports: time from the start
of `bastion apply` to the gateway's ACK of everything (`bastion wait`), control-plane resident
memory and CPU time, Envoy's resident memory, bytes pushed per xDS type; then the cost of one
change at that size: one secret rotated (latency to the first handshake with the new serial,
the control plane's build time (wall clock and the build thread's CPU time, which scheduling
on a busy machine does not inflate), resources pushed) and one route edited (latency to ACK,
build time, resources pushed). Writes
bench/results/scale.json and bench/results/scale.png. A benchmark: it asserts nothing.
"""

from __future__ import annotations

import argparse
import base64
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests import certs
from tests.e2e.harness import Bastion, handshake_serial

from bench.common import cpu_seconds, machine, rss_mb, summarize, write_report

ROOT = "scale-root"


def host(i: int) -> str:
    return f"h{i}.example.com"


def secret(i: int, serial: int) -> dict[str, Any]:
    pair = certs.leaf(host(i), serial, ROOT, "ec")
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": f"cred-{i}", "namespace": "istio-system"},
            "data": {"tls.crt": base64.b64encode(pair.cert).decode(),
                     "tls.key": base64.b64encode(pair.key).decode()}}


def virtual_service(i: int, body: str = "ok") -> dict[str, Any]:
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": f"vs-{i}", "namespace": "default"},
            "spec": {"hosts": [host(i)], "gateways": [f"gw-{i}"], "http": [
                {"match": [{"uri": {"exact": "/direct"}}],
                 "directResponse": {"status": 200, "body": {"string": body}}},
                {"route": [{"destination": {"host": "backend", "port": {"number": 80}}}]}]}}


def manifest(n: int) -> dict[str, Any]:
    items: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "backend"},
         "spec": {"ports": [{"name": "http", "port": 80}]}},
        {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "backend"},
         "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": "http",
                                                                      "port": 9}]}]}]
    for i in range(n):
        items.append(secret(i, 1))
        items.append({"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
                      "metadata": {"name": f"gw-{i}", "namespace": "default"},
                      "spec": {"selector": {"istio": "ingressgateway"}, "servers": [
                          {"port": {"number": 443, "name": "https", "protocol": "HTTPS"},
                           "tls": {"mode": "SIMPLE", "credentialName": f"cred-{i}"},
                           "hosts": [host(i)]}]}})
        items.append(virtual_service(i))
    return {"apiVersion": "v1", "kind": "List", "items": items}


def pushed(bastion: Bastion) -> dict[str, dict[str, int]]:
    types = bastion.status()["gateways"][0]["types"]
    return {t: {"resources": v["resourcesSent"], "bytes": v["bytesSent"]}
            for t, v in types.items()}


def delta(after: dict[str, dict[str, int]], before: dict[str, dict[str, int]]
          ) -> dict[str, dict[str, int]]:
    return {t: {k: v[k] - before.get(t, {}).get(k, 0) for k in v} for t, v in after.items()}


def measure(n: int, changes: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f"bastion-scale-{n}-"))
    path = work / "hosts.json"
    path.write_text(json.dumps(manifest(n)))
    bundle = work / "root.crt"
    bundle.write_bytes(certs.ca(ROOT, "ec")[0].cert)
    bastion = Bastion(work)
    bastion.start()
    try:
        assert bastion.proc is not None
        cp_pid, envoy_pid = bastion.proc.pid, bastion.envoy_pid()
        cpu_before = cpu_seconds(cp_pid)
        started = time.perf_counter()
        bastion.cli("apply", "-f", str(path))
        bastion.cli("wait", "--timeout", "600s", "vs", f"vs-{n - 1}")
        apply_to_ack = time.perf_counter() - started
        handshake_serial(host(n - 1), bastion.secure_port, bundle)  # served
        result: dict[str, Any] = {
            "hosts": n,
            "apply_to_ack_s": round(apply_to_ack, 2),
            "control_plane_rss_mb": round(rss_mb(cp_pid), 1),
            "control_plane_peak_rss_mb": round(rss_mb(cp_pid, "VmHWM"), 1),
            "control_plane_cpu_s": round(cpu_seconds(cp_pid) - cpu_before, 2),
            "envoy_rss_mb": round(rss_mb(envoy_pid), 1) if envoy_pid else None,
            "pushed": pushed(bastion),
        }
        # One secret rotated, many times: latency to the first handshake with the new serial.
        before = pushed(bastion)
        latencies: list[float] = []
        builds: list[float] = []
        build_cpu: list[float] = []
        target = n // 2
        for k in range(changes):
            serial = 1000 + k
            body = json.dumps(secret(target, serial))
            subprocess.run([sys.executable, "-m", "bastion", "apply", "-f", "-"], input=body,
                           text=True, env=bastion.env, check=True, capture_output=True)
            done = time.perf_counter()
            while handshake_serial(host(target), bastion.secure_port, bundle) != serial:
                if time.perf_counter() - done > 30:
                    raise TimeoutError("rotation not seen in 30 s")
            latencies.append((time.perf_counter() - done) * 1000)
            status = bastion.status()
            builds.append(status["lastBuildMs"])
            build_cpu.append(status["lastBuildCpuMs"])
        result["rotation"] = {**summarize(latencies), "build_ms": summarize(builds),
                              "build_cpu_ms": summarize(build_cpu),
                              "pushed_per_change": _per(delta(pushed(bastion), before), changes)}
        # One route edited: latency until the gateway ACKs it.
        before = pushed(bastion)
        edits: list[float] = []
        edit_builds: list[float] = []
        edit_cpu: list[float] = []
        for k in range(max(5, changes // 3)):
            body = json.dumps(virtual_service(target, f"edit-{k}"))
            t0 = time.perf_counter()
            bastion.cli("apply", "-f", "-", input=body)
            bastion.cli("wait", "--timeout", "120s", "vs", f"vs-{target}")
            edits.append((time.perf_counter() - t0) * 1000)
            status = bastion.status()
            edit_builds.append(status["lastBuildMs"])
            edit_cpu.append(status["lastBuildCpuMs"])
        result["route_edit"] = {**summarize(edits), "build_ms": summarize(edit_builds),
                                "build_cpu_ms": summarize(edit_cpu),
                                "pushed_per_change": _per(delta(pushed(bastion), before),
                                                          len(edits))}
        result["last_build_ms"] = bastion.status()["lastBuildMs"]
        return result
    finally:
        bastion.stop()


def _per(total: dict[str, dict[str, int]], count: int) -> dict[str, dict[str, float]]:
    return {t: {k: round(v / count, 1) for k, v in d.items()} for t, d in total.items()
            if any(d.values())}


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hosts = [r["hosts"] for r in results]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    axes[0].plot(hosts, [r["apply_to_ack_s"] for r in results], "o-")
    axes[0].set_title("apply to gateway ACK (s)")
    axes[1].plot(hosts, [r["control_plane_rss_mb"] for r in results], "o-", label="control plane")
    axes[1].plot(hosts, [r["envoy_rss_mb"] for r in results], "s-", label="Envoy")
    axes[1].set_title("resident memory (MB)")
    axes[1].legend()
    axes[2].plot(hosts, [r["rotation"]["p99_ms"] for r in results], "o-", label="rotation p99")
    axes[2].plot(hosts, [r["route_edit"]["p99_ms"] for r in results], "s-",
                 label="route edit p99 (to ACK)")
    axes[2].set_title("one change (ms)")
    axes[2].legend()
    for ax in axes:
        ax.set_xlabel("hosts")
        ax.set_xscale("log")
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, nargs="+", default=[100, 1000, 5000, 10000])
    parser.add_argument("--changes", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path("bench/results/scale.json"))
    args = parser.parse_args()
    results = []
    for n in args.hosts:
        result = measure(n, args.changes)
        results.append(result)
        print(json.dumps({k: v for k, v in result.items() if k != "pushed"}), flush=True)
    write_report(args.out, {"benchmark": "scale", "machine": machine(), "results": results})
    if len(results) > 1:
        plot(results, args.out.with_suffix(".png"))
    print(f"report: {args.out}")


if __name__ == "__main__":
    main()
