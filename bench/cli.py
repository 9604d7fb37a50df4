"""CLI latency: how long `bastion create secret tls`, `bastion apply -f` and `bastion get` take
as whole processes against a running `bastion serve`, on an idle machine and with both cores
busy.

    .venv/bin/python -m bench.cli [--runs 20] [--out bench/results/cli.json]

"Under load" runs one CPU-bound process per core beside the CLI (each bounded in time), which is
what the task's two commands meet on a gateway busy serving traffic. With `--compare DIR`
another checkout's CLI (its `src`, e.g. a `git worktree` of an older commit) is timed in turn
with this one, run by run, against the same control plane and under the same load, so the two
can be compared. A benchmark: it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests import certs
from tests.e2e.harness import Bastion
from tests.manifests import HTTPBIN_GATEWAY

from bench.common import machine, summarize, write_report

BURN = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass\n"


class Burners:
    """One busy process per core, for at most `seconds`."""

    def __init__(self, seconds: float) -> None:
        self.procs = [subprocess.Popen([sys.executable, "-c", BURN.format(seconds=seconds)])
                      for _ in range(os.cpu_count() or 1)]

    def stop(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()


def time_cli(env: dict[str, str], python: str, args: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run([python, "-m", "bastion", *args], env=env, cwd=cwd, check=True,
                   capture_output=True, text=True)
    return (time.perf_counter() - started) * 1000


def measure(bastion: Bastion, work: Path, variants: dict[str, str | None], runs: int
            ) -> dict[str, dict[str, dict[str, float]]]:
    """variants: name -> PYTHONPATH for that CLI (None: this checkout's)."""
    envs = {}
    for name, pythonpath in variants.items():
        env = dict(bastion.env)
        if pythonpath:
            env["PYTHONPATH"] = pythonpath
        envs[name] = env
    pair = certs.leaf("httpbin.example.com", 5)
    cert, key = certs.write(pair, work, "leaf")
    manifest = work / "gateway.yaml"
    manifest.write_text(HTTPBIN_GATEWAY)
    samples: dict[str, dict[str, list[float]]] = {
        name: {"create secret tls": [], "apply -f": [], "get": []} for name in variants}
    for i in range(runs):
        for name, env in envs.items():
            python = sys.executable
            samples[name]["create secret tls"].append(time_cli(env, python, [
                "create", "-n", "istio-system", "secret", "tls",
                f"cred-{name}-{i}-{time.time_ns()}",
                f"--cert={cert}", f"--key={key}"], work))
            samples[name]["apply -f"].append(time_cli(env, python, ["apply", "-f",
                                                                     str(manifest)], work))
            samples[name]["get"].append(time_cli(env, python, ["get", "gateway"], work))
    return {name: {verb: summarize(values) for verb, values in by_verb.items()}
            for name, by_verb in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--compare", type=Path, default=None,
                        help="another checkout whose CLI is timed in turn with this one")
    parser.add_argument("--out", type=Path, default=Path("bench/results/cli.json"))
    args = parser.parse_args()
    variants: dict[str, str | None] = {"this": None}
    if args.compare is not None:
        variants["compared"] = str(args.compare.resolve() / "src")
    work = Path(tempfile.mkdtemp(prefix="bastion-bench-cli-"))
    bastion = Bastion(work, serve_args=("--no-envoy",))
    bastion.start(wait_for_gateway=False)
    try:
        idle = measure(bastion, work, variants, args.runs)
        burners = Burners(seconds=600)
        try:
            loaded = measure(bastion, work, variants, args.runs)
        finally:
            burners.stop()
    finally:
        bastion.stop()
    report = {"machine": machine(), "runs": args.runs,
              "compared": str(args.compare) if args.compare else None,
              "idle": idle["this"], "under_load": loaded["this"],
              "compared_idle": idle.get("compared"),
              "compared_under_load": loaded.get("compared")}
    write_report(args.out, report)
    for name in variants:
        for label, table in (("idle", idle[name]), ("both cores busy", loaded[name])):
            print(f"{name}, {label}")
            for verb, row in table.items():
                print(f"  {verb:18} median {row['median_ms']:7.1f} ms  p90 "
                      f"{row['p90_ms']:7.1f} ms  max {row['max_ms']:7.1f} ms")


if __name__ == "__main__":
    main()
