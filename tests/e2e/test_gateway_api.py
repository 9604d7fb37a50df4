"""The Gateway API on a running control plane: objects validated at apply as their CRDs
validate them (the field named), listed under their own short names beside Istio's; a
GatewayClass for bastion's (or Istio's) controller Accepted; the task's Gateway API variant
through real Envoy and curl, with the status Gateway API users read."""

from __future__ import annotations

import http.client
import json
import ssl
import time
from pathlib import Path

from tests import certs
from tests.e2e.backends import Recorder
from tests.e2e.harness import (
    TEAPOT,
    Backend,
    Bastion,
    curl,
    handshake_serial,
    make_leaf,
    make_root,
)
from tests.manifests import backend_yaml, sample_manifest, secret_json

HOST = "httpbin.example.com"

CLASS = """
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: istio}
spec: {controllerName: istio.io/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: elsewhere}
spec: {controllerName: example.com/another-controller}
"""
GATEWAY = """
apiVersion: gateway.networking.k8s.io/v1beta1
kind: Gateway
metadata: {name: mygateway, namespace: istio-system}
spec:
  gatewayClassName: istio
  listeners:
  - name: https
    hostname: httpbin.example.com
    port: 443
    protocol: HTTPS
    tls:
      mode: Terminate
      certificateRefs: [{name: httpbin-credential}]
    allowedRoutes:
      namespaces:
        from: Selector
        selector: {matchLabels: {kubernetes.io/metadata.name: default}}
"""


def test_gateway_api_objects_are_validated_listed_and_classes_accepted(
        bastion: Bastion) -> None:
    bastion.cli("apply", "-f", "-", input=CLASS + "---\n" + GATEWAY)
    waited = bastion.cli("wait", "--for=condition=Accepted", "gatewayclass/istio",
                         "--timeout", "10s")
    assert "gatewayclass.gateway.networking.k8s.io/istio condition met" in waited.stdout
    other = bastion.cli("get", "gatewayclass", "elsewhere", "-o", "json").stdout
    assert '"status"' not in other  # another controller's class is not ours to accept
    assert "mygateway" in bastion.cli("get", "gtw", "-n", "istio-system").stdout
    assert "mygateway" not in bastion.cli("get", "gw", "-n", "istio-system").stdout
    assert "mygateway" in bastion.cli(
        "get", "gateways.gateway.networking.k8s.io", "-n", "istio-system").stdout

    refused = bastion.cli("apply", "-f", "-", check=False, input=GATEWAY.replace(
        "      certificateRefs: [{name: httpbin-credential}]\n", ""))
    assert refused.returncode != 0
    assert ("Gateway istio-system/mygateway: spec.listeners[0].tls: certificateRefs or "
            "options must be specified when mode is Terminate") in refused.stderr


TASK_GATEWAY = """
apiVersion: gateway.networking.k8s.io/v1beta1
kind: Gateway
metadata: {{name: mygateway, namespace: istio-system}}
spec:
  gatewayClassName: istio
  listeners:
{listeners}
"""
LISTENER = """  - name: {name}
    hostname: {host}
    port: 443
    protocol: HTTPS
    tls:
      mode: Terminate
      certificateRefs: [{{kind: Secret, group: "", name: {secret}}}]
{options}    allowedRoutes:
      namespaces:
        from: Selector
        selector: {{matchLabels: {{kubernetes.io/metadata.name: default}}}}
"""
HTTPBIN_ROUTE = """
apiVersion: gateway.networking.k8s.io/v1beta1
kind: HTTPRoute
metadata: {name: httpbin, namespace: default}
spec:
  parentRefs: [{name: mygateway, namespace: istio-system}]
  hostnames: [httpbin.example.com]
  rules:
  - matches: [{path: {type: PathPrefix, value: /status}}, {path: {type: PathPrefix, value: /delay}}]
    backendRefs: [{name: httpbin, port: 8000}]
"""
HELLO_ROUTE = """
apiVersion: gateway.networking.k8s.io/v1beta1
kind: HTTPRoute
metadata: {name: helloworld, namespace: default}
spec:
  parentRefs: [{name: mygateway, namespace: istio-system}]
  hostnames: [helloworld.example.com]
  rules:
  - matches: [{path: {type: Exact, value: /hello}}]
    backendRefs: [{name: helloworld-v1, port: 5000}]
"""


def task_gateway(*listeners: tuple[str, str, str], mutual: bool = False) -> str:
    options = ('      options:\n        gateway.istio.io/tls-terminate-mode: MUTUAL\n'
               if mutual else "")
    return TASK_GATEWAY.format(listeners="".join(
        LISTENER.format(name=n, host=h, secret=s, options=options) for n, h, s in listeners))


