"""`bastion demo`: Istio's Secure Gateways task, run for real on this machine.

Every step is the task's own shell command with `bastion` in place of `kubectl`; the demo prints
the command (a heredoc's body as the YAML it is) and what it printed. It starts its own gateway
with `--run-workloads` in a temporary directory, on free loopback ports: the samples are the
task's Deployments, run as local pods, and the ingress address and ports come from the
gateway's Service, as in the task's "Before you begin". It stops everything at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import click

from bastion.ports import free_listener_port

CURL = ('curl -v -HHost:{host} --resolve "{host}:$SECURE_INGRESS_PORT:$INGRESS_HOST" '
        '--cacert {ca} {extra}"https://{host}:$SECURE_INGRESS_PORT{path}"')
SHOWN = re.compile(r"^(< HTTP/|\* .*(alert|SSL certificate problem|verify)|curl: \(|"
                   r"\* OpenSSL|\* TLSv1\.[23] \((IN|OUT)\), TLS alert)")


def _wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise click.ClickException(f"nothing listens on 127.0.0.1:{port}")


@dataclass
class Step:
    text: str
    command: str
    expect_failure: bool = False
    expect: tuple[str, ...] = ()  # text the output must contain, as the task shows it


TEAPOT = ("HTTP/2 418", "-=[ teapot ]=-")


def curl(host: str, path: str, ca: str = "example.com.crt", extra: str = "") -> str:
    return CURL.format(host=host, path=path, ca=ca, extra=extra)


GATEWAY = """cat <<EOF | bastion apply -f -
apiVersion: networking.istio.io/v1alpha3
kind: Gateway
metadata:
  name: mygateway
spec:
  selector:
    istio: ingressgateway
  servers:
{servers}EOF"""

SERVER = """  - port:
      number: 443
      name: {name}
      protocol: HTTPS
    tls:
      mode: {mode}
      credentialName: {credential}
    hosts:
    - {host}
"""

VS = """cat <<EOF | bastion apply -f -
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: {name}
spec:
  hosts:
  - "{host}"
  gateways:
  - mygateway
  http:
  - match:
{matches}    route:
    - destination:
        port:
          number: {port}
        host: {backend}
EOF"""

ROOT = ("openssl req -x509 -sha256 -nodes -days 365 -newkey rsa:2048 -subj "
        "'/O=example Inc./CN=example.com' -keyout {d}example.com.key -out {d}example.com.crt")
LEAF = ("openssl req -out {d}{h}.csr -newkey rsa:2048 -nodes -keyout {d}{h}.key "
        "-subj \"/CN={h}/O={o}\"\n"
        "openssl x509 -req -days 365 -CA {d}example.com.crt -CAkey {d}example.com.key "
        "-set_serial {s} -in {d}{h}.csr -out {d}{h}.crt")


# "Before you begin" (the Ingress task): where the gateway is, from its Service.
EXPORTS = """export INGRESS_HOST=$(bastion -n istio-system get service istio-ingressgateway -o jsonpath='{.status.loadBalancer.ingress[0].ip}')
export INGRESS_PORT=$(bastion -n istio-system get service istio-ingressgateway -o jsonpath='{.spec.ports[?(@.name=="http2")].port}')
export SECURE_INGRESS_PORT=$(bastion -n istio-system get service istio-ingressgateway -o jsonpath='{.spec.ports[?(@.name=="https")].port}')"""  # noqa: E501

HELLOWORLD = """cat <<EOF | bastion apply -f -
apiVersion: v1
kind: Service
metadata:
  name: helloworld-v1
  labels:
    app: helloworld-v1
spec:
  ports:
  - name: http
    port: 5000
  selector:
    app: helloworld-v1
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: helloworld-v1
spec:
  replicas: 1
  selector:
    matchLabels:
      app: helloworld-v1
      version: v1
  template:
    metadata:
      labels:
        app: helloworld-v1
        version: v1
    spec:
      containers:
      - name: helloworld
        image: istio/examples-helloworld-v1
        resources:
          requests:
            cpu: "100m"
        imagePullPolicy: IfNotPresent #Always
        ports:
        - containerPort: 5000
