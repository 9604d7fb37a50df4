"""The Secure Gateways task verbatim, to its last command: every command as the task writes it,
run through bash with only `kubectl` replaced by `bastion`, including "Before you begin" (the
jsonpath exports of the ingress address and port), Istio's httpbin sample and the task's
helloworld-v1 Deployment run as local workloads (`serve --run-workloads`), the troubleshooting
section and the cleanup. Nothing is started by hand and no Endpoints are written."""
# ruff: noqa: E501 - the task's command lines are quoted as the task writes them

from __future__ import annotations

import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest

from tests.e2e.harness import TEAPOT, Bastion
from tests.e2e.test_task_full import HELLO_SERVICE_AND_DEPLOYMENT, HELLO_VS, MUTUAL, TWO_SERVERS
from tests.e2e.test_task_single_host import GATEWAY, VIRTUAL_SERVICE

# Istio's samples/httpbin/httpbin.yaml, field for field (bastion ships it for `bastion demo`).
HTTPBIN_SAMPLE = resources.files("bastion.samples").joinpath("istio-httpbin.yaml")
# "Before you begin": the Ingress task's commands for the gateway's address and ports.
BEFORE = """
export INGRESS_HOST=$(kubectl -n istio-system get service istio-ingressgateway -o jsonpath='{.status.loadBalancer.ingress[0].ip}')
export INGRESS_PORT=$(kubectl -n istio-system get service istio-ingressgateway -o jsonpath='{.spec.ports[?(@.name=="http2")].port}')
export SECURE_INGRESS_PORT=$(kubectl -n istio-system get service istio-ingressgateway -o jsonpath='{.spec.ports[?(@.name=="https")].port}')
"""
ROOT = ("openssl req -x509 -sha256 -nodes -days 365 -newkey rsa:2048 -subj '/O=example Inc./"
        "CN=example.com' -keyout example.com.key -out example.com.crt")
HTTPBIN_CERT = """
openssl req -out httpbin.example.com.csr -newkey rsa:2048 -nodes -keyout httpbin.example.com.key -subj "/CN=httpbin.example.com/O=httpbin organization"
openssl x509 -req -days 365 -CA example.com.crt -CAkey example.com.key -set_serial 0 -in httpbin.example.com.csr -out httpbin.example.com.crt
"""
NEW_CERTS = """
mkdir new_certificates
openssl req -x509 -sha256 -nodes -days 365 -newkey rsa:2048 -subj '/O=example Inc./CN=example.com' -keyout new_certificates/example.com.key -out new_certificates/example.com.crt
openssl req -out new_certificates/httpbin.example.com.csr -newkey rsa:2048 -nodes -keyout new_certificates/httpbin.example.com.key -subj "/CN=httpbin.example.com/O=httpbin organization"
openssl x509 -req -days 365 -CA new_certificates/example.com.crt -CAkey new_certificates/example.com.key -set_serial 0 -in new_certificates/httpbin.example.com.csr -out new_certificates/httpbin.example.com.crt
kubectl create -n istio-system secret tls httpbin-credential \\
--key=new_certificates/httpbin.example.com.key \\
--cert=new_certificates/httpbin.example.com.crt
"""
HELLO_CERT = """
openssl req -out helloworld-v1.example.com.csr -newkey rsa:2048 -nodes -keyout helloworld-v1.example.com.key -subj "/CN=helloworld-v1.example.com/O=helloworld organization"
openssl x509 -req -days 365 -CA example.com.crt -CAkey example.com.key -set_serial 1 -in helloworld-v1.example.com.csr -out helloworld-v1.example.com.crt
kubectl create -n istio-system secret tls helloworld-credential --key=helloworld-v1.example.com.key --cert=helloworld-v1.example.com.crt
"""
CLIENT_CERT = """
openssl req -out client.example.com.csr -newkey rsa:2048 -nodes -keyout client.example.com.key -subj "/CN=client.example.com/O=client organization"
openssl x509 -req -days 365 -CA example.com.crt -CAkey example.com.key -set_serial 1 -in client.example.com.csr -out client.example.com.crt
"""
CURL_418 = """curl -v -HHost:httpbin.example.com --resolve "httpbin.example.com:$SECURE_INGRESS_PORT:$INGRESS_HOST" \\
--cacert {ca} {client}"https://httpbin.example.com:$SECURE_INGRESS_PORT/status/418"
"""
CURL_HELLO = """curl -v -HHost:helloworld-v1.example.com --resolve "helloworld-v1.example.com:$SECURE_INGRESS_PORT:$INGRESS_HOST" \\
--cacert example.com.crt "https://helloworld-v1.example.com:$SECURE_INGRESS_PORT/hello"
"""
CLIENT = "--cert client.example.com.crt --key client.example.com.key "
TROUBLESHOOTING = """
kubectl get svc -n istio-system
echo "INGRESS_HOST=$INGRESS_HOST, SECURE_INGRESS_PORT=$SECURE_INGRESS_PORT"
kubectl logs -n istio-system "$(kubectl get pod -l istio=ingressgateway \\
-n istio-system -o jsonpath='{.items[0].metadata.name}')"
kubectl -n istio-system get secrets
"""
CLEANUP = """
kubectl delete gateway mygateway
kubectl delete virtualservice httpbin
kubectl delete --ignore-not-found=true -n istio-system secret httpbin-credential \\
helloworld-credential
kubectl delete --ignore-not-found=true virtualservice helloworld-v1
rm -rf example.com.crt example.com.key httpbin.example.com.crt httpbin.example.com.key httpbin.example.com.csr helloworld-v1.example.com.crt helloworld-v1.example.com.key helloworld-v1.example.com.csr client.example.com.crt client.example.com.csr client.example.com.key ./new_certificates
kubectl delete deployment --ignore-not-found=true httpbin helloworld-v1
kubectl delete service --ignore-not-found=true httpbin helloworld-v1
"""


