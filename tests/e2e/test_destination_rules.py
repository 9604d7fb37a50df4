"""DestinationRules through real Envoy and real backends: consistent hashing keeps a key on one
endpoint, outlier detection ejects a failing endpoint, and the gateway re-encrypts to a TLS
backend that requires a client certificate, whose rotation works like the gateway's own."""

from __future__ import annotations

import http.client
import os
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import certs
from tests.e2e.backends import Recorder
from tests.e2e.harness import Bastion
from tests.manifests import tls_secret_json

ROUTES = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: gw}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 80, name: http, protocol: HTTP}}
    hosts: [app.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: app}}
spec:
  hosts: [app.example.com]
  gateways: [gw]
  http:
  - route: [{{destination: {{host: pool, port: {{number: 80}}}}}}]
    retries: {{attempts: 0}}
---
apiVersion: v1
kind: Service
metadata: {{name: pool}}
spec: {{ports: [{{name: http, port: 80}}]}}
---
apiVersion: v1
kind: Endpoints
metadata: {{name: pool}}
subsets:
- addresses: [{{ip: 127.0.0.1}}]
  ports: [{{name: http, port: {first}}}]
- addresses: [{{ip: 127.0.0.2}}]
  ports: [{{name: http, port: {second}}}]
"""


def get(port: int, headers: dict[str, str] | None = None) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/", headers={"Host": "app.example.com", **(headers or {})})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def until_ok(port: int, headers: dict[str, str] | None = None) -> str:
    deadline = time.monotonic() + 15
    while True:
        try:
            status, body = get(port, headers)
        except OSError as exc:  # the listener is not there yet
            status, body = 0, repr(exc)
        if status == 200:
            return body
        assert time.monotonic() < deadline, (status, body)
        time.sleep(0.1)


@pytest.fixture
def pair() -> Iterator[tuple[Recorder, Recorder]]:
    first, second = Recorder("first"), Recorder("second", "127.0.0.2")
    try:
        yield first, second
    finally:
        first.close()
        second.close()


def apply_pool(bastion: Bastion, pair: tuple[Recorder, Recorder], rule: str) -> None:
    bastion.cli("apply", "-f", "-", input=ROUTES.format(first=pair[0].port,
                                                         second=pair[1].port) + "---\n" + rule)
    bastion.cli("wait", "--timeout", "10s", "vs", "app")


def test_consistent_hashing_keeps_a_key_on_one_endpoint(bastion: Bastion,
                                                        pair: tuple[Recorder, Recorder]) -> None:
    apply_pool(bastion, pair, """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: pool}
spec:
  host: pool
  trafficPolicy:
    loadBalancer: {consistentHash: {httpHeaderName: x-user}}
""")
    until_ok(bastion.http_port, {"x-user": "warmup"})
    chosen = {}
    for user in (f"user-{n}" for n in range(24)):
        answers = {get(bastion.http_port, {"x-user": user})[1] for _ in range(5)}
        assert len(answers) == 1, (user, answers)  # every request of a key: one endpoint
        chosen[user] = answers.pop()
    assert set(chosen.values()) == {"first", "second"}  # and the keys spread over both


def test_outlier_detection_ejects_a_failing_endpoint(bastion: Bastion,
                                                     pair: tuple[Recorder, Recorder]) -> None:
    pair[1].status = 500
    apply_pool(bastion, pair, """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: pool}
spec:
  host: pool
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 60s,
                       maxEjectionPercent: 100}
""")
    until_ok(bastion.http_port)
    statuses = [get(bastion.http_port)[0] for _ in range(30)]
    assert statuses.count(500) <= 1, statuses  # ejected after its first failure
    assert statuses[-20:] == [200] * 20
    failing_hits = pair[1].hits
    for _ in range(20):
        get(bastion.http_port)
    assert pair[1].hits == failing_hits  # no request reaches it while ejected


def _tls_backend(tmp_path: Path, client_root: str) -> Recorder:
    server = certs.leaf("mutual.internal", 120, "root2", sans=("mutual.internal",))
    cert, key = certs.write(server, tmp_path, "backend")
    ca = tmp_path / f"{client_root}.crt"
    ca.write_bytes(certs.ca(client_root)[0].cert)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    context.load_verify_locations(str(ca))
    context.verify_mode = ssl.CERT_REQUIRED
    return Recorder("tls-backend", context=context, keep_alive=False)


def mutual_config(port: int, tls: str) -> str:
    """A route to a TLS backend on `port`, and a DestinationRule with `tls` for it."""
    return f"""
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: gw}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 80, name: http, protocol: HTTP}}
    hosts: [app.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: app}}
