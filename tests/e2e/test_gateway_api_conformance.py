"""The Gateway API conformance scenarios that apply to a gateway without Kubernetes, written
as bastion's own tests from the scenario descriptions in kubernetes-sigs/gateway-api
(`conformance/tests`): one control plane and real Envoy for the module, three real backends
(`infra-backend-v1..v3`, each answering with its name and recording what reached it), and a
Gateway and routes of each scenario's own, with hostnames of its own.

Each test is one scenario, named after the upstream one; the count of passing tests is the
count of scenarios passed. Scenarios needing what bastion does not do yet (BackendTLSPolicy,
frontend client-certificate validation, ListenerSets, GRPC/TCP/UDP routes, retries, CORS)
are not written here."""

from __future__ import annotations

import http.client
import json
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import certs
from tests.e2e.backends import Answer, Recorder
from tests.e2e.harness import Bastion, curl, handshake_serial
from tests.manifests import secret_json

BACKENDS = ("infra-backend-v1", "infra-backend-v2", "infra-backend-v3")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[Bastion, dict[str, Recorder]]]:
    bastion = Bastion(tmp_path_factory.mktemp("conformance"))
    backends = {name: Recorder(name, f"127.0.0.{i + 1}") for i, name in enumerate(BACKENDS)}
    bastion.start()
    try:
        services = "".join(f"""
---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: gateway-conformance-infra}}
spec: {{ports: [{{name: http, port: 8080}}]}}
---
apiVersion: v1
kind: Endpoints
metadata: {{name: {name}, namespace: gateway-conformance-infra}}
subsets: [{{addresses: [{{ip: 127.0.0.{i + 1}}}], ports: [{{name: http, port: {r.port}}}]}}]
""" for i, (name, r) in enumerate(backends.items()))
        web = """
---
apiVersion: v1
kind: Service
metadata: {name: web-backend, namespace: gateway-conformance-web-backend}
spec: {ports: [{name: http, port: 8080}]}
"""
        endpoints = f"""
---
apiVersion: v1
kind: Endpoints
metadata: {{name: web-backend, namespace: gateway-conformance-web-backend}}
subsets: [{{addresses: [{{ip: 127.0.0.3}}], ports: [{{name: http, port: {backends[BACKENDS[2]].port}}}]}}]
"""
        bastion.cli("apply", "-f", "-", input=services + web + endpoints)
        yield bastion, backends
    finally:
        bastion.stop()
        for recorder in backends.values():
            recorder.close()


def gateway(name: str, hostname: str | None = None, from_: str = "Same",
            extra_listeners: str = "") -> str:
    host = f", hostname: {json.dumps(hostname)}" if hostname else ""
    return f"""
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: {name}, namespace: gateway-conformance-infra}}
spec:
  gatewayClassName: bastion
  listeners:
  - {{name: http, port: 80, protocol: HTTP{host}, allowedRoutes: {{namespaces: {{from: {from_}}}}}}}
{extra_listeners}"""


def route(name: str, gateway_name: str, hostnames: list[str], rules: str,
          namespace: str = "gateway-conformance-infra", section: str | None = None) -> str:
    parent = f"{{name: {gateway_name}, namespace: gateway-conformance-infra" + (
        f", sectionName: {section}}}" if section else "}")
    return f"""
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  parentRefs: [{parent}]
  hostnames: {json.dumps(hostnames)}
  rules:
{rules}"""


def apply(bastion: Bastion, *docs: str) -> None:
    bastion.cli("apply", "-f", "-", input="\n---\n".join(docs))