@pytest.fixture
def workloads_bastion(tmp_path: Path) -> Iterator[Bastion]:
    instance = Bastion(tmp_path, serve_args=("--run-workloads",))
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


class Task:
    """Runs the task's commands (`kubectl` → `bastion`) in the task's working directory, each
    with the variables "Before you begin" exported."""

    def __init__(self, bastion: Bastion) -> None:
        self.bastion = bastion

    def run(self, script: str, check: bool = True) -> str:
        body = "unset INGRESS_HOST INGRESS_PORT SECURE_INGRESS_PORT\n" + BEFORE + script
        result = self.bastion.shell(body.replace("kubectl", "bastion"))
        if check:
            assert result.returncode == 0, f"{script}\n{result.stdout}\n{result.stderr}"
        return result.stdout + result.stderr

    def until(self, script: str, fragment: str, timeout: float = 20.0) -> str:
        """What the task's curl prints once the gateway serves it (Istio's own task test retries
        the same way)."""
        deadline = time.monotonic() + timeout
        while True:
            output = self.run(script, check=False)
            if fragment in output or time.monotonic() > deadline:
                assert fragment in output, output[-3000:]
                return output
            time.sleep(0.2)

    def refused(self, script: str) -> str:
        result = self.bastion.shell(("unset INGRESS_HOST INGRESS_PORT SECURE_INGRESS_PORT\n"
                                     + BEFORE + script).replace("kubectl", "bastion"))
        assert result.returncode != 0, result.stdout + result.stderr
        assert "< HTTP/2 418" not in result.stderr
        return result.stderr


