"""A few seconds of each benchmark, so the harness keeps working. These check that the tools
ran and produced reports; they assert no performance figure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, timeout: float = 300) -> None:
    result = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


def test_dataplane_smoke(tmp_path: Path) -> None:
    out = tmp_path / "dataplane.json"
    run("bench.dataplane", "--seconds", "1", "--repeat", "1", "--workloads", "h2-keepalive", "h1-keepalive",
        "new-conn-ecdsa", "mtls-new-conn", "--out", str(out))
    report = json.loads(out.read_text())
    for workload, by_name in report["results"].items():
        assert set(by_name) == {"bastion", "envoy-static", "nginx", "haproxy"}, workload
        for name, result in by_name.items():
            assert result["rps"] > 0, (workload, name, result)
    assert out.with_suffix(".md").exists()


def test_scale_and_rotation_smoke(tmp_path: Path) -> None:
    scale = tmp_path / "scale.json"
    run("bench.scale", "--hosts", "5", "20", "--changes", "3", "--out", str(scale))
    report = json.loads(scale.read_text())
    assert [r["hosts"] for r in report["results"]] == [5, 20]
    assert all(r["rotation"]["count"] == 3 for r in report["results"])
    assert scale.with_suffix(".png").stat().st_size > 0
    rotation = tmp_path / "rotation.json"
    run("bench.rotation", "--rotations", "3", "--out", str(rotation))
    assert json.loads(rotation.read_text())["results"]["apply"]["count"] == 3


def test_cli_and_rotation_under_load_smoke(tmp_path: Path) -> None:
    cli = tmp_path / "cli.json"
    run("bench.cli", "--runs", "2", "--out", str(cli))
    report = json.loads(cli.read_text())
    assert set(report["idle"]) == set(report["under_load"]) == {
        "create secret tls", "apply -f", "get"}
    assert all(row["count"] == 2 for row in report["idle"].values())
    loaded = tmp_path / "rotation-load.json"
    run("bench.rotation_load", "--runs", "1", "--out", str(loaded))
    runs = json.loads(loaded.read_text())["runs"]
    assert len(runs) == 1 and runs[0]["handshakes"] > 0


def test_features_smoke(tmp_path: Path) -> None:
    out = tmp_path / "features.json"
    run("bench.features", "--seconds", "1", "--repeat", "1", "--variants", "plain", "cors",
        "--out", str(out))
    report = json.loads(out.read_text())
    assert set(report["results"]) == {"plain", "cors"}
    assert all(r["rps"] > 0 for r in report["results"].values())


def test_remote_gateways_smoke(tmp_path: Path) -> None:
    out = tmp_path / "remote.json"
    run("bench.remote", "--gateways", "2", "--rotations", "2", "--hosts", "6", "--groups", "2",
        "--out", str(out))
    report = json.loads(out.read_text())
    assert [r["gateways"] for r in report["rotation"]] == [2]
    assert report["rotation"][0]["rotation_ack_from_apply_exit"]["count"] == 2
    assert [r["groups"] for r in report["scale"]] == [1, 2]
