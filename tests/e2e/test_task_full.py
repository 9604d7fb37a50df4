"""Every numbered step of Istio's Secure Gateways task, in order, with the task's commands and
the task's expected results. Each failure check is one try right after `bastion wait`, as Istio's
own task test does."""

from __future__ import annotations

from pathlib import Path

from bastion.cli.demo import HELLOWORLD
from tests.e2e.harness import TEAPOT, Backend, Bastion, make_leaf, make_root
from tests.e2e.test_task_single_host import CURL_418, GATEWAY, VIRTUAL_SERVICE, apply_httpbin_sample

CURL_HELLO = ('curl -v -HHost:helloworld-v1.example.com --resolve '
              '"helloworld-v1.example.com:$SECURE_INGRESS_PORT:$INGRESS_HOST" '
              '--cacert example.com.crt '
              '"https://helloworld-v1.example.com:$SECURE_INGRESS_PORT/hello"')

TWO_SERVERS = """cat <<EOF | bastion apply -f -
apiVersion: networking.istio.io/v1alpha3
kind: Gateway
metadata:
  name: mygateway
spec:
  selector:
    istio: ingressgateway # use istio default ingress gateway
  servers:
  - port:
      number: 443
      name: https-httpbin
      protocol: HTTPS
    tls:
      mode: SIMPLE
      credentialName: httpbin-credential
    hosts:
    - httpbin.example.com
  - port:
      number: 443
      name: https-helloworld
      protocol: HTTPS
    tls:
      mode: SIMPLE
      credentialName: helloworld-credential
    hosts:
    - helloworld-v1.example.com
EOF
"""

HELLO_VS = """cat <<EOF | bastion apply -f -
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: helloworld-v1
spec:
  hosts:
  - helloworld-v1.example.com
  gateways:
  - mygateway
  http:
  - match:
    - uri:
        exact: /hello
    route:
    - destination:
        host: helloworld-v1
        port:
          number: 5000
EOF
"""

# The task's helloworld-v1 Service and Deployment, as `bastion demo` runs them.
HELLO_SERVICE_AND_DEPLOYMENT = HELLOWORLD

MUTUAL = GATEWAY.replace("mode: SIMPLE", "mode: MUTUAL")


def ok(bastion: Bastion, script: str) -> str:
    result = bastion.shell(script)
    assert result.returncode == 0, f"{script}\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def expect_teapot(bastion: Bastion, script: str = CURL_418) -> None:
    output = ok(bastion, script)
    assert "HTTP/2 418" in output
    assert TEAPOT in output


def expect_refused(bastion: Bastion, script: str) -> str:
    result = bastion.shell(script)
    assert result.returncode != 0, f"expected failure:\n{result.stdout}\n{result.stderr}"
    assert "< HTTP/2 418" not in result.stderr
    return result.stderr