spec:
  hosts: [app.example.com]
  gateways: [gw]
  http:
  - route: [{{destination: {{host: mutual, port: {{number: 443}}}}}}]
---
apiVersion: v1
kind: Service
metadata: {{name: mutual}}
spec: {{ports: [{{name: https, port: 443}}]}}
---
apiVersion: v1
kind: Endpoints
metadata: {{name: mutual}}
subsets: [{{addresses: [{{ip: 127.0.0.1}}], ports: [{{name: https, port: {port}}}]}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: mutual}}
spec:
  host: mutual
  trafficPolicy:
    tls: {tls}
"""


def test_reencryption_to_a_backend_requiring_a_client_certificate(
        bastion: Bastion, tmp_path: Path) -> None:
    backend = _tls_backend(tmp_path, "root3")
    try:
        config = mutual_config(backend.port, "{mode: MUTUAL, credentialName: to-backend, "
                               "sni: mutual.internal, subjectAltNames: [mutual.internal]}")
        root2 = certs.ca("root2")[0].cert
        bastion.cli("apply", "-f", "-", input="\n---\n".join([
            tls_secret_json("to-backend", certs.leaf("gateway.example.com", 121, "root3"),
                            ca=root2), config]))
        assert until_ok(bastion.http_port) == "tls-backend client-serial=121"
        # Rotation: the Secret replaced, new connections present the new certificate.
        bastion.cli("apply", "-f", "-", input=tls_secret_json(
            "to-backend", certs.leaf("gateway.example.com", 122, "root3"), ca=root2))
        deadline = time.monotonic() + 10
        while (answer := get(bastion.http_port)) != (200, "tls-backend client-serial=122"):
            assert answer[0] == 200, answer  # no request fails during the rotation
            assert time.monotonic() < deadline, answer
            time.sleep(0.05)
        # A client certificate the backend does not trust: refused, so 503 at the gateway.
        bastion.cli("apply", "-f", "-", input=tls_secret_json(
            "to-backend", certs.leaf("gateway.example.com", 123, "root1"), ca=root2))
        deadline = time.monotonic() + 10
        while get(bastion.http_port)[0] == 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert get(bastion.http_port)[0] == 503
    finally:
        backend.close()


def test_reencryption_with_certificate_files(tmp_path: Path) -> None:
    """`clientCertificate`, `privateKey` and `caCertificates` as files under `--cert-dir`, as an
    Istio gateway reads them from mounted volumes: verified and presented, and rotated by
    replacing the files."""
    backend = _tls_backend(tmp_path, "root3")
    cert_dir = tmp_path / "certs"
    cert_dir.mkdir()
    cert, key = certs.write(certs.leaf("gateway.example.com", 131, "root3"), cert_dir, "client")
    ca = cert_dir / "backend-ca.crt"
    ca.write_bytes(certs.ca("root2")[0].cert)
    bastion = Bastion(tmp_path, serve_args=("--cert-dir", str(cert_dir)))
    bastion.start()
    try:
        bastion.cli("apply", "-f", "-", input=mutual_config(backend.port, (
            f"{{mode: MUTUAL, clientCertificate: {cert}, privateKey: {key}, caCertificates: "
            f"{ca}, sni: mutual.internal, subjectAltNames: [mutual.internal]}}")))
        assert until_ok(bastion.http_port) == "tls-backend client-serial=131"
        rotated = certs.leaf("gateway.example.com", 132, "root3")
        for path, data in ((key, rotated.key), (cert, rotated.cert)):
            temporary = path.with_name(path.name + ".new")
            temporary.write_bytes(data)
            os.replace(temporary, path)
        deadline = time.monotonic() + 10
        while (answer := get(bastion.http_port)) != (200, "tls-backend client-serial=132"):
            assert answer[0] == 200, answer  # no request fails during the rotation
            assert time.monotonic() < deadline, answer
            time.sleep(0.05)
        # The backend's certificate no longer verifies against the CA file: 503, and said.
        ca.write_bytes(certs.ca("root1")[0].cert)
        deadline = time.monotonic() + 10
        while get(bastion.http_port)[0] == 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert get(bastion.http_port)[0] == 503
        outside = bastion.cli("apply", "-f", "-", check=False, input=mutual_config(
            backend.port, "{mode: SIMPLE, caCertificates: /etc/ssl/certs/ca.pem}"))
        assert outside.returncode != 0
        assert ("spec.trafficPolicy.tls.caCertificates: '/etc/ssl/certs/ca.pem' is outside the "
                "directories allowed by --cert-dir") in outside.stderr, outside.stderr
    finally:
        bastion.stop()
        backend.close()
