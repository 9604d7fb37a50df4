"""Durability: `kill -9` in the middle of a large apply leaves every object wholly old or wholly
new, and nothing the CLI was told is stored is ever lost."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.harness import Bastion

COUNT = 1500


def configmaps(value: str) -> str:
    docs = [{"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": f"cm-{i:04d}", "namespace": "default"},
             "data": {"value": value, "padding": "x" * 200}} for i in range(COUNT)]
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": docs})


def values(bastion: Bastion) -> list[str]:
    items = json.loads(bastion.cli("get", "configmaps", "-o", "json").stdout)["items"]
    assert len(items) == COUNT
    return [item["data"]["value"] for item in items]


def test_kill_during_apply_is_all_or_nothing(bastion: Bastion, tmp_path: Path) -> None:
    bastion.cli("apply", "-f", "-", input=configmaps("gen-0"))
    acknowledged = "gen-0"
    outcomes = []
    for attempt, delay in enumerate((0.05, 0.15, 0.3, 0.6, 1.2), 1):
        new = f"gen-{attempt}"
        manifest = tmp_path / f"{new}.json"
        manifest.write_text(configmaps(new))
        writer = subprocess.Popen(
            [sys.executable, "-m", "bastion", "apply", "-f", str(manifest)], env=bastion.env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        bastion.kill_control_plane()
        out, _ = writer.communicate(timeout=60)
        if writer.returncode == 0 and out.count("configured") == COUNT:
            acknowledged = new  # the CLI was told: it must survive
        bastion.start()
        seen = set(values(bastion))
        assert len(seen) == 1, f"half-applied batch after kill at {delay}s: {sorted(seen)}"
        (value,) = seen
        assert value in (acknowledged, new)
        if value == new:
            acknowledged = new
        outcomes.append((delay, writer.returncode, value == new))
    print("kill delay, CLI exit code, batch landed: " + "; ".join(
        f"{d}s {c} {landed}" for d, c, landed in outcomes))
    # The gateway side survived too: the store still opens and answers.
    assert bastion.status()["revision"] >= COUNT