def request(bastion: Bastion, host: str, path: str = "/", method: str = "GET",
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    connection = http.client.HTTPConnection("127.0.0.1", bastion.http_port, timeout=10)
    try:
        connection.request(method, path, headers={"Host": host, **(headers or {})})
        response = connection.getresponse()
        return (response.status, {k.lower(): v for k, v in response.getheaders()},
                response.read().decode())
    finally:
        connection.close()


def eventually(bastion: Bastion, host: str, path: str, expected: tuple[int, str | None],
               **kwargs: object) -> tuple[int, dict[str, str], str]:
    """Until the gateway answers as expected (status and, if given, the backend's name)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            answer = request(bastion, host, path, **kwargs)  # type: ignore[arg-type]
        except OSError as exc:  # the listener is not there yet
            answer = (0, {}, repr(exc))
        if answer[0] == expected[0] and (expected[1] is None or answer[2] == expected[1]):
            return answer
        assert time.monotonic() < deadline, (host, path, answer[:1], answer[2][:200])
        time.sleep(0.1)


def route_conditions(bastion: Bastion, name: str, namespace: str = "gateway-conformance-infra"
                     ) -> dict[str, dict[str, str]]:
    body = json.loads(bastion.cli("get", "httproute", name, "-n", namespace, "-o",
                                  "json").stdout)
    return {c["type"]: c for c in body["status"]["parents"][0]["conditions"]}


V1, V2, V3 = (f"    - {{name: {b}, port: 8080}}" for b in BACKENDS)


def test_httproute_simple_same_namespace(world: tuple[Bastion, dict[str, Recorder]]) -> None:
    bastion, _ = world
    apply(bastion, gateway("same-namespace"), route(
        "gateway-conformance-infra-test", "same-namespace", ["simple.example.com"],
        f"  - backendRefs:\n{V1}"))
    eventually(bastion, "simple.example.com", "/", (200, "infra-backend-v1"))
    assert route_conditions(bastion, "gateway-conformance-infra-test")["Accepted"][
        "status"] == "True"


def test_httproute_matching(world: tuple[Bastion, dict[str, Recorder]]) -> None:
    bastion, _ = world
    apply(bastion, gateway("matching"), route("matching", "matching", ["matching.example.com"], f"""
  - matches: [{{path: {{type: PathPrefix, value: /}}}}]
    backendRefs:
{V1}
  - matches: [{{path: {{type: PathPrefix, value: /v2}}}}, {{headers: [{{name: version, value: two}}]}}]
    backendRefs:
{V2}"""))
    host = "matching.example.com"
    eventually(bastion, host, "/v2", (200, "infra-backend-v2"))
    for path, headers, expected in (("/", {}, BACKENDS[0]), ("/example", {}, BACKENDS[0]),
                                    ("/v2", {}, BACKENDS[1]), ("/v2/example", {}, BACKENDS[1]),
                                    ("/", {"Version": "two"}, BACKENDS[1])):
        assert request(bastion, host, path, headers=headers)[2] == expected, (path, headers)


def test_httproute_exact_path_matching(world: tuple[Bastion, dict[str, Recorder]]) -> None:
    bastion, _ = world
    apply(bastion, gateway("exact"), route("exact", "exact", ["exact.example.com"], f"""
  - matches: [{{path: {{type: Exact, value: /one}}}}]
    backendRefs:
{V1}
  - matches: [{{path: {{type: Exact, value: /two}}}}]
    backendRefs:
{V2}"""))
    host = "exact.example.com"
    eventually(bastion, host, "/one", (200, BACKENDS[0]))
    assert request(bastion, host, "/two")[2] == BACKENDS[1]
    for path in ("/", "/one/example", "/two/", "/Two"):
        assert request(bastion, host, path)[0] == 404, path


def test_httproute_header_matching(world: tuple[Bastion, dict[str, Recorder]]) -> None:
    bastion, _ = world
    apply(bastion, gateway("headers"), route("headers", "headers", ["headers.example.com"], f"""
  - matches: [{{headers: [{{name: version, value: one}}]}}]
    backendRefs:
{V1}
  - matches: [{{headers: [{{name: version, value: two}}, {{name: color, value: orange}}]}}]
    backendRefs:
{V2}
  - matches: [{{headers: [{{name: color, value: blue}}]}}, {{headers: [{{name: color, value: green}}]}}]
    backendRefs:
{V1}
  - matches: [{{headers: [{{name: color, value: red}}]}}, {{headers: [{{name: color, value: yellow}}]}}]
    backendRefs:
{V2}"""))
    host = "headers.example.com"
    eventually(bastion, host, "/", (200, BACKENDS[0]), headers={"Version": "one"})
    cases = [({"Version": "two", "Color": "orange"}, BACKENDS[1]),
             ({"Color": "blue"}, BACKENDS[0]), ({"Color": "green"}, BACKENDS[0]),
             ({"Color": "red"}, BACKENDS[1]), ({"Color": "yellow"}, BACKENDS[1])]
    for headers, expected in cases:
        assert request(bastion, host, headers=headers)[2] == expected, headers
    for headers in ({"Version": "two"}, {"Color": "orange"}, {"Version": "three"}, {}):
        assert request(bastion, host, headers=headers)[0] == 404, headers


def test_httproute_query_param_matching(world: tuple[Bastion, dict[str, Recorder]]) -> None:
    bastion, _ = world
    apply(bastion, gateway("query"), route("query", "query", ["query.example.com"], f"""
  - matches: [{{queryParams: [{{name: animal, value: whale}}]}}]
    backendRefs:
{V1}
  - matches: [{{queryParams: [{{name: animal, value: dolphin}}, {{name: color, value: blue}}]}}]
    backendRefs:
{V2}"""))
    host = "query.example.com"
    eventually(bastion, host, "/?animal=whale", (200, BACKENDS[0]))
    assert request(bastion, host, "/?animal=dolphin&color=blue")[2] == BACKENDS[1]
    assert request(bastion, host, "/?animal=dolphin")[0] == 404
    assert request(bastion, host, "/?ANIMAL=whale")[0] == 404  # names are case-sensitive


def test_httproute_method_matching(world: tuple[Bastion, dict[str, Recorder]]) -> None:
    bastion, _ = world
    apply(bastion, gateway("method"), route("method", "method", ["method.example.com"], f"""
  - matches: [{{method: POST}}]
    backendRefs:
{V1}
  - matches: [{{method: GET}}]
    backendRefs:
{V2}"""))
    host = "method.example.com"
    eventually(bastion, host, "/", (200, BACKENDS[1]))
    assert request(bastion, host, method="POST")[2] == BACKENDS[0]
    assert request(bastion, host, method="HEAD")[0] == 404


def test_httproute_hostname_intersection(world: tuple[Bastion, dict[str, Recorder]]) -> None:
    bastion, _ = world
    apply(bastion, gateway("intersection", "*.wildcard.io"), route(
        "intersection", "intersection", ["very.specific.wildcard.io", "other.org"],
        f"  - backendRefs:\n{V1}"), route(
        "no-intersection", "intersection", ["specific.example.com"],
        f"  - backendRefs:\n{V2}"))
    eventually(bastion, "very.specific.wildcard.io", "/", (200, BACKENDS[0]))
    assert request(bastion, "other.org")[0] == 404  # outside the listener's hostname
    assert request(bastion, "specific.example.com")[0] == 404
    conditions = route_conditions(bastion, "no-intersection")
    assert (conditions["Accepted"]["status"], conditions["Accepted"]["reason"]) == (
        "False", "NoMatchingListenerHostname")


def test_httproute_listener_hostname_matching(world: tuple[Bastion, dict[str, Recorder]]
                                              ) -> None:
    bastion, _ = world
    extra = """  - {name: listener-2, port: 80, protocol: HTTP, hostname: bar.listeners.com}
  - {name: listener-3, port: 80, protocol: HTTP, hostname: "*.foo.listeners.com"}
"""
    apply(bastion, gateway("listeners", "foo.listeners.com", extra_listeners=extra),
          route("backend-v1", "listeners", [], f"  - backendRefs:\n{V1}", section="http"),
          route("backend-v2", "listeners", [], f"  - backendRefs:\n{V2}",
                section="listener-2"),
          route("backend-v3", "listeners", [], f"  - backendRefs:\n{V3}",
                section="listener-3"))
    eventually(bastion, "foo.listeners.com", "/", (200, BACKENDS[0]))
    assert request(bastion, "bar.listeners.com")[2] == BACKENDS[1]
    assert request(bastion, "a.foo.listeners.com")[2] == BACKENDS[2]
    assert request(bastion, "unknown.listeners.com")[0] == 404


def test_httproute_request_header_modifier(world: tuple[Bastion, dict[str, Recorder]]) -> None:
    bastion, backends = world
    apply(bastion, gateway("request-headers"), route(
        "request-headers", "request-headers", ["reqheaders.example.com"], f"""
  - filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{{name: X-Header-Set, value: set-overwrites-values}}]
        add: [{{name: X-Header-Add, value: add-appends-values}}]
        remove: [X-Header-Remove]
    backendRefs:
{V1}"""))
    host = "reqheaders.example.com"
    eventually(bastion, host, "/seen", (200, BACKENDS[0]),
               headers={"X-Header-Set": "some-other-value", "X-Header-Add": "add-val",
                        "X-Header-Remove": "val"})
    seen = next(s for s in reversed(backends[BACKENDS[0]].seen) if s.path == "/seen").headers
    assert seen["x-header-set"] == "set-overwrites-values"
    assert seen["x-header-add"] == "add-val,add-appends-values"
    assert "x-header-remove" not in seen


def test_httproute_response_header_modifier(world: tuple[Bastion, dict[str, Recorder]]
                                            ) -> None:
    bastion, _ = world
    apply(bastion, gateway("response-headers"), route(
        "response-headers", "response-headers", ["respheaders.example.com"], f"""
  - filters:
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        set: [{{name: X-Header-Set, value: set-overwrites-values}}]
        add: [{{name: X-Header-Add, value: header-add}}]
        remove: [server]
    backendRefs:
{V1}"""))
    _, headers, _ = eventually(bastion, "respheaders.example.com", "/", (200, BACKENDS[0]))
    assert headers["x-header-set"] == "set-overwrites-values"
    assert headers["x-header-add"] == "header-add"


def test_httproute_redirects(world: tuple[Bastion, dict[str, Recorder]]) -> None:
    """httproute-redirect-path, -scheme, -host-and-status, -port: the redirect filters."""
    bastion, _ = world
    apply(bastion, gateway("redirects"), route("redirects", "redirects",
                                               ["redirect.example.com"], """
  - matches: [{path: {type: PathPrefix, value: /original-prefix}}]
    filters:
    - type: RequestRedirect
      requestRedirect:
        path: {type: ReplacePrefixMatch, replacePrefixMatch: /replacement-prefix}
  - matches: [{path: {type: PathPrefix, value: /full}}]
    filters:
    - type: RequestRedirect
      requestRedirect:
        path: {type: ReplaceFullPath, replaceFullPath: /full-path-replacement}
  - matches: [{path: {type: PathPrefix, value: /scheme}}]
    filters:
    - {type: RequestRedirect, requestRedirect: {scheme: https}}
  - matches: [{path: {type: PathPrefix, value: /host-and-status}}]
    filters:
    - {type: RequestRedirect, requestRedirect: {hostname: example.org, statusCode: 301}}
  - matches: [{path: {type: PathPrefix, value: /port}}]
    filters:
    - {type: RequestRedirect, requestRedirect: {port: 8083}}