def programmed(bastion: Bastion) -> None:
    waited = bastion.cli("wait", "--for=condition=programmed", "gtw", "mygateway", "-n",
                         "istio-system", "--timeout", "15s", check=False)
    status = bastion.cli("get", "gtw", "mygateway", "-n", "istio-system", "-o", "json",
                         check=False).stdout
    assert waited.returncode == 0, status


def test_the_task_with_the_gateway_api(bastion: Bastion, httpbin: Backend, helloworld: Backend,
                                       tmp_path: Path) -> None:
    """The task's Gateway API variant: a single host, rotation, two listeners for two hosts,
    mutual TLS; each result as with the Istio API."""
    for prefix in ("", "new_"):
        make_root(tmp_path, prefix)
        make_leaf(tmp_path, "httpbin.example.com", "httpbin organization", 0, prefix)
    make_leaf(tmp_path, "helloworld.example.com", "helloworld organization", 1)
    make_leaf(tmp_path, "client.example.com", "client organization", 1)
    for backend, name in ((httpbin, "httpbin"), (helloworld, "helloworld")):
        bastion.cli("apply", "-f", "-", input=sample_manifest(
            bastion.cli("samples", "manifest", name).stdout, backend.port))
    root, new_root = tmp_path / "example.com.crt", tmp_path / "new_example.com.crt"

    def create(command: str) -> None:
        done = bastion.shell(command, cwd=tmp_path)
        assert done.returncode == 0, done.stderr

    create("bastion create -n istio-system secret tls httpbin-credential "
           "--key=httpbin.example.com.key --cert=httpbin.example.com.crt")
    bastion.cli("apply", "-f", "-", input=task_gateway(
        ("https", "httpbin.example.com", "httpbin-credential")) + "---\n" + HTTPBIN_ROUTE)
    programmed(bastion)
    status = json.loads(bastion.cli("get", "gtw", "mygateway", "-n", "istio-system", "-o",
                                    "json").stdout)["status"]
    assert status["addresses"][0]["value"] == "127.0.0.1"
    assert status["listeners"][0]["attachedRoutes"] == 1
    env = bastion.shell('eval "$(bastion env gtw/mygateway -n istio-system)" && '
                        'echo "$INGRESS_HOST $SECURE_INGRESS_PORT"')
    assert env.stdout.split() == ["127.0.0.1", str(bastion.secure_port)], env.stderr
    route = json.loads(bastion.cli("get", "httproute", "httpbin", "-o", "json").stdout)
    assert [c["status"] for c in route["status"]["parents"][0]["conditions"]] == [
        "True", "True"]
    teapot = curl(HOST, bastion.secure_port, "/status/418", root)
    assert "HTTP/2 418" in teapot.stderr and TEAPOT in teapot.stdout

    # Rotation: delete and create again from the second root's certificates.
    create("bastion -n istio-system delete secret httpbin-credential && "
           "bastion create -n istio-system secret tls httpbin-credential "
           "--key=new_httpbin.example.com.key --cert=new_httpbin.example.com.crt")
    deadline = time.monotonic() + 10
    while TEAPOT not in curl(HOST, bastion.secure_port, "/status/418", new_root).stdout:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert curl(HOST, bastion.secure_port, "/status/418", root).returncode != 0
    create("bastion -n istio-system delete secret httpbin-credential && "
           "bastion create -n istio-system secret tls httpbin-credential "
           "--key=httpbin.example.com.key --cert=httpbin.example.com.crt")

    # Two listeners for two hosts.
    create("bastion create -n istio-system secret tls helloworld-credential "
           "--key=helloworld.example.com.key --cert=helloworld.example.com.crt")
    bastion.cli("apply", "-f", "-", input=task_gateway(
        ("https-httpbin", "httpbin.example.com", "httpbin-credential"),
        ("https-helloworld", "helloworld.example.com", "helloworld-credential"))
        + "---\n" + HELLO_ROUTE)
    programmed(bastion)
    deadline = time.monotonic() + 10
    while "HTTP/2 200" not in curl("helloworld.example.com", bastion.secure_port, "/hello",
                                   root).stderr:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert TEAPOT in curl(HOST, bastion.secure_port, "/status/418", root).stdout

    # Mutual TLS, with Istio's option on the listener.
    create("bastion -n istio-system delete secret httpbin-credential && "
           "bastion create -n istio-system secret generic httpbin-credential "
           "--from-file=tls.key=httpbin.example.com.key "
           "--from-file=tls.crt=httpbin.example.com.crt --from-file=ca.crt=example.com.crt")
    bastion.cli("apply", "-f", "-", input=task_gateway(
        ("https", "httpbin.example.com", "httpbin-credential"), mutual=True))
    programmed(bastion)
    client = ("--cert", str(tmp_path / "client.example.com.crt"), "--key",
              str(tmp_path / "client.example.com.key"))
    deadline = time.monotonic() + 10
    while curl(HOST, bastion.secure_port, "/status/418", root).returncode == 0:
        assert time.monotonic() < deadline, "a client without a certificate still gets in"
        time.sleep(0.1)
    served = curl(HOST, bastion.secure_port, "/status/418", root, client)
    assert "HTTP/2 418" in served.stderr and TEAPOT in served.stdout


