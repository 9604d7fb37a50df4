"""Faults: the control plane killed while traffic flows, Envoy killed (once and repeatedly),
and a configuration Envoy rejects."""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from pathlib import Path

from tests import certs
from tests.e2e.harness import Backend, Bastion, curl, handshake_serial
from tests.e2e.loops import HandshakeLoop, KeepAliveLoop
from tests.manifests import HTTPBIN_GATEWAY, sample_manifest, tls_secret_json

HOST = "httpbin.example.com"


def setup_gateway(bastion: Bastion, httpbin: Backend, tmp_path: Path) -> Path:
    pair = certs.leaf(HOST, 5)
    manifest = sample_manifest(bastion.cli("samples", "manifest", "httpbin").stdout,
                               httpbin.port)
    secret = tls_secret_json("httpbin-credential", pair)
    config = HTTPBIN_GATEWAY + """---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin}
spec:
  hosts: [httpbin.example.com]
  gateways: [mygateway]
  http:
  - match: [{uri: {prefix: /status}}]
    route: [{destination: {host: httpbin, port: {number: 8000}}}]
"""
    bastion.cli("apply", "-f", "-", input="\n---\n".join([manifest, secret, config]))
    bastion.cli("wait", "--timeout", "10s", "vs", "httpbin")
    cafile = tmp_path / "root.crt"
    cafile.write_bytes(certs.ca("root1")[0].cert)
    return cafile


def status_of(result) -> str:  # type: ignore[no-untyped-def]
    match = re.search(r"< HTTP/\S+ (\d+)", result.stderr)
    return match.group(1) if match else f"failed({result.returncode})"


def test_control_plane_crash_loses_nothing(bastion: Bastion, httpbin: Backend,
                                           tmp_path: Path) -> None:
    cafile = setup_gateway(bastion, httpbin, tmp_path)
    envoy_pid = bastion.envoy_pid()
    revision = bastion.status()["revision"]
    keepalive = KeepAliveLoop(HOST, bastion.secure_port, cafile, max_count=20000,
                              max_seconds=90)
    fresh = HandshakeLoop(HOST, bastion.secure_port, cafile, max_count=20000, max_seconds=90)
    keepalive.start()
    fresh.start()
    time.sleep(0.5)
    bastion.kill_control_plane()
    time.sleep(2.0)  # the gateway serves on its own, from its last configuration
    assert status_of(curl(HOST, bastion.secure_port, "/status/200", cafile)) == "200"
    bastion.start()
    # The same Envoy, adopted; the full configuration recovered from the store.
    assert bastion.envoy_pid() == envoy_pid
    status = bastion.status()
    assert status["revision"] == revision
    assert status["envoy"]["adopted"] is True
    bastion.cli("wait", "--timeout", "10s", "vs", "httpbin")
    assert bastion.status()["gateways"][0]["inSync"]
    # Changes flow again after the restart.
    bastion.cli("apply", "-f", "-", input=(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: extra}\n"
        "spec:\n  hosts: [httpbin.example.com]\n  gateways: [mygateway]\n  http:\n"
        "  - match: [{uri: {exact: /ping}}]\n"
        "    directResponse: {status: 200, body: {string: pong}}\n"))
    bastion.cli("wait", "--timeout", "10s", "vs", "extra")
    assert curl(HOST, bastion.secure_port, "/ping", cafile).stdout == "pong"
    kept, shook = keepalive.finish(), fresh.finish()
    print(f"during the crash: {kept.ok} keep-alive requests, {shook.ok} new handshakes")
    assert kept.errors == [] and shook.errors == []
    assert kept.ok > 50 and shook.ok > 50
    assert keepalive.connections == 1


def _wait_serving(bastion: Bastion, cafile: Path, old_pid: int | None,
                  limit: float = 15.0) -> tuple[int, float]:
    started = time.monotonic()
    while time.monotonic() - started < limit:
        pid = bastion.envoy_pid()
        if pid and pid != old_pid:
            try:
                handshake_serial(HOST, bastion.secure_port, cafile)
                return pid, time.monotonic() - started
            except OSError:
                pass
        time.sleep(0.02)
    raise AssertionError(f"Envoy did not serve again within {limit}s")


def test_envoy_crashes_are_restarted_with_backoff(bastion: Bastion, httpbin: Backend,
                                                  tmp_path: Path) -> None:
    cafile = setup_gateway(bastion, httpbin, tmp_path)
    pid = bastion.envoy_pid()
    recoveries = []
    for _ in range(3):
        os.kill(pid, signal.SIGKILL)
        pid, took = _wait_serving(bastion, cafile, pid)
        recoveries.append(took)
    print("Envoy back in service after SIGKILL, seconds: "
          + ", ".join(f"{t:.2f}" for t in recoveries))
    assert status_of(curl(HOST, bastion.secure_port, "/status/200", cafile)) == "200"
    envoy = bastion.status()["envoy"]
    assert envoy["restarts"] == 3
    assert envoy["lastExit"] == "signal 9"
    log = (bastion.state_dir / "bastion.log").read_text()
    delays = [float(d) for d in re.findall(r"restart \d+ in ([\d.]+)s", log)]
    assert delays == sorted(delays) and delays[-1] > delays[0], delays  # backing off


def test_rejected_configuration_keeps_the_last_good_one(bastion: Bastion, httpbin: Backend,
                                                        tmp_path: Path) -> None:
    """Envoy refuses a listener whose port another process holds: no control plane can see
    that coming, so it is the NACK to test. The listener Envoy already runs keeps serving."""
    cafile = setup_gateway(bastion, httpbin, tmp_path)
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", bastion.http_port))
    squatter.listen()
    plain = ("apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: plain}\n"
             "spec:\n  selector: {istio: ingressgateway}\n  servers:\n"
             "  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ['*']\n")
    try:
        bastion.cli("apply", "-f", "-", input=plain)
        deadline = time.monotonic() + 10
        lds = {}
        while time.monotonic() < deadline:
            lds = bastion.status()["gateways"][0]["types"]["LDS"]
            if lds["nackCurrent"]:
                break
            time.sleep(0.1)
        assert lds["nackCurrent"], lds
        assert "Address already in use" in lds["lastNack"]  # Envoy's own words
        log = (bastion.state_dir / "bastion.log").read_text()
        assert "rejected (NACK) LDS" in log
        assert "rejected now" in bastion.cli("status").stdout
        # The HTTPS listener Envoy already had keeps serving.
        assert status_of(curl(HOST, bastion.secure_port, "/status/200", cafile)) == "200"
    finally:
        squatter.close()
    # The rejected listener is not sent again as it was; removing it is accepted, and once the
    # port is free, adding it again is accepted too.
    bastion.cli("delete", "gateway", "plain")
    bastion.cli("wait", "--timeout", "10s", "gateway", "mygateway")
    bastion.cli("apply", "-f", "-", input=plain)
    bastion.cli("wait", "--timeout", "10s", "gateway", "plain")
    assert not bastion.status()["gateways"][0]["types"]["LDS"]["nackCurrent"]