"""))
    host = "redirect.example.com"
    _, headers, _ = eventually(bastion, host, "/original-prefix/lemon", (302, None))
    assert headers["location"].endswith("/replacement-prefix/lemon")
    assert request(bastion, host, "/full/x")[1]["location"].endswith("/full-path-replacement")
    assert request(bastion, host, "/scheme")[1]["location"].startswith("https://")
    status, headers, _ = request(bastion, host, "/host-and-status")
    assert (status, headers["location"].split("/")[2].split(":")[0]) == (301, "example.org")
    assert ":8083/" in request(bastion, host, "/port")[1]["location"]


def test_httproute_rewrite_path(world: tuple[Bastion, dict[str, Recorder]]) -> None:
    bastion, backends = world
    apply(bastion, gateway("rewrite"), route("rewrite", "rewrite", ["rewrite.example.com"], f"""
  - matches: [{{path: {{type: PathPrefix, value: /prefix/one}}}}]
    filters:
    - {{type: URLRewrite, urlRewrite: {{path: {{type: ReplacePrefixMatch, replacePrefixMatch: /one}}}}}}
    backendRefs:
{V1}
  - matches: [{{path: {{type: PathPrefix, value: /full/one}}}}]
    filters:
    - {{type: URLRewrite, urlRewrite: {{path: {{type: ReplaceFullPath, replaceFullPath: /one}}}}}}
    backendRefs:
{V1}"""))
    host = "rewrite.example.com"
    eventually(bastion, host, "/prefix/one/two", (200, BACKENDS[0]))
    request(bastion, host, "/full/one/two")
    paths = backends[BACKENDS[0]].paths("/one")
    assert "/one/two" in paths and "/one" in paths


def test_httproute_weight(world: tuple[Bastion, dict[str, Recorder]]) -> None:
    bastion, _ = world
    apply(bastion, gateway("weight"), route("weight", "weight", ["weight.example.com"], f"""
  - backendRefs:
    - {{name: {BACKENDS[0]}, port: 8080, weight: 70}}
    - {{name: {BACKENDS[1]}, port: 8080, weight: 30}}
    - {{name: {BACKENDS[2]}, port: 8080, weight: 0}}"""))
    host = "weight.example.com"
    eventually(bastion, host, "/", (200, None))
    connection = http.client.HTTPConnection("127.0.0.1", bastion.http_port, timeout=10)
    answers = []
    for _ in range(500):
        connection.request("GET", "/", headers={"Host": host})
        answers.append(connection.getresponse().read().decode())
    connection.close()
    assert BACKENDS[2] not in answers  # weight 0: never
    share = answers.count(BACKENDS[0]) / len(answers)
    assert 0.62 <= share <= 0.78, share


def test_httproute_request_mirror(world: tuple[Bastion, dict[str, Recorder]]) -> None:
    bastion, backends = world
    apply(bastion, gateway("mirror"), route("mirror", "mirror", ["mirror.example.com"], f"""
  - filters:
    - {{type: RequestMirror, requestMirror: {{backendRef: {{name: {BACKENDS[1]}, port: 8080}}}}}}
    backendRefs:
{V1}"""))
    eventually(bastion, "mirror.example.com", "/mirrored", (200, BACKENDS[0]))
    deadline = time.monotonic() + 5
    while "/mirrored" not in backends[BACKENDS[1]].paths("/mirrored"):
        assert time.monotonic() < deadline, "the mirror saw nothing"
        time.sleep(0.05)


def test_httproute_invalid_nonexistent_backendref(world: tuple[Bastion, dict[str, Recorder]]
                                                  ) -> None:
    bastion, _ = world
    apply(bastion, gateway("nonexistent"), route(
        "nonexistent", "nonexistent", ["nonexistent.example.com"],
        "  - backendRefs:\n    - {name: nonexistent, port: 8080}"))
    eventually(bastion, "nonexistent.example.com", "/", (500, None))
    conditions = route_conditions(bastion, "nonexistent")
    assert (conditions["ResolvedRefs"]["status"], conditions["ResolvedRefs"]["reason"]) == (
        "False", "BackendNotFound")


def test_httproute_cross_namespace(world: tuple[Bastion, dict[str, Recorder]]) -> None:
    """A route in the web-backend namespace attaches to a Gateway of the infra namespace
    whose listener allows all namespaces."""
    bastion, _ = world
    apply(bastion, gateway("cross", from_="All"), route(
        "cross-namespace", "cross", ["cross.example.com"],
        "  - backendRefs:\n    - {name: web-backend, port: 8080}",
        namespace="gateway-conformance-web-backend"))
    eventually(bastion, "cross.example.com", "/", (200, BACKENDS[2]))


def test_httproute_reference_grant(world: tuple[Bastion, dict[str, Recorder]]) -> None:
    """A backendRef to another namespace: refused (RefNotPermitted) until a ReferenceGrant
    there permits it (httproute-reference-grant, httproute-invalid-reference-grant)."""
    bastion, _ = world
    apply(bastion, gateway("grant"), route(
        "reference-grant", "grant", ["grant.example.com"],
        "  - backendRefs:\n    - {name: web-backend, namespace: gateway-conformance-web-backend,"
        " port: 8080}"))
    eventually(bastion, "grant.example.com", "/", (500, None))
    assert route_conditions(bastion, "reference-grant")["ResolvedRefs"]["reason"] == \
        "RefNotPermitted"
    apply(bastion, """
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: reference-grant, namespace: gateway-conformance-web-backend}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: gateway-conformance-infra}]
  to: [{group: "", kind: Service, name: web-backend}]
