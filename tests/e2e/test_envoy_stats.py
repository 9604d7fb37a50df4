"""Envoy keeps Istio's default set of statistics, not per-request traffic counters, unless the
operator asks for more with `serve --envoy-stats-prefix`."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import certs
from tests.e2e.conftest import _running, _started
from tests.e2e.harness import Bastion, handshake_serial
from tests.manifests import HTTPBIN_GATEWAY, tls_secret_json

HOST = "httpbin.example.com"


def stat_names(bastion: Bastion) -> set[str]:
    admin = (bastion.state_dir / "envoy-admin-address").read_text().strip()
    with urllib.request.urlopen(f"http://{admin}/stats", timeout=10) as response:
        return {line.split(":")[0] for line in response.read().decode().splitlines()}


def serve_one_host(bastion: Bastion, tmp_path: Path) -> None:
    bastion.cli("apply", "-f", "-", input=tls_secret_json("httpbin-credential", certs.leaf(
        HOST, 5, "stats-root")) + "\n---\n" + HTTPBIN_GATEWAY)
    bastion.cli("wait", "--timeout", "10s", "gateway", "mygateway")
    bundle = tmp_path / "root.crt"
    bundle.write_bytes(certs.ca("stats-root")[0].cert)
    assert handshake_serial(HOST, bastion.secure_port, bundle) == 5


@pytest.fixture
def more_stats(tmp_path: Path) -> Iterator[Bastion]:
    yield from _running(_started(Bastion(tmp_path, serve_args=(
        "--envoy-stats-prefix", "listener."))))


def test_default_keeps_istios_statistics_only(bastion: Bastion, tmp_path: Path) -> None:
    serve_one_host(bastion, tmp_path)
    names = stat_names(bastion)
    assert "server.live" in names
    assert "cluster_manager.active_clusters" in names
    assert any(n.startswith("cluster.xds-grpc.") for n in names)
    assert not [n for n in names if n.startswith(("listener.", "http.", "cluster.outbound"))]


def test_more_statistics_on_request(more_stats: Bastion, tmp_path: Path) -> None:
    serve_one_host(more_stats, tmp_path)
    names = stat_names(more_stats)
    assert "server.live" in names
    assert [n for n in names if n.startswith("listener.") and n.endswith("ssl.handshake")]
    assert not [n for n in names if n.startswith("http.")]
