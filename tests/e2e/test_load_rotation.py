"""Rotation under load: h2load (HTTP/2), a kept-alive HTTP/1.1 client and a client opening a new
TLS connection for every request run while the credential is rotated 50 times and a second
host's server is added and removed. No request fails, and every new handshake presents the
certificate current at that moment."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tests import certs
from tests.e2e.harness import Backend, Bastion, handshake_serial
from tests.e2e.loops import H2Load, HandshakeLoop, KeepAliveLoop
from tests.manifests import tls_secret_json as secret

HOST = "hello.example.com"
ROTATIONS = 50



def gateway(with_second: bool) -> str:
    second = ("  - port: {number: 443, name: https-other, protocol: HTTPS}\n"
              "    tls: {mode: SIMPLE, credentialName: other-credential}\n"
              "    hosts: [other.example.com]\n") if with_second else ""
    return ("apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw}\n"
            "spec:\n  selector: {istio: ingressgateway}\n  servers:\n"
            "  - port: {number: 443, name: https, protocol: HTTPS}\n"
            "    tls: {mode: SIMPLE, credentialName: hello-credential}\n"
            f"    hosts: [{HOST}]\n" + second)


ROUTES = f"""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: hello}}
spec:
  hosts: [{HOST}]
  gateways: [gw]
  http:
  - match: [{{uri: {{exact: /hello}}}}]
    route: [{{destination: {{host: helloworld-v1, port: {{number: 5000}}}}}}]
  - match: [{{uri: {{exact: /ping}}}}]
    directResponse: {{status: 200, body: {{string: pong}}}}
"""


def test_rotation_and_server_churn_under_load(bastion: Bastion, helloworld: Backend,
                                              tmp_path: Path) -> None:
    if shutil.which("h2load") is None:
        pytest.fail("h2load is required (scripts/setup-env.sh installs nghttp2-client)")
    cafile = tmp_path / "root.crt"
    cafile.write_bytes(certs.ca("root1")[0].cert)
    endpoints = (f"apiVersion: v1\nkind: Endpoints\nmetadata: {{name: helloworld-v1}}\n"
                 f"subsets: [{{addresses: [{{ip: 127.0.0.1}}], ports: "
                 f"[{{name: http, port: {helloworld.port}}}]}}]\n")
    service = ("apiVersion: v1\nkind: Service\nmetadata: {name: helloworld-v1}\n"
               "spec: {ports: [{name: http, port: 5000}]}\n")
    bastion.cli("apply", "-f", "-", input="\n---\n".join([
        service, endpoints, ROUTES, gateway(False),
        secret("hello-credential", certs.leaf(HOST, 100)),
        secret("other-credential", certs.leaf("other.example.com", 7))]))
    bastion.cli("wait", "--timeout", "10s", "vs", "hello")
    port = bastion.secure_port
    assert handshake_serial(HOST, port, cafile) == 100
    files = [certs.write(certs.leaf(HOST, 100 + i), tmp_path, f"leaf{i}")
             for i in range(1, ROTATIONS + 1)]

    h2load = H2Load(HOST, port, "/ping")
    keepalive = KeepAliveLoop(HOST, port, cafile, path="/hello", max_count=50000,
                              max_seconds=120)
    fresh = HandshakeLoop(HOST, port, cafile, max_count=50000, max_seconds=120)
    for worker in (h2load, keepalive, fresh):
        worker.start()
    started = time.monotonic()
    for i in range(1, ROTATIONS + 1):
        cert, key = files[i - 1]
        if i % 2:
            pair = certs.leaf(HOST, 100 + i)
            bastion.cli("apply", "-f", "-", input=secret("hello-credential", pair))
        else:
            bastion.cli("-n", "istio-system", "delete", "secret", "hello-credential")
            bastion.cli("create", "-n", "istio-system", "secret", "tls", "hello-credential",
                        f"--cert={cert}", f"--key={key}")
        if i % 10 == 0:
            bastion.cli("apply", "-f", "-", input=gateway(with_second=(i // 10) % 2 == 1))
        bastion.cli("wait", "--timeout", "10s", "-n", "istio-system", "secret",
                    "hello-credential")
        # Right after the gateway accepted it, a new handshake sees this rotation's serial.
        assert handshake_serial(HOST, port, cafile) == 100 + i
    rotating_for = time.monotonic() - started
    kept, shook, h2 = keepalive.finish(), fresh.finish(), h2load.finish()
    print(f"{ROTATIONS} rotations in {rotating_for:.1f}s; h2load {h2['succeeded']} requests "
          f"in {len(h2load.reports)} runs ({h2['failed']} failed, {h2['errored']} errored); "
          f"keep-alive {kept.ok}; new connections {shook.ok} seeing {len(shook.serials)} "
          "distinct certificates")
    assert h2["failed"] == h2["errored"] == h2["timeout"] == 0, h2load.reports[-1:]
    assert h2["succeeded"] == h2["done"] == h2["2xx"] and h2["succeeded"] > 1000, h2
    assert kept.errors == [] and kept.ok > 100, kept.errors[:5]
    assert shook.errors == [] and shook.ok > 100, shook.errors[:5]
    # New handshakes moved forward with the rotations and never went back to an older one.
    assert shook.serial_sequence == sorted(shook.serial_sequence)
    assert len(shook.serials) > ROTATIONS // 2
