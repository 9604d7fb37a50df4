"""Credential rotation latency: from the moment `bastion create secret` (or `bastion apply`)
returns to the first new TLS handshake that presents the new certificate's serial, and from the
moment that command starts (what a user waits for, the CLI's own time included).

    .venv/bin/python -m bench.rotation [--rotations 30] [--out bench/results/rotation.json]

It starts its own `bastion serve` with real Envoy on free loopback ports, rotates the credential
the task's way (delete, then create) and by replacement (apply), and reports median, p90, p99 and
max per method. A benchmark: it asserts nothing.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests import certs
from tests.e2e.harness import Bastion, handshake_serial
from tests.manifests import HTTPBIN_GATEWAY, tls_secret_json

from bench.common import machine, write_report
from bench.common import summarize as common_summary

HOST = "httpbin.example.com"
GATEWAY = HTTPBIN_GATEWAY


def first_new_handshake(port: int, bundle: Path, serial: int, limit_s: float = 10.0) -> float:
    """Seconds until a fresh handshake presents `serial` (polled back to back)."""
    start = time.perf_counter()
    while time.perf_counter() - start < limit_s:
        try:
            if handshake_serial(HOST, port, bundle) == serial:
                return time.perf_counter()
        except OSError:
            pass
    raise TimeoutError(f"serial {serial} not presented within {limit_s}s")


def cli(state: Path, *args: str, input: str | None = None) -> None:
    subprocess.run([sys.executable, "-m", "bastion", "--state-dir", str(state), *args],
                   input=input, text=True, check=True, capture_output=True)


def secret_json(pair: certs.Pair) -> str:
    return tls_secret_json("httpbin-credential", pair)


def summarize(samples_ms: list[float]) -> dict[str, float]:
    return {**common_summary(samples_ms), "min_ms": round(min(samples_ms), 1)}


def run(rotations: int) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="bastion-bench-rotation-"))
    bastion = Bastion(work)
    bastion.start()
    try:
        bundle = work / "roots.crt"
        bundle.write_bytes(certs.ca("root1")[0].cert)
        pairs = [certs.leaf(HOST, 100 + i, "root1") for i in range(rotations + 1)]
        files = [certs.write(p, work, f"leaf{i}") for i, p in enumerate(pairs)]
        cli(bastion.state_dir, "apply", "-f", "-", input=secret_json(pairs[0]) + "\n---\n"
            + GATEWAY)
        cli(bastion.state_dir, "wait", "--timeout", "10s", "gateway", "mygateway")
        first_new_handshake(bastion.secure_port, bundle, 100)
        results: dict[str, list[float]] = {"delete-then-create": [], "apply": [],
                                           "create, from its start": [],
                                           "apply, from its start": []}
        for i in range(1, rotations + 1):
            cert, key = files[i]
            cli(bastion.state_dir, "-n", "istio-system", "delete", "secret",
                "httpbin-credential")
            started = time.perf_counter()
            cli(bastion.state_dir, "create", "-n", "istio-system", "secret", "tls",
                "httpbin-credential", f"--cert={cert}", f"--key={key}")
            done = time.perf_counter()
            seen = first_new_handshake(bastion.secure_port, bundle, 100 + i)
            results["delete-then-create"].append((seen - done) * 1000)
            results["create, from its start"].append((seen - started) * 1000)
        for i in range(rotations):
            target = rotations if i % 2 else 0  # alternate between two certificates
            started = time.perf_counter()
            cli(bastion.state_dir, "apply", "-f", "-", input=secret_json(pairs[target]))
            done = time.perf_counter()
            seen = first_new_handshake(bastion.secure_port, bundle, 100 + target)
            results["apply"].append((seen - done) * 1000)
            results["apply, from its start"].append((seen - started) * 1000)
        return {
            "benchmark": "rotation",
            "what": "end (or start) of the CLI write to the first handshake presenting the new "
                    "serial",
            "machine": machine(),
            "hosts": 1,
            "results": {k: summarize(v) for k, v in results.items()},
            "samples_ms": {k: [round(x, 2) for x in v] for k, v in results.items()},
        }
    finally:
        bastion.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rotations", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path("bench/results/rotation.json"))
    args = parser.parse_args()
    report = run(args.rotations)
    write_report(args.out, report)
    for method, stats in report["results"].items():  # type: ignore[union-attr]
        print(f"{method:>20}: median {stats['median_ms']} ms, p90 {stats['p90_ms']} ms, "
              f"p99 {stats['p99_ms']} ms, max {stats['max_ms']} ms over {stats['count']}")
    print(f"report: {args.out}")


if __name__ == "__main__":
    main()
