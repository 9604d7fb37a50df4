"""Workloads under `serve --run-workloads`, through real Envoy: a killed pod is restarted and
routed to again, two replicas share the requests, and pods replaced by `rollout restart` or
removed by `scale` leave no request failing (retries are off, so none is hidden)."""

from __future__ import annotations

import http.client
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Bastion

CONFIG = """
apiVersion: v1
kind: Service
metadata: {name: hello}
spec:
  ports: [{name: http, port: 5000, targetPort: web}]
  selector: {app: hello}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: hello}
spec:
  replicas: 1
  selector: {matchLabels: {app: hello}}
  template:
    metadata: {labels: {app: hello}}
    spec:
      containers:
      - name: helloworld
        image: registry.istio.io/release/examples-helloworld-v2:1.0
        ports: [{name: web, containerPort: 5000}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: plain}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [hello.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: hello}
spec:
  hosts: [hello.example.com]
  gateways: [plain]
  http:
  - route: [{destination: {host: hello, port: {number: 5000}}}]
    retries: {attempts: 0}
"""


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Bastion]:
    instance = Bastion(tmp_path, serve_args=("--run-workloads",))
    instance.start()
    try:
        instance.cli("apply", "-f", "-", input=CONFIG)
        yield instance
    finally:
        instance.stop()


def hello(port: int) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/hello", headers={"Host": "hello.example.com"})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def eventually_ok(port: int, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            status, body = hello(port)
            if status == 200:
                return body
        except OSError:
            pass
        assert time.monotonic() < deadline, "no answer from the workload"
        time.sleep(0.1)


def pod_names(bastion: Bastion) -> list[str]:
    out = bastion.cli("get", "pods", "-l", "app=hello", "-o",
                      "jsonpath={range .items[*]}{.metadata.name} {end}").stdout
    return out.split()


def ready_pods(bastion: Bastion, count: int, timeout: float = 20.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        out = bastion.cli("get", "pods", "-l", "app=hello", "-o", "jsonpath={range .items[*]}"
                          "{.metadata.name}={.status.containerStatuses[0].ready} {end}").stdout
        ready = [p.split("=")[0] for p in out.split() if p.endswith("=true")]
        if len(ready) == count and len(out.split()) == count:
            return ready
        assert time.monotonic() < deadline, out
        time.sleep(0.1)


class Load:
    """GET /hello in a loop on a thread (bounded in time), recording each answer."""

    def __init__(self, port: int) -> None:
        self.port, self.answers = port, []  # type: ignore[var-annotated]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop)

    def _loop(self) -> None:
        deadline = time.monotonic() + 60
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                self.answers.append(hello(self.port))
            except OSError as exc:
                self.answers.append((0, repr(exc)))

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)

    @property
    def failures(self) -> list[tuple[int, str]]:
        return [a for a in self.answers if a[0] != 200]


def test_a_killed_pod_is_restarted_and_routed_to_again(running: Bastion) -> None:
    body = eventually_ok(running.http_port)
    (name,) = ready_pods(running, 1)
    assert body.startswith("Hello version: v2, instance: hello-")
    assert name in body
    subprocess.run(["pkill", "-KILL", "-f", f"instance {name}"], check=True)
    time.sleep(0.3)
    assert eventually_ok(running.http_port).startswith("Hello version: v2")
    restarts = running.cli("get", "pods", name, "-o",
                           "jsonpath={.status.containerStatuses[0].restartCount}").stdout
    assert restarts == "1"


def test_replicas_share_requests_and_leave_without_failures(running: Bastion) -> None:
    eventually_ok(running.http_port)
    running.cli("scale", "deployment", "hello", "--replicas", "2")
    names = ready_pods(running, 2)
    time.sleep(1)  # the second endpoint reaches the gateway
    seen = {hello(running.http_port)[1].rsplit(" ", 1)[-1].strip() for _ in range(40)}
    assert seen == set(names)
    with Load(running.http_port) as load:
        time.sleep(0.5)
        running.cli("scale", "deployment", "hello", "--replicas", "1")
        ready_pods(running, 1)
        time.sleep(1)
    assert not load.failures, load.failures[:3]
    assert len(load.answers) > 20


