"""Load held over time (issue: reliability). Two soaks, each bounded in time:

    .venv/bin/python -m bench.soak data-plane [--minutes 10]
    .venv/bin/python -m bench.soak control-plane [--minutes 10] [--hosts 10000]

data-plane: h2load drives the gateway (one route to a fast local backend) at full speed in
back-to-back 30-second runs for the whole period; Envoy's resident memory is sampled every run.
Reports requests, errors, throughput per run, and memory after warm-up vs at the end.

control-plane: the gateway holds N hosts (own Secret, Gateway server and VirtualService each);
one change per second alternates between a secret rotation and a route edit; the control
plane's resident memory is sampled every 10 s. Reports memory after warm-up vs at the end and
the changes' latencies. A benchmark: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.e2e.harness import Bastion

from bench.common import machine, rss_mb, summarize, write_report
from bench.dataplane import HOST, BastionEnvoy, make_material, start_backend
from bench.scale import manifest, secret, virtual_service


def data_plane(minutes: float) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bastion-soak-dp-"))
    material = make_material(work)
    backend, backend_port = start_backend(work)
    contender = BastionEnvoy("bastion", work, backend_port, material)
    contender.start()
    samples = []
    try:
        envoy_pid = contender.instance.envoy_pid()
        assert envoy_pid is not None
        deadline = time.monotonic() + minutes * 60
        while time.monotonic() < deadline:
            out = subprocess.run(
                ["taskset", "-c", "1", "h2load", "-D", "30", "-c", "16", "-m", "10", "-t", "1",
                 f"https://{HOST}:{contender.port}/"], capture_output=True, text=True,
                timeout=120).stdout
            rps = re.search(r"finished in [\d.]+\w*, ([\d.]+) req/s", out)
            counts = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, "
                               r"(\d+) failed, (\d+) errored, (\d+) timeout", out)
            done, ok, failed, errored, timeouts = map(int, counts.groups()) if counts else (
                0, 0, 0, 1, 0)
            samples.append({"t_s": round(minutes * 60 - (deadline - time.monotonic()), 1),
                            "rps": float(rps.group(1)) if rps else 0.0, "requests": done,
                            "errors": failed + errored + timeouts + (done - ok),
                            "envoy_rss_mb": round(rss_mb(envoy_pid), 1)})
            print(json.dumps(samples[-1]), flush=True)
    finally:
        contender.stop()
        backend.terminate()
    warm = samples[min(1, len(samples) - 1)]
    return {"soak": "data-plane", "minutes": minutes, "machine": machine(),
            "requests": sum(s["requests"] for s in samples),
            "errors": sum(s["errors"] for s in samples),
            "envoy_rss_after_warmup_mb": warm["envoy_rss_mb"],
            "envoy_rss_end_mb": samples[-1]["envoy_rss_mb"], "samples": samples}


def control_plane(minutes: float, hosts: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bastion-soak-cp-"))
    path = work / "hosts.json"
    path.write_text(json.dumps(manifest(hosts)))
    bastion = Bastion(work, serve_args=("--log-level", "INFO"))
    bastion.start()
    samples, rotations, edits = [], [], []
    try:
        assert bastion.proc is not None
        pid = bastion.proc.pid
        bastion.cli("apply", "-f", str(path))
        bastion.cli("wait", "--timeout", "600s", "vs", f"vs-{hosts - 1}")
        started = time.monotonic()
        deadline = started + minutes * 60
        next_sample = started
        change = 0
        while time.monotonic() < deadline:
            tick = time.monotonic()
            target = change % hosts
            if change % 2 == 0:
                body, name, kind = json.dumps(secret(target, 10_000 + change)), f"cred-{target}", (
                    "secret")
                bucket, namespace = rotations, "istio-system"
            else:
                body, name, kind = json.dumps(virtual_service(target, f"v{change}")), (
                    f"vs-{target}"), "vs"
                bucket, namespace = edits, "default"
            subprocess.run([sys.executable, "-m", "bastion", "apply", "-f", "-"], input=body,
                           text=True, env=bastion.env, check=True, capture_output=True)
            bastion.cli("wait", "--timeout", "60s", "-n", namespace, kind, name)
            bucket.append((time.monotonic() - tick) * 1000)
            change += 1
            if time.monotonic() >= next_sample:
                samples.append({"t_s": round(time.monotonic() - started, 1),
                                "control_plane_rss_mb": round(rss_mb(pid), 1),
                                "changes": change})
                print(json.dumps(samples[-1]), flush=True)
                next_sample += 10
            time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
    finally:
        bastion.stop()
    warm = samples[min(3, len(samples) - 1)]
    return {"soak": "control-plane", "minutes": minutes, "hosts": hosts, "machine": machine(),
            "changes": len(rotations) + len(edits),
            "rotation_apply_to_ack": summarize(rotations) if rotations else None,
            "route_edit_apply_to_ack": summarize(edits) if edits else None,
            "control_plane_rss_after_warmup_mb": warm["control_plane_rss_mb"],
            "control_plane_rss_end_mb": samples[-1]["control_plane_rss_mb"],
            "samples": samples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", choices=["data-plane", "control-plane"])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--hosts", type=int, default=10000)
    args = parser.parse_args()
    if args.which == "data-plane":
        report = data_plane(args.minutes)
    else:
        report = control_plane(args.minutes, args.hosts)
    out = Path(f"bench/results/soak-{args.which}.json")
    write_report(out, report)
    print(json.dumps({k: v for k, v in report.items() if k != "samples"}, indent=2))


if __name__ == "__main__":
    main()