def test_a_missing_certificate_is_in_the_listener_status(bastion: Bastion) -> None:
    bastion.cli("apply", "-f", "-", input=task_gateway(
        ("https", "httpbin.example.com", "no-such-secret")))
    deadline = time.monotonic() + 10
    while True:
        body = json.loads(bastion.cli("get", "gtw", "mygateway", "-n", "istio-system", "-o",
                                      "json").stdout)
        listener = {c["type"]: c for c in body.get("status", {}).get("listeners", [{}])[0]
                    .get("conditions", [])}
        if listener:
            break
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert listener["ResolvedRefs"]["status"] == "False"
    assert listener["ResolvedRefs"]["reason"] == "InvalidCertificateRef"
    assert "secret istio-system/no-such-secret not found" in listener["ResolvedRefs"]["message"]
    assert listener["Programmed"]["status"] == "False"
    gateway = {c["type"]: c["status"] for c in body["status"]["conditions"]}
    assert gateway == {"Accepted": "True", "Programmed": "False"}
    described = " ".join(bastion.cli("describe", "gtw", "mygateway", "-n",
                                     "istio-system").stdout.split())
    assert ("[error] spec.listeners[0].tls.certificateRefs: server not programmed: secret "
            "istio-system/no-such-secret not found") in described, described
    analyzed = bastion.cli("analyze", check=False).stdout
    assert ("Error [IST0101] (Gateway.gateway.networking.k8s.io istio-system/mygateway) "
            "spec.listeners[0].tls.certificateRefs") in analyzed, analyzed


GRANT = """
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: gateways-may-read, namespace: default}
spec:
  from: [{group: gateway.networking.k8s.io, kind: Gateway, namespace: istio-system}]
  to: [{group: "", kind: Secret}]
"""
DIRECT = """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: direct, namespace: default}
spec:
  parentRefs: [{name: mygateway, namespace: istio-system}]
  hostnames: [httpbin.example.com]
  rules:
  - filters:
    - type: RequestRedirect
      requestRedirect: {hostname: elsewhere.example.com, statusCode: 301}
"""


def test_a_granted_certificate_of_another_namespace_serves_and_rotates(
        bastion: Bastion, tmp_path: Path) -> None:
    def secret(serial: int) -> str:
        pair = certs.leaf(HOST, serial)
        return secret_json("httpbin-credential", "default", "kubernetes.io/tls",
                           tls_crt=pair.cert, tls_key=pair.key)

    gateway = task_gateway(("https", HOST, "httpbin-credential")).replace(
        "[{kind: Secret, group: \"\", name: httpbin-credential}]",
        "[{kind: Secret, group: \"\", name: httpbin-credential, namespace: default}]")
    bastion.cli("apply", "-f", "-", input="\n---\n".join([secret(51), gateway, DIRECT]))
    listener = json.loads(bastion.cli("get", "gtw", "mygateway", "-n", "istio-system", "-o",
                                      "json").stdout)["status"]["listeners"][0]
    refs = {c["type"]: c for c in listener["conditions"]}["ResolvedRefs"]
    assert (refs["status"], refs["reason"]) == ("False", "RefNotPermitted"), refs

    bastion.cli("apply", "-f", "-", input=GRANT)
    programmed(bastion)
    root = tmp_path / "root.crt"
    root.write_bytes(certs.ca("root1")[0].cert)
    redirected = curl(HOST, bastion.secure_port, "/", root)
    assert "HTTP/2 301" in redirected.stderr, redirected.stderr
    assert "location: https://elsewhere.example.com/" in redirected.stderr.lower()
    assert handshake_serial(HOST, bastion.secure_port, root) == 51
    bastion.cli("apply", "-f", "-", input=secret(52))  # rotated where it lives
    deadline = time.monotonic() + 10
    while handshake_serial(HOST, bastion.secure_port, root) != 52:
        assert time.monotonic() < deadline, "the granted Secret's rotation is not served"
        time.sleep(0.05)