""")
    eventually(bastion, "grant.example.com", "/", (200, BACKENDS[2]))


def test_httproute_path_match_order(world: tuple[Bastion, dict[str, Recorder]]) -> None:
    bastion, _ = world
    apply(bastion, gateway("order"), route("order", "order", ["order.example.com"], f"""
  - matches: [{{path: {{type: PathPrefix, value: /match}}}}]
    backendRefs:
{V1}
  - matches: [{{path: {{type: PathPrefix, value: /match/exact}}}}]
    backendRefs:
{V2}
  - matches: [{{path: {{type: Exact, value: /match/exact/one}}}}]
    backendRefs:
{V3}
  - matches: [{{path: {{type: PathPrefix, value: /match}}, method: POST}}]
    backendRefs:
{V2}"""))
    host = "order.example.com"
    eventually(bastion, host, "/match/exact/one", (200, BACKENDS[2]))
    assert request(bastion, host, "/match/exact/two")[2] == BACKENDS[1]
    assert request(bastion, host, "/match/other")[2] == BACKENDS[0]
    assert request(bastion, host, "/match/other", method="POST")[2] == BACKENDS[1]


def test_httproute_timeout_request(world: tuple[Bastion, dict[str, Recorder]]) -> None:
    bastion, backends = world
    backends[BACKENDS[0]].answers["/slow"] = Answer(delay_s=1.5)
    apply(bastion, gateway("timeout"), route("timeout", "timeout", ["timeout.example.com"], f"""
  - matches: [{{path: {{type: PathPrefix, value: /slow}}}}]
    timeouts: {{request: 200ms}}
    backendRefs:
{V1}"""))
    eventually(bastion, "timeout.example.com", "/slow", (504, None))


def test_gateway_http_listener_isolation(world: tuple[Bastion, dict[str, Recorder]]) -> None:
    """Requests for a listener's hostname reach only the routes attached to that listener,
    even when a route of a wider listener would also match."""
    bastion, _ = world
    extra = """  - {name: wide, port: 80, protocol: HTTP, hostname: "*.isolation.com"}
