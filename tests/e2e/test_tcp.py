"""TCP at the gateway through real Envoy: a TCP server forwarding to an echo backend by a
VirtualService tcp route, and a TLS server that ends TLS with the gateway's certificate and
forwards the bytes inside to the same backend."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from tests import certs
from tests.e2e.harness import Bastion, free_port
from tests.manifests import tls_secret_json

CONFIG = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: tcp}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 31400, name: tcp, protocol: TCP}}
    hosts: ["*"]
  - port: {{number: 443, name: tls-echo, protocol: TLS}}
    tls: {{mode: SIMPLE, credentialName: echo-credential}}
    hosts: [echo.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: echo}}
spec:
  hosts: ["*"]
  gateways: [tcp]
  tcp:
  - route: [{{destination: {{host: echo, port: {{number: 9000}}}}}}]
---
apiVersion: v1
kind: Service
metadata: {{name: echo}}
spec: {{ports: [{{name: tcp, port: 9000}}]}}
---
apiVersion: v1
kind: Endpoints
metadata: {{name: echo}}
subsets: [{{addresses: [{{ip: 127.0.0.1}}], ports: [{{name: tcp, port: {port}}}]}}]
"""


class Echo:
    """A real TCP backend that sends back what it receives, prefixed with `echo:`."""

    def __init__(self) -> None:
        self.port = free_port()
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _serve(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(4096):
                conn.sendall(b"echo:" + data)

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def echo() -> Iterator[Echo]:
    backend = Echo()
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture
def tcp_bastion(tmp_path: Path) -> Iterator[tuple[Bastion, int]]:
    port = free_port()
    instance = Bastion(tmp_path, serve_args=("--port-map", f"31400={port}"))
    instance.start()
    try:
        yield instance, port
    finally:
        instance.stop()


def exchange(sock: socket.socket, payload: bytes) -> bytes:
    sock.sendall(payload)
    received = b""
    while len(received) < len(payload) + 5:
        chunk = sock.recv(4096)
        if not chunk:
            break
        received += chunk
    return received


def test_tcp_and_tls_terminated_tcp(tcp_bastion: tuple[Bastion, int], echo: Echo,
                                    tmp_path: Path) -> None:
    bastion, tcp_port = tcp_bastion
    bastion.cli("apply", "-f", "-", input="\n---\n".join([
        tls_secret_json("echo-credential", certs.leaf("echo.example.com", 130)),
        CONFIG.format(port=echo.port)]))
    bastion.cli("wait", "--timeout", "10s", "vs", "echo")
    with socket.create_connection(("127.0.0.1", tcp_port), timeout=10) as plain:
        assert exchange(plain, b"hello over tcp") == b"echo:hello over tcp"

    context = ssl.create_default_context(cafile=None)
    context.load_verify_locations(cadata=certs.ca("root1")[0].cert.decode())
    context.check_hostname = False
    with socket.create_connection(("127.0.0.1", bastion.secure_port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="echo.example.com") as tls:
        der = tls.getpeercert(binary_form=True)
        assert der is not None and x509.load_der_x509_certificate(der).serial_number == 130
        assert tls.selected_alpn_protocol() is None
        assert exchange(tls, b"hello inside tls") == b"echo:hello inside tls"
