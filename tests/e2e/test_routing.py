"""VirtualService routing through real Envoy, seen from both ends: redirects (including Istio
1.30's `prefixRewrite`) and rewrites, a route timeout and retry counts at a backend that fails
on purpose, header changes at the backend and at the client, and a weighted split over 1,000
requests."""

from __future__ import annotations

import http.client
import time
from collections.abc import Iterator

import pytest

from tests.e2e.backends import Answer, Recorder
from tests.e2e.harness import Bastion
from tests.manifests import backend_yaml

HOST = "route.example.com"

CONFIG = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: gw}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 80, name: http, protocol: HTTP}}
    hosts: [route.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: routes}}
spec:
  hosts: [route.example.com]
  gateways: [gw]
  http:
  - match: [{{uri: {{prefix: /legacy}}}}]
    redirect: {{prefixRewrite: /current}}
  - match: [{{uri: {{exact: /moved}}}}]
    redirect: {{uri: /new, authority: other.example.com, scheme: https, port: 8443,
               redirectCode: 308}}
  - match: [{{uri: {{prefix: /api/v1}}}}]
    rewrite: {{uri: /v2}}
    route: [{{destination: {{host: web}}}}]
  - match: [{{uri: {{prefix: /regex/}}}}]
    rewrite: {{uriRegexRewrite: {{match: "^/regex/([a-z]+)/([a-z]+)$", rewrite: "/\\\\2/\\\\1"}}}}
    route: [{{destination: {{host: web}}}}]
  - match: [{{uri: {{prefix: /authority}}}}]
    rewrite: {{authority: internal.example.svc}}
    route: [{{destination: {{host: web}}}}]
  - match: [{{uri: {{prefix: /slow}}}}]
    timeout: 300ms
    route: [{{destination: {{host: web}}}}]
  - match: [{{uri: {{prefix: /flaky}}}}]
    retries: {{attempts: 3, retryOn: 5xx}}
    route: [{{destination: {{host: web}}}}]
  - match: [{{uri: {{prefix: /teapot}}}}]
    retries: {{attempts: 2, retryOn: "418"}}
    route: [{{destination: {{host: web}}}}]
  - match: [{{uri: {{prefix: /once}}}}]
    retries: {{attempts: 0}}
    route: [{{destination: {{host: web}}}}]
  - match: [{{uri: {{prefix: /per-try}}}}]
    retries: {{attempts: 2, perTryTimeout: 200ms, retryOn: 5xx}}
    route: [{{destination: {{host: web}}}}]
  - match: [{{uri: {{prefix: /headers}}}}]
    headers:
      request: {{set: {{x-set: a}}, add: {{x-add: b}}, remove: [x-drop]}}
      response: {{set: {{x-reply: c}}, remove: [x-backend]}}
    route:
    - destination: {{host: web}}
      headers: {{request: {{set: {{x-destination: d}}}}, response: {{add: {{x-from: web}}}}}}
  - match: [{{uri: {{prefix: /split}}}}]
    route:
    - {{destination: {{host: web}}, weight: 70}}
    - {{destination: {{host: canary}}, weight: 30}}