"""
    apply(bastion, gateway("isolation", "exact.isolation.com", extra_listeners=extra),
          route("exact-listener", "isolation", [], f"  - backendRefs:\n{V1}", section="http"),
          route("wide-listener", "isolation", [], f"  - backendRefs:\n{V2}", section="wide"))
    eventually(bastion, "exact.isolation.com", "/", (200, BACKENDS[0]))
    assert {request(bastion, "exact.isolation.com")[2] for _ in range(10)} == {BACKENDS[0]}
    assert request(bastion, "other.isolation.com")[2] == BACKENDS[1]


def test_gateway_secret_missing_reference_grant(world: tuple[Bastion, dict[str, Recorder]]
                                                ) -> None:
    bastion, _ = world
    pair = certs.leaf("secret.example.com", 71)
    apply(bastion, secret_json("certificate", "gateway-conformance-web-backend",
                               "kubernetes.io/tls", tls_crt=pair.cert, tls_key=pair.key), """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: secret-missing-grant, namespace: gateway-conformance-infra}
spec:
  gatewayClassName: bastion
  listeners:
  - name: https
    port: 443
    protocol: HTTPS
    hostname: secret.example.com
    tls:
      certificateRefs: [{name: certificate, namespace: gateway-conformance-web-backend}]
""")
    body = json.loads(bastion.cli("get", "gtw", "secret-missing-grant", "-n",
                                  "gateway-conformance-infra", "-o", "json").stdout)
    listener = {c["type"]: c for c in body["status"]["listeners"][0]["conditions"]}
    assert (listener["ResolvedRefs"]["status"], listener["ResolvedRefs"]["reason"]) == (
        "False", "RefNotPermitted")
    assert {c["type"]: c["status"] for c in body["status"]["conditions"]}["Programmed"] == \
        "False"


def test_tlsroute_simple_same_namespace(world: tuple[Bastion, dict[str, Recorder]],
                                        tmp_path: Path) -> None:
    bastion, _ = world
    cert, key = certs.write(certs.leaf("abc.example.com", 81, "root2"), tmp_path, "tls")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    backend = Recorder("tls-backend", "127.0.0.4", context=context, keep_alive=False)
    try:
        apply(bastion, f"""
