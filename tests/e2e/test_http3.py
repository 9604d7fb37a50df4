"""HTTP/3: `serve --http3` adds a QUIC listener (UDP, same port) for the servers terminating TLS,
with their certificates and routes, and advertises it with Alt-Svc on HTTPS answers. The client
is aioquic's, over real UDP sockets."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import certs
from tests.e2e.h3 import h3_get
from tests.e2e.harness import Bastion, curl
from tests.manifests import tls_secret_json

CONFIG = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: h3}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    tls: {mode: SIMPLE, credentialName: h3-credential}
    hosts: [h3.example.com]
  - port: {number: 443, name: https-mutual, protocol: HTTPS}
    tls: {mode: MUTUAL, credentialName: m3-credential}
    hosts: [m3.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: h3}
spec:
  hosts: [h3.example.com, m3.example.com]
  gateways: [h3]
  http:
  - directResponse: {status: 200, body: {string: over-http3}}
"""


@pytest.fixture
def h3_bastion(tmp_path: Path) -> Iterator[Bastion]:
    instance = Bastion(tmp_path, serve_args=("--http3",))
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


def test_http3_answers_over_quic(h3_bastion: Bastion, tmp_path: Path) -> None:
    root = certs.ca("root1")[0].cert
    h3_bastion.cli("apply", "-f", "-", input="\n---\n".join([
        tls_secret_json("h3-credential", certs.leaf("h3.example.com", 110,
                                                    sans=("h3.example.com",))),
        tls_secret_json("m3-credential", certs.leaf("m3.example.com", 111,
                                                    sans=("m3.example.com",)), ca=root),
        CONFIG]))
    h3_bastion.cli("wait", "--timeout", "10s", "vs", "h3")
    cafile = tmp_path / "root.crt"
    cafile.write_bytes(root)
    port = h3_bastion.secure_port
    # Over TCP the answer advertises HTTP/3 on the same port.
    deadline = time.monotonic() + 10
    while (result := curl("h3.example.com", port, "/", cafile)).stdout != "over-http3":
        assert time.monotonic() < deadline, result.stderr
        time.sleep(0.1)
    assert f'alt-svc: h3=":{port}"; ma=86400' in result.stderr.lower()
    status, headers, body = h3_get("h3.example.com", port, cafile)
    assert (status, body) == (200, b"over-http3")
    assert headers.get("alt-svc") == f'h3=":{port}"; ma=86400'
    # Mutual TLS over QUIC: a client certificate from the CA gets through.
    client = certs.write(certs.leaf("client.example.com", 112, sans=("client.example.com",)),
                         tmp_path, "client")
    status, _, body = h3_get("m3.example.com", port, cafile, client=client)
    assert (status, body) == (200, b"over-http3")
    # Without one, no answer comes (the handshake is not completed).
    with pytest.raises((TimeoutError, ConnectionError)):
        h3_get("m3.example.com", port, cafile, timeout=5)