ACROSS = """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: plain, namespace: istio-system}}
spec:
  gatewayClassName: istio
  listeners:
  - {{name: http, port: 80, protocol: HTTP, hostname: route.example.com,
     allowedRoutes: {{namespaces: {{from: All}}}}}}
  - name: tls
    port: 443
    protocol: TLS
    hostname: secure.example.com
    tls: {{mode: Passthrough}}
    allowedRoutes: {{namespaces: {{from: All}}, kinds: [{{kind: TLSRoute}}]}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: alpha-older}}
spec:
  parentRefs: [{{name: plain, namespace: istio-system, sectionName: http}}]
  hostnames: [route.example.com]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /v}}}}, {{path: {{type: PathPrefix, value: /h}}}}]
    backendRefs: [{{name: web, port: 80}}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TLSRoute
metadata: {{name: secure}}
spec:
  parentRefs: [{{name: plain, namespace: istio-system, sectionName: tls}}]
  hostnames: [secure.example.com]
  rules: [{{backendRefs: [{{name: secure, port: 443}}]}}]
"""
NEWER = """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: zulu-newer}
spec:
  parentRefs: [{name: plain, namespace: istio-system, sectionName: http}]
  hostnames: [route.example.com]
  rules:
  - matches:
    - path: {type: PathPrefix, value: /v2}
    - path: {type: PathPrefix, value: /h}
      headers: [{name: x-env, value: canary}]
    filters:
    - type: RequestRedirect
      requestRedirect: {hostname: newer.example.com, statusCode: 302}
"""


def test_rules_across_routes_by_precedence_and_tls_passthrough(bastion: Bastion,
                                                               tmp_path: Path) -> None:
    """A newer route's longer prefix, and its header match, win over an older route's
    (Gateway API precedence, not Istio's oldest-first; names chosen so that the tie-break by
    name would also put the older first); a TLSRoute passes a connection through to a backend
    that terminates TLS itself."""
    server_cert, server_key = certs.write(certs.leaf("secure.example.com", 61, "root2"),
                                          tmp_path, "secure")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(server_cert), str(server_key))
    web, secure = Recorder("web"), Recorder("secure", context=context, keep_alive=False)
    try:
        backends = [backend_yaml("web", web.port),
                    backend_yaml("secure", secure.port, port_name="https", service_port=443)]
        bastion.cli("apply", "-f", "-",
                    input=ACROSS.format() + "".join("---\n" + b for b in backends))
        bastion.cli("apply", "-f", "-", input=NEWER)  # created after the older route
        bastion.cli("wait", "--for=condition=programmed", "gtw/plain", "-n", "istio-system",
                    "--timeout", "15s")

        def get(path: str, headers: dict[str, str] | None = None) -> int:
            connection = http.client.HTTPConnection("127.0.0.1", bastion.http_port, timeout=5)
            try:
                connection.request("GET", path, headers={"Host": "route.example.com",
                                                         **(headers or {})})
                return connection.getresponse().status
            except OSError:  # the port-80 listener is not there yet
                return 0
            finally:
                connection.close()

        deadline = time.monotonic() + 10
        while get("/v2/x") != 302:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert get("/v1/x") == 200  # only the older route's shorter prefix matches
        assert get("/h") == 200
        assert get("/h", {"x-env": "canary"}) == 302
        assert {s.path for s in web.seen} >= {"/v1/x", "/h"}
        root2 = tmp_path / "root2.crt"
        root2.write_bytes(certs.ca("root2")[0].cert)
        assert handshake_serial("secure.example.com", bastion.secure_port, root2) == 61
    finally:
        web.close()
        secure.close()