apiVersion: v1
kind: Service
metadata: {{name: tls-backend, namespace: gateway-conformance-infra}}
spec: {{ports: [{{name: https, port: 443}}]}}
---
apiVersion: v1
kind: Endpoints
metadata: {{name: tls-backend, namespace: gateway-conformance-infra}}
subsets: [{{addresses: [{{ip: 127.0.0.4}}], ports: [{{name: https, port: {backend.port}}}]}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gateway-tlsroute, namespace: gateway-conformance-infra}}
spec:
  gatewayClassName: bastion
  listeners:
  - name: https
    port: 443
    protocol: TLS
    hostname: "*.example.com"
    tls: {{mode: Passthrough}}
    allowedRoutes: {{namespaces: {{from: Same}}, kinds: [{{kind: TLSRoute}}]}}
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TLSRoute
metadata: {{name: gateway-conformance-infra-test, namespace: gateway-conformance-infra}}
spec:
  parentRefs: [{{name: gateway-tlsroute}}]
  hostnames: [abc.example.com]
  rules: [{{backendRefs: [{{name: tls-backend, port: 443}}]}}]
""")
        root2 = tmp_path / "root2.crt"
        root2.write_bytes(certs.ca("root2")[0].cert)
        deadline = time.monotonic() + 10
        while True:
            try:
                if handshake_serial("abc.example.com", bastion.secure_port, root2) == 81:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "not passed through"
            time.sleep(0.1)
    finally:
        backend.close()


def test_httproute_https_listener(world: tuple[Bastion, dict[str, Recorder]],
                                  tmp_path: Path) -> None:
    """An HTTPRoute attached to an HTTPS listener: TLS terminated with the listener's
    certificate, the request routed by its hostname."""
    bastion, _ = world
    pair = certs.leaf("https.example.com", 101, sans=("https.example.com",))
    apply(bastion, secret_json("tls-validity-checks-certificate", "gateway-conformance-infra",
                               "kubernetes.io/tls", tls_crt=pair.cert, tls_key=pair.key), """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: same-namespace-with-https-listener, namespace: gateway-conformance-infra}