def test_rollout_restart_replaces_pods_without_failures(running: Bastion) -> None:
    eventually_ok(running.http_port)
    (before,) = ready_pods(running, 1)
    with Load(running.http_port) as load:
        time.sleep(0.5)
        running.cli("rollout", "restart", "deployment/hello")
        deadline = time.monotonic() + 30
        while pod_names(running) in ([before], []) or before in pod_names(running):
            assert time.monotonic() < deadline, pod_names(running)
            time.sleep(0.2)
        time.sleep(1)
    (after,) = ready_pods(running, 1)
    assert after != before
    assert not load.failures, load.failures[:3]
    assert any(after in body for _, body in load.answers[-5:])


def test_deleting_the_deployment_stops_its_pods(running: Bastion) -> None:
    eventually_ok(running.http_port)
    (name,) = ready_pods(running, 1)
    running.cli("delete", "deployment", "hello")
    deadline = time.monotonic() + 20
    while pod_names(running):
        assert time.monotonic() < deadline, pod_names(running)
        time.sleep(0.2)
    alive = subprocess.run(["pgrep", "-f", f"instance {name}"], capture_output=True)
    assert alive.returncode == 1  # the process is gone
    slices = running.cli("get", "endpointslices", "-o", "name").stdout
    assert "hello-bastion" not in slices
    assert hello(running.http_port)[0] == 503


SECOND = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: hello-two}
spec:
  replicas: 1
  selector: {matchLabels: {app: hello, track: two}}
  template:
    metadata: {labels: {app: hello, track: two}}
    spec:
      containers:
      - name: helloworld
        image: istio/examples-helloworld-v1
        ports: [{name: web, containerPort: 5000}]
"""


def test_deleting_one_of_two_deployments_fails_no_request(running: Bastion) -> None:
    """Both Deployments back the Service; deleting one takes its pod out of the endpoints
    before the pod stops."""
    running.cli("apply", "-f", "-", input=SECOND)
    ready_pods(running, 2)
    time.sleep(1)
    with Load(running.http_port) as load:
        time.sleep(0.5)
        running.cli("delete", "deployment", "hello-two")
        ready_pods(running, 1)
        time.sleep(1)
    assert not load.failures, load.failures[:3]
    assert {b.split(",")[0] for _, b in load.answers} == {
        "Hello version: v2", "Hello version: v1"}
    assert load.answers[-1][1].startswith("Hello version: v2")


def test_pods_do_not_outlive_the_control_plane(running: Bastion) -> None:
    eventually_ok(running.http_port)
    (name,) = ready_pods(running, 1)
    running.kill_control_plane()  # kill -9: the kernel ends the pods with it
    deadline = time.monotonic() + 10
    while subprocess.run(["pgrep", "-f", f"instance {name}"], capture_output=True).returncode == 0:
        assert time.monotonic() < deadline, "a pod outlived bastion serve"
        time.sleep(0.1)


def test_an_image_without_a_runtime_waits_with_the_reason(running: Bastion) -> None:
    running.cli("apply", "-f", "-", input=SECOND.replace("hello-two", "nginx").replace(
        "istio/examples-helloworld-v1", "nginx:1.27").replace("track: two", "track: nginx"))
    deadline = time.monotonic() + 10
    while "RunContainerError" not in (out := running.cli("get", "pods", "-o", "yaml").stdout):
        assert time.monotonic() < deadline, out
        time.sleep(0.1)
    assert "no local runtime for image nginx:1.27; give the container a command" in out
    assert eventually_ok(running.http_port).startswith("Hello version: v2")  # nothing else hit