"""


@pytest.fixture
def backends() -> Iterator[tuple[Recorder, Recorder]]:
    web, canary = Recorder("web"), Recorder("canary", "127.0.0.2")
    web.answers = {"/slow": Answer(delay_s=2.0), "/flaky": Answer(503),
                   "/teapot": Answer(418), "/once": Answer(503),
                   "/per-try": Answer(delay_s=1.0),
                   "/headers": Answer(headers=(("x-backend", "leaked"),))}
    try:
        yield web, canary
    finally:
        web.close()
        canary.close()


@pytest.fixture
def port(bastion: Bastion, backends: tuple[Recorder, Recorder]) -> int:
    web, canary = backends
    backends = [backend_yaml("web", web.port), backend_yaml("canary", canary.port, "127.0.0.2")]
    bastion.cli("apply", "-f", "-", input=CONFIG.format() + "".join("---\n" + b for b in backends))
    bastion.cli("wait", "--timeout", "10s", "vs", "routes")
    deadline = time.monotonic() + 10
    while request(bastion.http_port, "/api/v1/ready")[0] != 200:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return bastion.http_port


def request(port: int, path: str, headers: dict[str, str] | None = None,
            connection: http.client.HTTPConnection | None = None
            ) -> tuple[int, http.client.HTTPMessage, str]:
    conn = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": HOST, **(headers or {})})
        response = conn.getresponse()
        return response.status, response.headers, response.read().decode()
    finally:
        if connection is None:
            conn.close()


def test_redirects(port: int) -> None:
    status, headers, _ = request(port, "/legacy/page?q=1")
    assert status == 301
    assert headers["location"] == f"http://{HOST}/current/page?q=1"  # the prefix replaced
    status, headers, _ = request(port, "/moved")
    assert (status, headers["location"]) == (308, "https://other.example.com:8443/new")


def test_rewrites_reach_the_backend(port: int, backends: tuple[Recorder, Recorder]) -> None:
    web = backends[0]
    assert request(port, "/api/v1/items?page=2")[0] == 200
    assert request(port, "/regex/first/second")[0] == 200
    assert request(port, "/authority/x")[0] == 200
    assert web.paths("/v2/items") == ["/v2/items?page=2"]
    assert web.paths("/second") == ["/second/first"]
    assert [s.host for s in web.seen if s.path == "/authority/x"] == ["internal.example.svc"]


def test_timeout_and_retry_counts(port: int, backends: tuple[Recorder, Recorder]) -> None:
    web = backends[0]
    started = time.monotonic()
    status, _, body = request(port, "/slow")
    elapsed = time.monotonic() - started
    assert (status, body) == (504, "upstream request timeout")
    assert 0.25 <= elapsed < 1.5, elapsed  # the route's 300 ms, not the backend's 2 s
    assert request(port, "/flaky")[0] == 503
    assert len(web.paths("/flaky")) == 4  # the first attempt and 3 retries
    assert request(port, "/teapot")[0] == 418
    assert len(web.paths("/teapot")) == 3  # a status named in retryOn is retried
    assert request(port, "/once")[0] == 503
    assert len(web.paths("/once")) == 1  # attempts: 0, no retry
    status, _, _ = request(port, "/per-try")
    assert status == 504
    deadline = time.monotonic() + 2  # the backend sees the attempts Envoy gave up on
    while len(web.paths("/per-try")) < 3:
        assert time.monotonic() < deadline, web.paths("/per-try")
        time.sleep(0.05)
    assert len(web.paths("/per-try")) == 3  # each attempt cut at 200 ms, then retried


def test_header_changes_at_the_backend_and_the_client(
        port: int, backends: tuple[Recorder, Recorder]) -> None:
    web = backends[0]
    status, headers, _ = request(port, "/headers", {"x-add": "original", "x-drop": "secret",
                                                    "x-set": "client"})
    assert status == 200
    seen = next(s for s in web.seen if s.path == "/headers").headers
    assert seen["x-set"] == "a"  # set replaces what the client sent
    assert seen["x-add"] == "original,b"  # add appends
    assert "x-drop" not in seen
    assert seen["x-destination"] == "d"  # the destination's own header operations
    assert headers["x-reply"] == "c"
    assert "x-backend" not in headers  # removed from the response
    assert headers["x-from"] == "web"


def test_weighted_split_over_1000_requests(port: int, backends: tuple[Recorder, Recorder]
                                           ) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        answers = [request(port, "/split", connection=connection)[2] for _ in range(1000)]
    finally:
        connection.close()
    share = answers.count("web") / len(answers)
    assert set(answers) == {"web", "canary"}
    assert 0.65 <= share <= 0.75, share  # 70 % within tolerance over 1,000 requests
