"""TLS passthrough: a PASSTHROUGH server forwards the TLS stream, untouched, to a backend chosen
by SNI (VirtualService `tls` rules); the backend, `openssl s_server` with a certificate of its
own, terminates it. A server terminating TLS shares the port."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import certs
from tests.e2e.harness import Bastion, curl, free_port, handshake_serial, wait_port
from tests.manifests import tls_secret_json

CONFIG = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: edge}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 443, name: https-web, protocol: HTTPS}}
    tls: {{mode: SIMPLE, credentialName: web-credential}}
    hosts: [web.example.com]
  - port: {{number: 443, name: tls-pass, protocol: TLS}}
    tls: {{mode: PASSTHROUGH}}
    hosts: [db.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: pass}}
spec:
  hosts: [db.example.com]
  gateways: [edge]
  tls:
  - match: [{{port: 443, sniHosts: [db.example.com]}}]
    route: [{{destination: {{host: db.internal, port: {{number: 5443}}}}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: web}}
spec:
  hosts: [web.example.com]
  gateways: [edge]
  http:
  - directResponse: {{status: 200, body: {{string: terminated-here}}}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: db}}
spec:
  hosts: [db.internal]
  ports: [{{number: 5443, name: tls-db, protocol: TLS}}]
  resolution: STATIC
  endpoints: [{{address: 127.0.0.1, ports: {{tls-db: {port}}}}}]
"""


@pytest.fixture
def tls_backend(tmp_path: Path) -> Iterator[int]:
    """`openssl s_server` on a free port with its own certificate (serial 77)."""
    cert, key = certs.write(certs.leaf("db.example.com", 77, "root2"), tmp_path, "backend")
    port = free_port()
    log = open(tmp_path / "s_server.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert",
                             str(cert), "-key", str(key), "-www", "-quiet"],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_port(port)
        yield port
    finally:
        proc.kill()
        proc.wait(timeout=10)
        log.close()


def test_passthrough_reaches_the_backends_own_tls(bastion: Bastion, tls_backend: int,
                                                  tmp_path: Path) -> None:
    web = certs.leaf("web.example.com", 78)
    bastion.cli("apply", "-f", "-", input="\n---\n".join([
        tls_secret_json("web-credential", web), CONFIG.format(port=tls_backend)]))
    bastion.cli("wait", "--timeout", "10s", "vs", "pass")
    backend_ca, gateway_ca = tmp_path / "root2.crt", tmp_path / "root1.crt"
    backend_ca.write_bytes(certs.ca("root2")[0].cert)
    gateway_ca.write_bytes(certs.ca("root1")[0].cert)
    deadline = time.monotonic() + 10
    serial = None
    while time.monotonic() < deadline:
        try:
            serial = handshake_serial("db.example.com", bastion.secure_port, backend_ca)
            break
        except OSError:
            time.sleep(0.1)
    assert serial == 77  # the backend's own certificate: the gateway did not terminate TLS
    # The backend answers over the passed-through connection (s_server -www's status page).
    result = curl("db.example.com", bastion.secure_port, "/", backend_ca)
    assert result.returncode == 0, result.stderr
    assert "s_server" in result.stdout
    # The terminating server on the same port still answers with the gateway's certificate.
    assert handshake_serial("web.example.com", bastion.secure_port, gateway_ca) == 78
    assert curl("web.example.com", bastion.secure_port, "/", gateway_ca).stdout == \
        "terminated-here"