EOF"""


def task_steps() -> list[Step]:
    httpbin_server = SERVER.format(name="https", mode="SIMPLE", credential="httpbin-credential",
                                   host="httpbin.example.com")
    wait_gw = "bastion wait --for=distribution --timeout 10s gateway mygateway"
    return [
        Step("Before you begin: deploy httpbin (Istio's samples/httpbin/httpbin.yaml)",
             "bastion apply -f samples/httpbin/httpbin.yaml\n"
             "bastion rollout status deployment/httpbin --timeout 30s",
             expect=("deployment.apps/httpbin created",)),
        Step("Before you begin: the ingress address and ports, from the gateway's Service",
             EXPORTS + '\necho "INGRESS_HOST=$INGRESS_HOST, '
                       'SECURE_INGRESS_PORT=$SECURE_INGRESS_PORT"'),
        Step("Create a root certificate and private key to sign the certificates",
             ROOT.format(d="")),
        Step("Create a certificate and private key for httpbin.example.com",
             LEAF.format(d="", h="httpbin.example.com", o="httpbin organization", s=0)),
        Step("Create a secret for the ingress gateway",
             "bastion create -n istio-system secret tls httpbin-credential "
             "--key=httpbin.example.com.key --cert=httpbin.example.com.crt"),
        Step("Configure the ingress gateway (port 443, SIMPLE TLS)",
             GATEWAY.format(servers=httpbin_server)),
        Step("Configure the gateway's ingress traffic routes",
             VS.format(name="httpbin", host="httpbin.example.com", port=8000, backend="httpbin",
                       matches="    - uri:\n        prefix: /status\n"
                               "    - uri:\n        prefix: /delay\n")),
        Step("Wait until the gateway holds the configuration",
             "bastion wait --for=distribution --timeout 10s virtualservice httpbin"),
        Step("Send an HTTPS request to httpbin: expect HTTP/2 418 and the teapot",
             curl("httpbin.example.com", "/status/418"), expect=TEAPOT),
        Step("Rotate the credential: delete the secret and create it from a new CA",
             "bastion -n istio-system delete secret httpbin-credential\n"
             "mkdir new_certificates\n" + ROOT.format(d="new_certificates/") + "\n"
             + LEAF.format(d="new_certificates/", h="httpbin.example.com",
                           o="httpbin organization", s=0) + "\n"
             "bastion create -n istio-system secret tls httpbin-credential "
             "--key=new_certificates/httpbin.example.com.key "
             "--cert=new_certificates/httpbin.example.com.crt"),
        Step("Wait for the new credential",
             "bastion wait --for=distribution --timeout 10s -n istio-system secret "
             "httpbin-credential"),
        Step("Access httpbin with the new certificate chain: 418",
             curl("httpbin.example.com", "/status/418", ca="new_certificates/example.com.crt"),
             expect=TEAPOT),
        Step("Access httpbin with the previous certificate chain: refused",
             curl("httpbin.example.com", "/status/418"), expect_failure=True),
        Step("Restore the httpbin credential",
             "bastion -n istio-system delete secret httpbin-credential\n"
             "bastion create -n istio-system secret tls httpbin-credential "
             "--key=httpbin.example.com.key --cert=httpbin.example.com.crt"),
        Step("Start helloworld-v1 (a Service and a Deployment, run as a local pod)",
             HELLOWORLD + "\nbastion rollout status deployment/helloworld-v1 --timeout 30s"),
        Step("Create a certificate and secret for helloworld-v1.example.com",
             LEAF.format(d="", h="helloworld-v1.example.com", o="helloworld organization",
                         s=1) + "\n"
             "bastion create -n istio-system secret tls helloworld-credential "
             "--key=helloworld-v1.example.com.key --cert=helloworld-v1.example.com.crt"),
        Step("Define a gateway with two servers on port 443",
             GATEWAY.format(servers=SERVER.format(
                 name="https-httpbin", mode="SIMPLE", credential="httpbin-credential",
                 host="httpbin.example.com") + SERVER.format(
                 name="https-helloworld", mode="SIMPLE", credential="helloworld-credential",
                 host="helloworld-v1.example.com"))),
        Step("Route helloworld-v1.example.com",
             VS.format(name="helloworld-v1", host="helloworld-v1.example.com", port=5000,
                       backend="helloworld-v1", matches="    - uri:\n        exact: /hello\n")),
        Step("Wait for the routes",
             "bastion wait --for=distribution --timeout 10s virtualservice helloworld-v1"),
        Step("Send an HTTPS request to helloworld-v1.example.com: HTTP/2 200",
             curl("helloworld-v1.example.com", "/hello"),
             expect=("HTTP/2 200", "Hello version: v1, instance: helloworld-v1-")),
        Step("Send an HTTPS request to httpbin.example.com: still the teapot",
             curl("httpbin.example.com", "/status/418"), expect=TEAPOT),
        Step("Mutual TLS: replace the credential with one that carries the CA",
             "bastion -n istio-system delete secret httpbin-credential\n"
             "bastion create -n istio-system secret generic httpbin-credential "
             "--from-file=tls.key=httpbin.example.com.key "
             "--from-file=tls.crt=httpbin.example.com.crt --from-file=ca.crt=example.com.crt"),
        Step("Set the gateway's TLS mode to MUTUAL",
             GATEWAY.format(servers=SERVER.format(
                 name="https", mode="MUTUAL", credential="httpbin-credential",
                 host="httpbin.example.com")) + "\n" + wait_gw),
        Step("Send a request without a client certificate: refused in the handshake",
             curl("httpbin.example.com", "/status/418"), expect_failure=True),
        Step("Create a client certificate and private key",
             LEAF.format(d="", h="client.example.com", o="client organization", s=1)),
        Step("Send the request with the client certificate: the teapot",
             curl("httpbin.example.com", "/status/418",
                  extra="--cert client.example.com.crt --key client.example.com.key "),
             expect=TEAPOT),
        Step("Troubleshooting: the gateway's Service, its log, the secrets",
             "bastion get svc -n istio-system\n"
             'echo "INGRESS_HOST=$INGRESS_HOST, SECURE_INGRESS_PORT=$SECURE_INGRESS_PORT"\n'
             'bastion logs -n istio-system "$(bastion get pod -l istio=ingressgateway '
             '-n istio-system -o jsonpath=\'{.items[0].metadata.name}\')" --tail 3\n'
             "bastion -n istio-system get secrets",
             expect=("istio-ingressgateway", "httpbin-credential")),
        Step("What the gateway holds",
             "bastion get pods\nbastion proxy-config secret\nbastion status"),
        Step("Clean up",
             "bastion delete gateway mygateway\n"
             "bastion delete virtualservice httpbin\n"
             "bastion delete --ignore-not-found=true -n istio-system secret httpbin-credential "
             "helloworld-credential\n"
             "bastion delete --ignore-not-found=true virtualservice helloworld-v1\n"
             "bastion delete deployment --ignore-not-found=true httpbin helloworld-v1\n"
             "bastion delete service --ignore-not-found=true httpbin helloworld-v1"),
    ]


class Demo:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.state = workdir / "state"
        self.processes: list[subprocess.Popen[bytes]] = []
        self.bindir = Path(sys.executable).parent
        self.env = {**os.environ, "BASTION_STATE_DIR": str(self.state),
                    "PATH": f"{self.bindir}:{os.environ.get('PATH', '')}"}

    def spawn(self, *args: str, log: str) -> None:
        with open(self.workdir / log, "wb") as out:
            self.processes.append(subprocess.Popen(
                [sys.executable, "-m", "bastion", *args], stdout=out, stderr=subprocess.STDOUT,
                env=self.env, start_new_session=True))

    def start(self) -> None:
        secure, plain = free_listener_port(), free_listener_port()
        self.spawn("serve", "--bind-address", "127.0.0.1", "--port-map", f"443={secure}",
                   "--port-map", f"80={plain}", "--run-workloads", "--metrics-address", "",
                   log="serve.log")
        sample = self.workdir / "samples" / "httpbin"
        sample.mkdir(parents=True)
        (sample / "httpbin.yaml").write_text(
            resources.files("bastion.samples").joinpath("istio-httpbin.yaml").read_text())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            result = self.run_quiet("bastion status -o json")
            if result.returncode == 0 and json.loads(result.stdout)["gateways"]:
                break
            time.sleep(0.1)
        else:
            raise click.ClickException("the gateway did not start; see "
                                       f"{self.workdir / 'serve.log'}")

    def export(self) -> None:
        """The variables "Before you begin" exports, for the steps after it."""
        values = self.run_quiet(EXPORTS + "\necho $INGRESS_HOST $INGRESS_PORT "
                                          "$SECURE_INGRESS_PORT").stdout.split()
        if len(values) != 3:
            raise click.ClickException("the gateway's Service did not give its address")
        self.env.update(dict(zip(("INGRESS_HOST", "INGRESS_PORT", "SECURE_INGRESS_PORT"),
                                 values, strict=True)))

    def run_quiet(self, command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                              env=self.env, cwd=self.workdir, timeout=120)

    def stop(self) -> None:
        for proc in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=15)


def print_command(command: str) -> None:
    """Commands with a `$ ` prompt; a heredoc's body as the YAML it is."""
    heredoc = False
    for line in command.splitlines():
        if heredoc:
            click.echo(f"    {line}")
            heredoc = line != "EOF"
        else:
            click.echo(f"  $ {line}")
            heredoc = "<<EOF" in line