def test_client_certificates_by_frontend_validation(bastion: Bastion, tmp_path: Path) -> None:
    """Mutual TLS in the Gateway API's own spelling: a ConfigMap's `ca.crt` verifies clients;
    AllowValidOnly refuses a client without a certificate, AllowInsecureFallback lets it in
    while still verifying one that presents a certificate."""
    server = certs.leaf(HOST, 91)
    client_cert, client_key = certs.write(certs.leaf("client.example.com", 92, "root2"),
                                          tmp_path, "client")
    root = tmp_path / "root.crt"
    root.write_bytes(certs.ca("root1")[0].cert)
    config_map = json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": {"name": "client-ca", "namespace": "istio-system"},
                             "data": {"ca.crt": certs.ca("root2")[0].cert.decode()}})

    def listener(mode: str) -> str:
        return task_gateway(("https", HOST, "httpbin-credential")).replace(
            "    allowedRoutes:",
            "      frontendValidation:\n"
            "        caCertificateRefs: [{group: \"\", kind: ConfigMap, name: client-ca}]\n"
            f"        mode: {mode}\n    allowedRoutes:", 1)

    bastion.cli("apply", "-f", "-", input="\n---\n".join([
        secret_json("httpbin-credential", "istio-system", "kubernetes.io/tls",
                    tls_crt=server.cert, tls_key=server.key), config_map,
        listener("AllowValidOnly"), DIRECT]))
    programmed(bastion)
    with_cert = ("--cert", str(client_cert), "--key", str(client_key))
    deadline = time.monotonic() + 10
    while "HTTP/2 301" not in curl(HOST, bastion.secure_port, "/", root, with_cert).stderr:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert curl(HOST, bastion.secure_port, "/", root).returncode != 0  # no certificate

    bastion.cli("apply", "-f", "-", input=listener("AllowInsecureFallback"))
    deadline = time.monotonic() + 10
    while "HTTP/2 301" not in curl(HOST, bastion.secure_port, "/", root).stderr:
        assert time.monotonic() < deadline, "a client without a certificate is still refused"
        time.sleep(0.1)
    assert "HTTP/2 301" in curl(HOST, bastion.secure_port, "/", root, with_cert).stderr
    stranger_cert, stranger_key = certs.write(certs.leaf("stranger.example.com", 93, "root3"),
                                              tmp_path, "stranger")
    assert curl(HOST, bastion.secure_port, "/", root, (
        "--cert", str(stranger_cert), "--key", str(stranger_key))).returncode != 0


def test_backend_tls_policy(bastion: Bastion, tmp_path: Path) -> None:
    """A BackendTLSPolicy makes the gateway speak TLS to the Service it targets, verifying the
    backend's certificate against a ConfigMap's CA and the policy's hostname."""
    cert, key = certs.write(certs.leaf("backend.example.com", 95, "root2",
                                       sans=("backend.example.com",)), tmp_path, "backend")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    backend = Recorder("secure-backend", context=context)
    config_map = json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": {"name": "backend-ca", "namespace": "default"},
                             "data": {"ca.crt": certs.ca("root2")[0].cert.decode()}})

    def policy(hostname: str) -> str:
        return f"""
apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata: {{name: to-backend, namespace: default}}
spec:
  targetRefs: [{{group: "", kind: Service, name: tls-backend}}]
  validation:
    caCertificateRefs: [{{group: "", kind: ConfigMap, name: backend-ca}}]
    hostname: {hostname}
"""
    try:
        bastion.cli("apply", "-f", "-", input="\n---\n".join([config_map, f"""
apiVersion: v1
kind: Service
metadata: {{name: tls-backend}}
spec: {{ports: [{{name: https, port: 443}}]}}
---
apiVersion: v1
kind: Endpoints
metadata: {{name: tls-backend}}
subsets: [{{addresses: [{{ip: 127.0.0.1}}], ports: [{{name: https, port: {backend.port}}}]}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: plain, namespace: istio-system}}
spec:
  gatewayClassName: istio
  listeners:
  - {{name: http, port: 80, protocol: HTTP, allowedRoutes: {{namespaces: {{from: All}}}}}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: to-tls}}
spec:
  parentRefs: [{{name: plain, namespace: istio-system}}]
  hostnames: [tls.example.com]
  rules: [{{backendRefs: [{{name: tls-backend, port: 443}}]}}]
""", policy("backend.example.com")]))

        def get() -> tuple[int, str]:
            connection = http.client.HTTPConnection("127.0.0.1", bastion.http_port, timeout=5)
            try:
                connection.request("GET", "/", headers={"Host": "tls.example.com"})
                response = connection.getresponse()
                return response.status, response.read().decode()
            except OSError as exc:  # the port-80 listener is not there yet
                return 0, repr(exc)
            finally:
                connection.close()

        deadline = time.monotonic() + 10
        while get() != (200, "secure-backend"):
            assert time.monotonic() < deadline, get()
            time.sleep(0.1)
        bastion.cli("apply", "-f", "-", input=policy("impostor.example.com"))
        deadline = time.monotonic() + 10
        while get()[0] == 200:  # the certificate does not name the policy's hostname
            assert time.monotonic() < deadline, "a backend of another name is still trusted"
            time.sleep(0.1)
        assert get()[0] == 503
    finally:
        backend.close()