def test_secure_gateways_task(bastion: Bastion, httpbin: Backend, helloworld: Backend,
                              tmp_path: Path) -> None:
    apply_httpbin_sample(bastion, httpbin)
    # Generate client and server certificates and keys.
    make_root(tmp_path)
    make_leaf(tmp_path, "httpbin.example.com", "httpbin organization", 0)

    # Configure a TLS ingress gateway for a single host.
    ok(bastion, "bastion create -n istio-system secret tls httpbin-credential "
                "--key=httpbin.example.com.key --cert=httpbin.example.com.crt")
    ok(bastion, GATEWAY)
    ok(bastion, VIRTUAL_SERVICE)
    ok(bastion, "bastion wait --for=distribution --timeout 10s gateway mygateway && "
                "bastion wait --for=distribution --timeout 10s virtualservice httpbin")
    expect_teapot(bastion)

    # Rotate: delete the secret, create it again from a new CA.
    ok(bastion, "bastion -n istio-system delete secret httpbin-credential")
    (tmp_path / "new_certificates").mkdir()
    make_root(tmp_path, "new_certificates/")
    make_leaf(tmp_path, "httpbin.example.com", "httpbin organization", 0, "new_certificates/")
    ok(bastion, "bastion create -n istio-system secret tls httpbin-credential "
                "--key=new_certificates/httpbin.example.com.key "
                "--cert=new_certificates/httpbin.example.com.crt")
    ok(bastion, "bastion wait --for=distribution --timeout 10s -n istio-system secret "
                "httpbin-credential")
    expect_teapot(bastion, CURL_418.replace("--cacert example.com.crt",
                                            "--cacert new_certificates/example.com.crt"))
    # The previous chain is refused (single try): the client cannot verify the new certificate.
    refused = expect_refused(bastion, CURL_418)
    assert "curl: (35)" in refused or "curl: (60)" in refused

    # Configure a TLS ingress gateway for multiple hosts.
    ok(bastion, "bastion -n istio-system delete secret httpbin-credential && "
                "bastion create -n istio-system secret tls httpbin-credential "
                "--key=httpbin.example.com.key --cert=httpbin.example.com.crt")
    ok(bastion, HELLO_SERVICE_AND_DEPLOYMENT)
    endpoints = (f"apiVersion: v1\nkind: Endpoints\nmetadata: {{name: helloworld-v1}}\n"
                 f"subsets: [{{addresses: [{{ip: 127.0.0.1}}], ports: "
                 f"[{{name: http, port: {helloworld.port}}}]}}]\n")
    bastion.cli("apply", "-f", "-", input=endpoints)
    make_leaf(tmp_path, "helloworld-v1.example.com", "helloworld organization", 1)
    ok(bastion, "bastion create -n istio-system secret tls helloworld-credential "
                "--key=helloworld-v1.example.com.key --cert=helloworld-v1.example.com.crt")
    ok(bastion, TWO_SERVERS)
    ok(bastion, HELLO_VS)
    ok(bastion, "bastion wait --for=distribution --timeout 10s virtualservice helloworld-v1")
    hello = ok(bastion, CURL_HELLO)
    assert "HTTP/2 200" in hello
    assert "Hello version: v1, instance:" in hello
    expect_teapot(bastion)
    routes = bastion.cli("proxy-config", "route").stdout
    assert "https.443.https-httpbin.mygateway.default" in routes
    assert "https.443.https-helloworld.mygateway.default" in routes

    # Configure a mutual TLS ingress gateway: a generic secret carrying the CA as ca.crt.
    ok(bastion, "bastion -n istio-system delete secret httpbin-credential && "
                "bastion create -n istio-system secret generic httpbin-credential "
                "--from-file=tls.key=httpbin.example.com.key "
                "--from-file=tls.crt=httpbin.example.com.crt --from-file=ca.crt=example.com.crt")
    ok(bastion, MUTUAL)
    ok(bastion, "bastion wait --for=distribution --timeout 10s gateway mygateway")
    refused = expect_refused(bastion, CURL_418)
    # The server asked for a certificate and ended the connection. curl usually prints the TLS
    # 1.3 alert "certificate required"; when its request write races the server's close it
    # reports the broken pipe instead, so the alert text itself is not asserted.
    assert "Request CERT (13)" in refused, refused
    make_leaf(tmp_path, "client.example.com", "client organization", 1)
    with_cert = CURL_418.replace(
        "--cacert example.com.crt",
        "--cacert example.com.crt --cert client.example.com.crt --key client.example.com.key")
    expect_teapot(bastion, with_cert)
    secrets = bastion.cli("proxy-config", "secret").stdout
    assert "kubernetes://httpbin-credential-cacert" in secrets
    assert "CN=example.com,O=example Inc." in secrets

    # The other two secret formats: generic cert/key/cacert, then cert/key plus NAME-cacert.
    ok(bastion, "bastion -n istio-system delete secret httpbin-credential && "
                "bastion create -n istio-system secret generic httpbin-credential "
                "--from-file=key=httpbin.example.com.key --from-file=cert=httpbin.example.com.crt "
                "--from-file=cacert=example.com.crt && "
                "bastion wait --for=distribution --timeout 10s -n istio-system secret "
                "httpbin-credential")
    expect_refused(bastion, CURL_418)
    expect_teapot(bastion, with_cert)
    ok(bastion, "bastion -n istio-system delete secret httpbin-credential && "
                "bastion create -n istio-system secret generic httpbin-credential "
                "--from-file=key=httpbin.example.com.key --from-file=cert=httpbin.example.com.crt "
                "&& bastion create -n istio-system secret generic httpbin-credential-cacert "
                "--from-file=cacert=example.com.crt && "
                "bastion wait --for=distribution --timeout 10s -n istio-system secret "
                "httpbin-credential-cacert")
    expect_refused(bastion, CURL_418)
    expect_teapot(bastion, with_cert)

    # Troubleshooting: the secrets are listed, and the log tells the story.
    listed = ok(bastion, "bastion -n istio-system get secrets")
    assert "httpbin-credential" in listed and "helloworld-credential" in listed
    log = ok(bastion, "bastion logs --control-plane")
    assert "secret kubernetes://httpbin-credential added" in log
    assert "secret kubernetes://httpbin-credential-cacert added" in log
    assert "requested SDS: " in log and "accepted (ACK) SDS" in log

    # Cleanup, as the task writes it.
    out = ok(bastion, "bastion delete gateway mygateway && "
                      "bastion delete virtualservice httpbin && "
                      "bastion delete --ignore-not-found=true -n istio-system secret "
                      "httpbin-credential helloworld-credential && "
                      "bastion delete --ignore-not-found=true virtualservice helloworld-v1 && "
                      "bastion delete deployment --ignore-not-found=true httpbin helloworld-v1 && "
                      "bastion delete service --ignore-not-found=true httpbin helloworld-v1")
    assert 'deployment.apps "helloworld-v1" deleted' in out
    assert 'service "helloworld-v1" deleted' in out
    gateway = bastion.status()["gateways"][0]
    assert all(t["nacks"] == 0 for t in gateway["types"].values())