spec:
  gatewayClassName: bastion
  listeners:
  - name: https
    port: 443
    protocol: HTTPS
    hostname: https.example.com
    tls: {certificateRefs: [{name: tls-validity-checks-certificate}]}
""", route("https-route", "same-namespace-with-https-listener", ["https.example.com"],
           f"  - backendRefs:\n{V1}"))
    root = tmp_path / "root.crt"
    root.write_bytes(certs.ca("root1")[0].cert)
    deadline = time.monotonic() + 10
    while (answer := curl("https.example.com", bastion.secure_port, "/", root)).stdout != \
            BACKENDS[0]:
        assert time.monotonic() < deadline, answer.stderr[-500:]
        time.sleep(0.1)


def test_gateway_secret_reference_grant_specific(world: tuple[Bastion, dict[str, Recorder]]
                                                 ) -> None:
    """A certificateRef to another namespace's Secret that a ReferenceGrant names: the
    listener's references resolve, and the Gateway is programmed."""
    bastion, _ = world
    pair = certs.leaf("granted.example.com", 102)
    apply(bastion, secret_json("granted-certificate", "gateway-conformance-web-backend",
                               "kubernetes.io/tls", tls_crt=pair.cert, tls_key=pair.key), """
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: reference-grant, namespace: gateway-conformance-web-backend}
spec:
  from: [{group: gateway.networking.k8s.io, kind: Gateway, namespace: gateway-conformance-infra}]
  to: [{group: "", kind: Secret, name: granted-certificate}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: secret-granted, namespace: gateway-conformance-infra}
spec:
  gatewayClassName: bastion
  listeners:
  - name: https
    port: 443
    protocol: HTTPS
    hostname: granted.example.com
    tls:
      certificateRefs: [{name: granted-certificate, namespace: gateway-conformance-web-backend}]
""")
    waited = bastion.cli("wait", "--for=condition=programmed", "gtw/secret-granted", "-n",
                         "gateway-conformance-infra", "--timeout", "10s", check=False)
    assert waited.returncode == 0, bastion.cli("get", "gtw", "secret-granted", "-n",
                                               "gateway-conformance-infra", "-o", "yaml").stdout
