"""Workloads without processes: which images run as which sample, and the EndpointSlice a
Service gets from the pods its selector picks (named target ports resolved, leaving and
unrunnable pods left out)."""

from __future__ import annotations

from pathlib import Path

from bastion.services.workloads.controller import WorkloadController
from bastion.services.workloads.images import launch
from bastion.services.workloads.pods import Pod
from bastion.store import SqliteStore


def test_images_of_istios_samples_run_bastions_samples() -> None:
    httpbin = launch({"image": "docker.io/mccutchen/go-httpbin:v2.15.0",
                      "ports": [{"containerPort": 8080}]}, "httpbin-1", "127.16.0.9")
    assert httpbin.argv[-6:] == ("serve", "httpbin", "--host", "127.16.0.9", "--port", "8080")
    hello = launch({"image": "istio/examples-helloworld-v2"}, "hello-abc", "127.16.0.10")
    assert hello.argv[-4:-2] == ("--version", "v2")
    assert hello.argv[-2:] == ("--instance", "hello-abc")
    assert "no local runtime for image nginx:1.27" in launch({"image": "nginx:1.27"}, "n",
                                                             "127.16.0.11").problem
    own = launch({"image": "anything", "command": ["sh", "-c"], "args": ["sleep 1"],
                  "env": [{"name": "A", "value": "b"}]}, "p", "127.16.0.12")
    assert own.argv[0].endswith("/sh") and own.argv[1:] == ("-c", "sleep 1")
    assert own.env == (("A", "b"),)
    missing = launch({"image": "x", "command": ["no-such-binary-here"]}, "p", "127.16.0.13")
    assert "no executable 'no-such-binary-here'" in missing.problem


def _pod(name: str, labels: dict[str, str], ready: bool, **extra: object) -> Pod:
    pod = Pod(name=name, namespace="default", labels=labels, owner="web", template_hash="h",
              address=f"127.16.0.{len(name)}", ports=(("web", 9090),), container="c",
              launch=launch({"image": "istio/examples-helloworld-v1"}, name, "127.16.0.1"),
              log_path=Path("/dev/null"))
    pod.ready = ready
    for key, value in extra.items():
        setattr(pod, key, value)
    return pod


async def _never(revision: int, timeout: float) -> bool:
    return True


def test_slice_of_a_service(tmp_path: Path) -> None:
    controller = WorkloadController(SqliteStore(tmp_path / "s.db"), tmp_path, _never)
    for pod in (_pod("a", {"app": "web"}, True), _pod("bb", {"app": "web"}, False),
                _pod("ccc", {"app": "web"}, True, terminating=True),
                _pod("dddd", {"app": "other"}, True)):
        controller.pods[("default", pod.name)] = pod
    service = {"spec": {"selector": {"app": "web"},
                        "ports": [{"name": "http", "port": 80, "targetPort": "web"}]}}
    body = controller._slice("default", "web", service)
    assert body is not None
    assert body["metadata"]["labels"]["kubernetes.io/service-name"] == "web"
    assert [(e["targetRef"]["name"], e["conditions"]["ready"]) for e in body["endpoints"]] == [
        ("a", True), ("bb", False)]
    assert body["ports"] == [{"name": "http", "port": 9090, "protocol": "TCP"}]
    assert controller._slice("default", "web", {"spec": {}}) is None  # no selector
