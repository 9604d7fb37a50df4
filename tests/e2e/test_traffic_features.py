"""Fault injection, mirroring and CORS through real Envoy, with real backends that record what
reaches them: an abort's status and share, a delay, mirrored requests arriving at the mirror,
and CORS preflights answered for allowed origins only."""

from __future__ import annotations

import http.client
import time
from collections.abc import Iterator

import pytest

from tests.e2e.backends import Recorder
from tests.e2e.harness import Bastion
from tests.manifests import backend_yaml

CONFIG = """
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
  - match: [{{uri: {{prefix: /abort-all}}}}]
    fault: {{abort: {{httpStatus: 418, percentage: {{value: 100}}}}}}
    route: [{{destination: {{host: web, port: {{number: 80}}}}}}]
  - match: [{{uri: {{prefix: /abort-half}}}}]
    fault: {{abort: {{httpStatus: 503, percentage: {{value: 50}}}}}}
    route: [{{destination: {{host: web, port: {{number: 80}}}}}}]
    retries: {{attempts: 0}}
  - match: [{{uri: {{prefix: /slow}}}}]
    fault: {{delay: {{fixedDelay: 400ms, percentage: {{value: 100}}}}}}
    route: [{{destination: {{host: web, port: {{number: 80}}}}}}]
  - match: [{{uri: {{prefix: /copy}}}}]
    mirror: {{host: shadow, port: {{number: 80}}}}
    route: [{{destination: {{host: web, port: {{number: 80}}}}}}]
  - corsPolicy:
      allowOrigins: [{{exact: "https://app.example.com"}}]
      allowMethods: [GET, POST]
      allowHeaders: [x-token]
      maxAge: 1h
    route: [{{destination: {{host: web, port: {{number: 80}}}}}}]
"""


@pytest.fixture
def backends() -> Iterator[tuple[Recorder, Recorder]]:
    web, shadow = Recorder(), Recorder()
    try:
        yield web, shadow
    finally:
        web.close()
        shadow.close()


def request(port: int, path: str, method: str = "GET", headers: dict[str, str] | None = None
            ) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, headers={"Host": "app.example.com", **(headers or {})})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def ready(bastion: Bastion, backends: tuple[Recorder, Recorder]) -> int:
    web, shadow = backends
    backends = [backend_yaml("web", web.port), backend_yaml("shadow", shadow.port)]
    bastion.cli("apply", "-f", "-", input=CONFIG.format() + "".join("---\n" + b for b in backends))
    bastion.cli("wait", "--timeout", "10s", "vs", "app")
    deadline = time.monotonic() + 10
    while request(bastion.http_port, "/")[0] != 200:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return bastion.http_port


def test_fault_abort_and_delay(bastion: Bastion, backends: tuple[Recorder, Recorder]) -> None:
    port = ready(bastion, backends)
    web = backends[0]
    status, _, body = request(port, "/abort-all")
    assert status == 418 and b"fault filter abort" in body
    assert not web.paths("/abort-all")  # never reached the backend
    statuses = [request(port, "/abort-half")[0] for _ in range(400)]
    aborted = statuses.count(503) / len(statuses)
    assert set(statuses) <= {200, 503}
    assert 0.40 < aborted < 0.60, aborted  # 50 % within tolerance over 400 requests
    started = time.monotonic()
    assert request(port, "/slow")[0] == 200
    assert time.monotonic() - started >= 0.38  # 400 ms, less Envoy's timer granularity


def test_mirrored_requests_reach_the_mirror(bastion: Bastion,
                                            backends: tuple[Recorder, Recorder]) -> None:
    port = ready(bastion, backends)
    web, shadow = backends
    for n in range(5):
        assert request(port, f"/copy/{n}")[0] == 200
    deadline = time.monotonic() + 5
    while len(shadow.paths("/copy/")) < 5:
        assert time.monotonic() < deadline, shadow.seen
        time.sleep(0.05)
    assert sorted(shadow.paths("/copy/")) == [f"/copy/{n}" for n in range(5)]
    assert all(s.host.startswith("app.example.com-shadow") for s in shadow.seen
               if s.path.startswith("/copy/"))  # Envoy marks the mirror's Host
    assert len(web.paths("/copy/")) == 5


def test_cors_preflight(bastion: Bastion, backends: tuple[Recorder, Recorder]) -> None:
    port = ready(bastion, backends)
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "x-token"}
    status, headers, _ = request(port, "/", "OPTIONS",
                                 {"Origin": "https://app.example.com", **preflight})
    assert status == 200
    assert headers["access-control-allow-origin"] == "https://app.example.com"
    assert "POST" in headers["access-control-allow-methods"]
    assert headers["access-control-max-age"] == "3600"
    _, other, _ = request(port, "/", "OPTIONS", {"Origin": "https://evil.example", **preflight})
    assert "access-control-allow-origin" not in other
    status, simple, _ = request(port, "/", headers={"Origin": "https://app.example.com"})
    assert status == 200 and simple["access-control-allow-origin"] == "https://app.example.com"