def test_the_task_verbatim(workloads_bastion: Bastion, tmp_path: Path) -> None:
    task = Task(workloads_bastion)
    samples = tmp_path / "samples" / "httpbin"
    samples.mkdir(parents=True)
    (samples / "httpbin.yaml").write_text(HTTPBIN_SAMPLE.read_text())

    # Before you begin: httpbin deployed, the address and ports exported.
    out = task.run("kubectl apply -f samples/httpbin/httpbin.yaml\n"
                   "echo \"HOST=$INGRESS_HOST PORT=$INGRESS_PORT SECURE=$SECURE_INGRESS_PORT\"")
    assert "deployment.apps/httpbin created" in out
    assert (f"HOST=127.0.0.1 PORT={workloads_bastion.http_port} "
            f"SECURE={workloads_bastion.secure_port}") in out

    # A TLS ingress gateway for a single host.
    task.run(ROOT + "\n" + HTTPBIN_CERT)
    task.run("kubectl create -n istio-system secret tls httpbin-credential "
             "--key=httpbin.example.com.key --cert=httpbin.example.com.crt")
    task.run(GATEWAY.replace("bastion", "kubectl"))
    task.run(VIRTUAL_SERVICE.replace("bastion", "kubectl"))
    teapot = CURL_418.format(ca="example.com.crt", client="")
    out = task.until(teapot, "HTTP/2 418")
    assert TEAPOT in out

    # Rotation: delete the secret, create one from a new CA.
    task.run("kubectl -n istio-system delete secret httpbin-credential")
    task.run(NEW_CERTS)
    task.until(CURL_418.format(ca="new_certificates/example.com.crt", client=""), "HTTP/2 418")
    refused = task.refused(teapot)
    assert "curl: (35)" in refused or "curl: (60)" in refused

    # Several hosts: helloworld-v1 as the task starts it, as a workload.
    task.run("kubectl -n istio-system delete secret httpbin-credential\n"
             "kubectl create -n istio-system secret tls httpbin-credential "
             "--key=httpbin.example.com.key --cert=httpbin.example.com.crt")
    task.run(HELLO_SERVICE_AND_DEPLOYMENT.replace("bastion", "kubectl"))
    task.run(HELLO_CERT)
    task.run(TWO_SERVERS.replace("bastion", "kubectl"))
    task.run(HELLO_VS.replace("bastion", "kubectl"))
    out = task.until(CURL_HELLO, "Hello version: v1, instance: helloworld-v1-")
    assert "HTTP/2 200" in out
    task.until(teapot, "HTTP/2 418")

    # Mutual TLS: a client without a certificate is refused, one with it gets the teapot.
    task.run("kubectl -n istio-system delete secret httpbin-credential\n"
             "kubectl create -n istio-system secret generic httpbin-credential "
             "--from-file=tls.key=httpbin.example.com.key \\\n"
             "--from-file=tls.crt=httpbin.example.com.crt --from-file=ca.crt=example.com.crt")
    task.run(MUTUAL.replace("bastion", "kubectl"))
    task.run(CLIENT_CERT)
    with_client = CURL_418.format(ca="example.com.crt", client=CLIENT)
    out = task.until(with_client, "HTTP/2 418")
    assert TEAPOT in out
    refused = task.refused(teapot)
    assert "Request CERT (13)" in refused, refused

    # Troubleshooting: the Service with its address, Envoy's log by the pod's name, the secrets.
    out = task.run(TROUBLESHOOTING)
    assert "istio-ingressgateway   LoadBalancer" in out
    assert (f"INGRESS_HOST=127.0.0.1, SECURE_INGRESS_PORT="
            f"{workloads_bastion.secure_port}") in out
    assert "[info][main]" in out  # Envoy's own log lines
    assert "httpbin-credential" in out and "helloworld-credential" in out
    pods = task.run("kubectl get pods")
    assert "httpbin-" in pods and "helloworld-v1-" in pods and "Running" in pods

    # Cleanup, to the last command.
    out = task.run(CLEANUP)
    assert 'deployment.apps "httpbin" deleted' in out
    assert 'service "helloworld-v1" deleted' in out
    assert not (tmp_path / "new_certificates").exists()
    deadline = time.monotonic() + 20
    while "No resources found" not in task.run("kubectl get pods"):
        assert time.monotonic() < deadline, task.run("kubectl get pods")
        time.sleep(0.2)
