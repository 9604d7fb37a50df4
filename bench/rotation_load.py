"""The task's delete-then-create rotation on a loaded gateway, repeated: each run starts its own
`bastion serve` with default settings and real Envoy, puts h2load (4 connections x 4 streams)
and a new-connection client on one host, rotates the credential 10 times one second apart with
the task's two commands, and counts failed requests, non-2xx responses and handshakes that
failed or went back to an older certificate.

    .venv/bin/python -m bench.rotation_load [--runs 20] [--out bench/results/rotation-load.json]

A run is clean when every count is zero. A benchmark: it reports and asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from tests import certs
from tests.e2e.harness import Backend, Bastion, handshake_serial
from tests.e2e.loops import H2Load, HandshakeLoop
from tests.e2e.test_withdrawal import HOST, serve_hello

from bench.common import machine, write_report

ROTATIONS = 10


def one_run(work: Path) -> dict[str, object]:
    backend = Backend("helloworld", work)
    bastion = Bastion(work)
    bastion.start()
    try:
        cafile, port = serve_hello(bastion, backend, work), bastion.secure_port
        files = [certs.write(certs.leaf(HOST, 100 + i), work, f"leaf{i}")
                 for i in range(1, ROTATIONS + 1)]
        h2load = H2Load(HOST, port, "/hello")
        fresh = HandshakeLoop(HOST, port, cafile, max_count=50000, max_seconds=120)
        h2load.start()
        fresh.start()
        gaps, stale = [], 0
        for i, (cert, key) in enumerate(files, start=1):
            started = time.perf_counter()
            bastion.cli("-n", "istio-system", "delete", "secret", "hello-credential")
            bastion.cli("create", "-n", "istio-system", "secret", "tls", "hello-credential",
                        f"--cert={cert}", f"--key={key}")
            gaps.append(round((time.perf_counter() - started) * 1000, 1))
            bastion.cli("wait", "--timeout", "10s", "-n", "istio-system", "secret",
                        "hello-credential")
            if handshake_serial(HOST, port, cafile) != 100 + i:
                stale += 1
            time.sleep(1)
        shook, h2 = fresh.finish(), h2load.finish()
    finally:
        bastion.stop()
        backend.stop()
    backwards = shook.serial_sequence != sorted(shook.serial_sequence)
    failures = (h2["failed"] + h2["errored"] + h2["timeout"] + h2["3xx"] + h2["4xx"]
                + h2["5xx"] + len(shook.errors) + stale + int(backwards))
    return {"clean": failures == 0, "h2load": h2, "handshakes": shook.ok,
            "handshake_errors": len(shook.errors), "stale_after_create": stale,
            "serials_went_back": backwards, "delete_then_create_ms": gaps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("bench/results/rotation-load.json"))
    args = parser.parse_args()
    runs = []
    for n in range(1, args.runs + 1):
        result = one_run(Path(tempfile.mkdtemp(prefix="bastion-bench-rotation-load-")))
        runs.append(result)
        h2 = result["h2load"]
        assert isinstance(h2, dict)
        print(f"run {n}: {'clean' if result['clean'] else 'NOT CLEAN'}; h2load {h2['2xx']} 2xx, "
              f"{h2['5xx']} 5xx, {h2['failed']} failed; {result['handshakes']} handshakes, "
              f"{result['handshake_errors']} failed; delete+create "
              f"{max(result['delete_then_create_ms'])} ms at most", flush=True)
    clean = sum(1 for r in runs if r["clean"])
    write_report(args.out, {"machine": machine(), "runs": runs, "clean_runs": clean})
    print(f"{clean} of {len(runs)} runs clean")


if __name__ == "__main__":
    main()
