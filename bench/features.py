"""What each routing feature costs per request: bastion's Envoy serving the same route plainly
and with one feature on (retries, header operations, a CORS policy, a weighted split, a fault
configured to inject nothing, a mirror of every request), each measured with h2load (HTTP/2
keep-alive, as `bench.dataplane`) against the same fast local backend.

    .venv/bin/python -m bench.features [--seconds 10] [--repeat 5] [--out bench/results/features.json]

The proxy is pinned to core 0 with one worker, load and backend to core 1. Variants run
interleaved, `repeat` times each, and the median is kept; each is reported beside the plain
route. A benchmark: it asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import tempfile
from pathlib import Path
from typing import Any

from bench.common import machine, write_report
from bench.dataplane import HOST, BastionEnvoy, make_material, run_h2load, start_backend

DESTINATION = {"destination": {"host": "backend", "port": {"number": 80}}}
# One VirtualService rule per variant; every variant forwards to the same backend.
VARIANTS: dict[str, dict[str, Any]] = {
    "plain": {"route": [DESTINATION]},
    "retries": {"route": [DESTINATION],
                "retries": {"attempts": 3, "perTryTimeout": "2s",
                            "retryOn": "5xx,connect-failure"}},
    "header-ops": {"route": [DESTINATION], "headers": {
        "request": {"set": {"x-a": "1"}, "add": {"x-b": "2"}, "remove": ["x-c"]},
        "response": {"set": {"x-served-by": "bastion"}, "remove": ["x-d"]}}},
    "cors": {"route": [DESTINATION], "corsPolicy": {
        "allowOrigins": [{"exact": "https://app.example.com"}],
        "allowMethods": ["GET", "POST"], "maxAge": "1h"}},
    "weighted": {"route": [{**DESTINATION, "weight": 50},
                           {"destination": {"host": "backend-b", "port": {"number": 80}},
                            "weight": 50}]},
    "fault-0%": {"route": [DESTINATION], "fault": {
        "abort": {"httpStatus": 503, "percentage": {"value": 0}}}},
    "mirror": {"route": [DESTINATION], "mirror": {"host": "backend-b",
                                                   "port": {"number": 80}}},
}


def configure(bastion: BastionEnvoy, variant: str, backend_port: int) -> None:
    second = [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "backend-b"},
         "spec": {"ports": [{"name": "http", "port": 80}]}},
        {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "backend-b"},
         "subsets": [{"addresses": [{"ip": "127.0.0.1"}],
                      "ports": [{"name": "http", "port": backend_port}]}]},
        {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
         "metadata": {"name": "bench"},
         "spec": {"hosts": [HOST], "gateways": ["bench"], "http": [VARIANTS[variant]]}},
    ]
    bastion.instance.cli("apply", "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "List", "items": second}))
    bastion.instance.cli("wait", "--timeout", "30s", "vs", "bench")


def markdown(results: dict[str, dict[str, Any]], seconds: int, repeat: int) -> str:
    base = results.get("plain", {}).get("rps") or 0
    lines = ["| variant | req/s | vs plain | p50 ms | p99 ms | errors |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name, r in results.items():
        ratio = f"{r['rps'] / base:.3f}" if base else "-"
        lines.append(f"| {name} | {r['rps']:.0f} | {ratio} | {r.get('p50_ms', '-')} | "
                     f"{r.get('p99_ms', '-')} | {r.get('errors', '-')} |")
    lines.append(f"\nHTTP/2 keep-alive (h2load, 16 connections x 10 streams); median of {repeat} "
                 f"interleaved runs of {seconds} s.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--out", type=Path, default=Path("bench/results/features.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bastion-bench-features-"))
    material = make_material(work)
    backend, backend_port = start_backend(work)
    bastion = BastionEnvoy("bastion", work, backend_port, material)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in args.variants}
    try:
        bastion.start()
        for _ in range(args.repeat):
            for name in args.variants:
                configure(bastion, name, backend_port)
                runs[name].append(run_h2load(bastion.port, args.seconds, work))
    finally:
        bastion.stop()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(backend.pid, signal.SIGTERM)
    results = {}
    for name, cell in runs.items():
        ordered = sorted(cell, key=lambda r: r["rps"])
        results[name] = {**ordered[len(ordered) // 2],
                         "runs_rps": [round(r["rps"], 1) for r in cell]}
        print(f"{name:>12}: {results[name]}", flush=True)
    write_report(args.out, {"benchmark": "features", "machine": machine(),
                            "seconds": args.seconds, "repeat": args.repeat, "results": results})
    table = markdown(results, args.seconds, args.repeat)
    args.out.with_suffix(".md").write_text(table + "\n")
    print(table)
    print(f"report: {args.out}")


if __name__ == "__main__":
    main()
