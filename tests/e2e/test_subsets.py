"""DestinationRule subsets by pod labels, through real Envoy: two helloworld Deployments (v1,
v2) behind one Service, run as local pods; a weighted split between the subsets holds over
1,000 requests, and a route to one subset reaches only its pods."""

from __future__ import annotations

import http.client
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Bastion

WORKLOADS = "".join(f"""
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: helloworld-{v}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: helloworld, version: {v}}}}}
  template:
    metadata: {{labels: {{app: helloworld, version: {v}}}}}
    spec:
      containers:
      - name: helloworld
        image: istio/examples-helloworld-{v}
        ports: [{{containerPort: 5000}}]
""" for v in ("v1", "v2"))

CONFIG = """
apiVersion: v1
kind: Service
metadata: {name: helloworld}
spec:
  ports: [{name: http, port: 5000}]
  selector: {app: helloworld}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: helloworld}
spec:
  host: helloworld
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: plain}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [hello.example.com]
""" + WORKLOADS

SPLIT = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: hello}}
spec:
  hosts: [hello.example.com]
  gateways: [plain]
  http:
  - route:
{routes}
"""


def routes(**weights: int) -> str:
    return SPLIT.format(routes="\n".join(
        f"    - {{destination: {{host: helloworld, subset: {s}, port: {{number: 5000}}}}, "
        f"weight: {w}}}" for s, w in weights.items()))


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Bastion]:
    instance = Bastion(tmp_path, serve_args=("--run-workloads",))
    instance.start()
    try:
        instance.cli("apply", "-f", "-", input=CONFIG)
        yield instance
    finally:
        instance.stop()


def version(connection: http.client.HTTPConnection) -> str:
    connection.request("GET", "/hello", headers={"Host": "hello.example.com"})
    response = connection.getresponse()
    body = response.read().decode()
    assert response.status == 200, body
    return body.split(",")[0].removeprefix("Hello version: ")


def both_ready(bastion: Bastion) -> None:
    deadline = time.monotonic() + 20
    while bastion.cli("get", "pods", "-l", "app=helloworld", "-o", "jsonpath={range .items[*]}"
                      "{.status.containerStatuses[0].ready} {end}").stdout.split() != [
            "true", "true"]:
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_weighted_split_between_subsets(running: Bastion) -> None:
    both_ready(running)
    running.cli("apply", "-f", "-", input=routes(v1=80, v2=20))
    running.cli("wait", "--timeout", "10s", "vs", "hello")
    connection = http.client.HTTPConnection("127.0.0.1", running.http_port, timeout=10)
    deadline = time.monotonic() + 20
    while True:  # both subsets' endpoints have reached the gateway
        try:
            seen = {version(connection) for _ in range(50)}
        except (AssertionError, OSError):
            seen = set()
            connection = http.client.HTTPConnection("127.0.0.1", running.http_port, timeout=10)
        if seen == {"v1", "v2"}:
            break
        assert time.monotonic() < deadline, seen
        time.sleep(0.2)
    answers = [version(connection) for _ in range(1000)]
    share = answers.count("v1") / len(answers)
    assert 0.75 <= share <= 0.85, share  # 80 % within tolerance over 1,000 requests
    assert set(answers) == {"v1", "v2"}

    running.cli("apply", "-f", "-", input=routes(v2=100))
    deadline = time.monotonic() + 10
    while {version(connection) for _ in range(20)} != {"v2"}:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert {version(connection) for _ in range(100)} == {"v2"}


EMPTY = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: helloworld}
spec:
  host: helloworld
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v3, labels: {version: v3}}
---
apiVersion: v1
kind: Service
metadata: {name: idle}
spec:
  ports: [{name: http, port: 5000}]
  selector: {app: idle}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: hello}
spec:
  hosts: [hello.example.com]
  gateways: [plain]
  http:
  - match: [{uri: {prefix: /idle}}]
    route: [{destination: {host: idle, port: {number: 5000}}}]
  - route: [{destination: {host: helloworld, subset: v3, port: {number: 5000}}}]
"""


def test_an_empty_cluster_answers_503_and_says_why(running: Bastion) -> None:
    """A subset no pod carries, and a Service no pod backs: Envoy answers 503 "no healthy
    upstream", and the VirtualService's description says which labels or pods are missing."""
    both_ready(running)
    running.cli("apply", "-f", "-", input=EMPTY)
    running.cli("wait", "--timeout", "10s", "vs", "hello")
    connection = http.client.HTTPConnection("127.0.0.1", running.http_port, timeout=10)
    for path in ("/hello", "/idle"):
        connection.request("GET", path, headers={"Host": "hello.example.com"})
        response = connection.getresponse()
        assert (response.status, response.read()) == (503, b"no healthy upstream"), path
    described = " ".join(running.cli("describe", "virtualservice", "hello").stdout.split())
    assert ("spec.http[1].route[0].destination: none of the 2 endpoints of "
            "helloworld.default.svc.cluster.local carries subset v3's labels version=v3; "
            "requests routed there get 503 no healthy upstream") in described, described
    assert ("spec.http[0].route[0].destination: Service default/idle has no endpoints: no "
            "EndpointSlice or Endpoints names it, and no pod matches its selector app=idle"
            ) in described, described