def show(result: subprocess.CompletedProcess[str], is_curl: bool) -> None:
    if is_curl:
        for line in result.stderr.splitlines():
            if SHOWN.match(line):
                click.echo(f"    {line}")
        for line in result.stdout.splitlines():
            click.echo(f"    {line}")
        return
    for line in (result.stdout + result.stderr).splitlines():
        if line.strip(".+*- ") or not line.strip():  # skip openssl's key-generation dots
            click.echo(f"    {line}")


@click.command()
@click.option("--keep", is_flag=True, help="Keep the working directory afterwards.")
def demo(keep: bool) -> None:
    """Run Istio's Secure Gateways task end to end, printing each command and its result."""
    workdir = Path(tempfile.mkdtemp(prefix="bastion-demo-"))
    runner = Demo(workdir)
    failures = 0
    try:
        click.echo(f"Working in {workdir}; starting the gateway...")
        runner.start()
        click.echo("Gateway ready.\n")
        for number, step in enumerate(task_steps(), 1):
            click.secho(f"{number}. {step.text}", bold=True)
            print_command(step.command)
            result = runner.run_quiet(step.command)
            if step.command.startswith("export INGRESS_HOST"):
                runner.export()
            show(result, step.command.startswith("curl"))
            ok = (result.returncode != 0) if step.expect_failure else (result.returncode == 0)
            output = result.stdout + result.stderr
            ok = ok and all(text in output for text in step.expect)
            verdict = "as expected" if ok else "UNEXPECTED"
            if step.expect_failure:
                click.echo(f"  -> refused (exit {result.returncode}), {verdict}\n")
            else:
                click.echo(f"  -> exit {result.returncode}, {verdict}\n")
            failures += 0 if ok else 1
    finally:
        runner.stop()
        if keep:
            click.echo(f"Kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if failures:
        raise click.ClickException(f"{failures} step(s) did not give the task's result")
    click.secho("Every step gave the task's result.", bold=True)
