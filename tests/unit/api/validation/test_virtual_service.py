"""Istio's VirtualService rules, one case (or more) per rule, each with Istio's verdict: read from
`ValidateVirtualService`, `validateHTTPRoute` (virtualservice.go), the TLS and TCP route checks,
`validateGatewayNames`, the header validators and `agent.ValidateHTTPRetry` in istio/istio
`pkg/config/validation`."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.unit.api.validation.verdicts import ACCEPT, REJECT, WARN, check

DEST = [{"destination": {"host": "httpbin.default.svc.cluster.local"}}]


def vs(http: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"hosts": ["a.example.com"], "gateways": ["gw"]}
    if http is not None:
        body["http"] = http
    elif "tls" not in spec and "tcp" not in spec:
        body["http"] = [{"route": DEST}]
    body.update(spec)
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "vs"}, "spec": body}


def rule(**fields: Any) -> dict[str, Any]:
    if not ({"redirect", "directResponse", "delegate"} & fields.keys()):
        fields.setdefault("route", DEST)
    return vs([fields])


def dest(host: str, **extra: Any) -> dict[str, Any]:
    return rule(route=[{"destination": {"host": host}, **extra}])


def headers(direction: str, kind: str, value: Any) -> dict[str, Any]:
    return rule(headers={direction: {kind: value}})


def sni(*hosts: str, vs_hosts: tuple[str, ...] = ("*.example.com",),
        **extra: Any) -> dict[str, Any]:
    return vs(None, hosts=list(vs_hosts), tls=[{"match": [{"sniHosts": list(hosts)}],
                                                "route": DEST, **extra}])


CASES = [
    # hosts
    ("hosts-ok", vs(), ACCEPT, ""),
    ("host-star-gateway", vs(hosts=["*"]), ACCEPT, ""),
    ("host-star-mesh", vs(hosts=["*"], gateways=["mesh"]), REJECT,
     "host * is not allowed for the mesh gateway"),
    ("host-short", vs(hosts=["httpbin"]), ACCEPT, ""),
    ("host-namespace-slash", vs(hosts=["ns/a.example.com"]), REJECT, "spec.hosts[0]"),
    ("host-ip", vs(hosts=["10.1.2.3"]), ACCEPT, ""),
    ("host-overlap", vs(hosts=["*.foo.bar", "*.bar"]), REJECT, "duplicate hosts"),
    ("host-duplicate", vs(hosts=["a.example.com", "a.example.com"]), REJECT,
     "duplicate hosts"),
    ("host-outbound-sni", sni("outbound_.80_._.a.example.com",
                              vs_hosts=("outbound_.80_._.a.example.com",)), ACCEPT, ""),
    ("host-outbound-without-sni", vs(hosts=["outbound_.80_._.a.example.com"]), REJECT,
     "label 'outbound_' is invalid"),
    ("no-routes", vs([]), REJECT, "one of http, tls or tcp is required"),
    # gateway names
    ("gateway-namespaced", vs(gateways=["istio-system/gw"]), ACCEPT, ""),
    ("gateway-bad-chars", vs(gateways=["b@dgateway"]), REJECT, "invalid gateway name"),
    ("gateway-wildcard-name", vs(gateways=["ns1/*"]), REJECT, "invalid gateway name '*'"),
    ("gateway-wildcard-namespace", vs(gateways=["*/gateway"]), REJECT,
     "invalid namespace '*'"),
    ("gateway-legacy-fqdn", vs(gateways=["gw.istio-system.svc.cluster.local"]), WARN,
     "prefer namespace/name: istio-system/gw"),
    ("gateway-empty-name", vs(gateways=["ns/"]), REJECT, "cannot be empty"),
    # delegate
    ("delegate-vs-with-gateways", vs(hosts=[]), REJECT, "a delegate VirtualService"),
    ("delegate-vs", vs(hosts=[], gateways=[]), ACCEPT, ""),
    ("root-delegate-with-route", rule(delegate={"name": "d"}, route=DEST), REJECT,
     "a rule with a delegate cannot have route"),
    # actions
    ("route-and-redirect", rule(route=DEST, redirect={"uri": "/x"}), REJECT,
     "route: cannot be combined with redirect"),
    ("redirect-and-rewrite", rule(redirect={"uri": "/x"}, rewrite={"uri": "/y"}), REJECT,
     "rewrite: cannot be combined with redirect"),
    ("direct-response-and-route", rule(directResponse={"status": 200}, route=DEST), REJECT,
     "route: cannot be combined with directResponse"),
    # redirect
    ("redirect-empty", rule(redirect={}), REJECT, "a redirect must set uri"),
    ("redirect-prefix-rewrite", rule(redirect={"prefixRewrite": "/new"},
                                     match=[{"uri": {"prefix": "/old"}}]), ACCEPT, ""),
    ("redirect-prefix-rewrite-exact", rule(redirect={"prefixRewrite": "/new"},
                                           match=[{"uri": {"exact": "/old"}}]), REJECT,
     "needs every uri match to be a prefix match"),
    ("redirect-uri-and-prefix", rule(redirect={"uri": "/a", "prefixRewrite": "/b"}), REJECT,
     "only one of uri and prefixRewrite"),
    ("redirect-code-4xx", rule(redirect={"uri": "/a", "redirectCode": 404}), REJECT,
     "404 is not a redirect code"),
    ("redirect-code-308", rule(redirect={"uri": "/a", "redirectCode": 308}), ACCEPT, ""),
    ("redirect-code-305", rule(redirect={"uri": "/a", "redirectCode": 305}), WARN,
     "the rule is left out"),
    ("redirect-bad-scheme", rule(redirect={"scheme": "ftp"}), REJECT, "must be http or https"),
    # rewrite
    ("rewrite-empty", rule(rewrite={}), REJECT, "a rewrite must set uri"),
    ("rewrite-uri-and-regex", rule(rewrite={"uri": "/a", "uriRegexRewrite": {
        "match": "^/a", "rewrite": "/b"}}), REJECT, "only one of uri and uriRegexRewrite"),
    ("rewrite-regex", rule(rewrite={"uriRegexRewrite": {"match": "^/a(.*)", "rewrite": r"/b\1"}}),
     ACCEPT, ""),
    ("rewrite-regex-half", rule(rewrite={"uriRegexRewrite": {"match": "^/a"}}), REJECT,
     "needs both match and rewrite"),
    ("rewrite-authority-twice", rule(rewrite={"authority": "x"}, headers={
        "request": {"set": {":authority": "y"}}}), REJECT, "the authority is also set"),
    # direct response
    ("direct-response-string-5k", rule(directResponse={"status": 200, "body": {
        "string": "x" * 5000}}), ACCEPT, ""),
    ("direct-response-string-200k", rule(directResponse={"status": 200, "body": {
        "string": "x" * 200_000}}), WARN, "over 100 KB"),
    ("direct-response-bytes-2m", rule(directResponse={"status": 200, "body": {
        "bytes": base64.b64encode(b"x" * (2 * 1024 * 1024)).decode()}}), REJECT, "at most 1 MB"),
    ("direct-response-bad-status", rule(directResponse={"status": 100}), REJECT,
     "directResponse.status"),
    # retries
    ("retries-zero-attempts", rule(retries={"attempts": 0, "perTryTimeout": "1s"}), REJECT,
     "attempts is 0"),
    ("retries-zero-attempts-alone", rule(retries={"attempts": 0}), ACCEPT, ""),
    ("retries-per-try-under-1ms", rule(retries={"attempts": 3, "perTryTimeout": "0.5ms"}),
     REJECT, "at least 1ms"),
    ("retries-backoff-under-1ms", rule(retries={"attempts": 3, "backoff": "100us"}), REJECT,
     "at least 1ms"),
    ("retries-bad-policy", rule(retries={"attempts": 3, "retryOn": "5xx,sometimes"}), REJECT,
     "'sometimes' is not a retryOn policy"),
    ("retries-bad-status", rule(retries={"attempts": 3, "retryOn": "599"}), REJECT,
     "'599' is not a retryOn policy"),
    ("retries-status-code", rule(retries={"attempts": 3, "retryOn": "503,gateway-error"}),
     ACCEPT, ""),
    ("retries-negative", rule(retries={"attempts": -1}), REJECT, "retries.attempts"),
    # timeouts
    ("timeout-ok", rule(timeout="1.5s"), ACCEPT, ""),
    ("timeout-sub-ms", rule(timeout="1.0005s"), REJECT, "only whole milliseconds"),
    ("timeout-bad", rule(timeout="soon"), REJECT, "invalid duration 'soon'"),
    # destinations
    ("destination-short", dest("foo"), ACCEPT, ""),
    ("destination-star", dest("*"), REJECT, "invalid destination host '*'"),
    ("destination-suffix-wildcard", dest("foo.*"), REJECT, "label '*' is invalid"),
    ("destination-wildcard", dest("*.foo.com"), ACCEPT, ""),
    ("destination-bad-subset", rule(route=[{"destination": {"host": "foo",
                                                            "subset": "Bad_Subset"}}]),
     REJECT, "invalid subset name"),
    ("weights-all-zero", rule(route=[{"destination": {"host": "a"}, "weight": 0},
                                     {"destination": {"host": "b"}, "weight": 0}]), REJECT,
     "cannot all be 0"),
    ("weight-negative", dest("a", weight=-1), REJECT, "weight"),
    # matches
    ("match-empty-uri-prefix", rule(match=[{"uri": {"prefix": ""}}]), ACCEPT, ""),
    ("match-empty-header-prefix", rule(match=[{"headers": {"x": {"prefix": ""}}}]), REJECT,
     "a prefix match cannot be empty"),
    ("match-empty-method-prefix", rule(match=[{"method": {"prefix": ""}}]), REJECT,
     "a prefix match cannot be empty"),
    ("match-upper-case-header", rule(match=[{"headers": {"X-User": {"exact": "a"}}}]), ACCEPT,
     ""),
    ("match-pseudo-header", rule(match=[{"headers": {":path": {"prefix": "/"}}}]), ACCEPT, ""),
    ("match-bad-header-name", rule(match=[{"headers": {"bad header": {"exact": "a"}}}]),
     REJECT, "not a valid header name"),
    ("match-jwt-claim", rule(match=[{"headers": {"@request.auth.claims.group": {
        "exact": "a"}}}]), ACCEPT, ""),
    ("match-bad-regex", rule(match=[{"uri": {"regex": "(?=x)"}}]), REJECT, "invalid RE2"),
    ("match-long-regex", rule(match=[{"uri": {"regex": "a" * 1025}}]), REJECT, "too long"),
    ("match-without-headers-star", rule(match=[{"withoutHeaders": {"x": {"regex": "*"}}}]),
     ACCEPT, ""),
    ("match-bad-port", rule(match=[{"port": 70000}]), REJECT, "port number 70000"),
    ("match-bad-source-namespace", rule(match=[{"sourceNamespace": "a.b"}]), REJECT,
     "invalid namespace 'a.b'"),
    # header operations
    ("header-set-authority", headers("request", "set", {":authority": "b.example.com"}),
     ACCEPT, ""),
    ("header-set-host", headers("request", "set", {"host": "b.example.com"}), ACCEPT, ""),
    ("header-set-pseudo", headers("request", "set", {":path": "/x"}), REJECT,
     "pseudo-header"),
    ("header-remove-host", headers("request", "remove", ["host"]), REJECT,
     "header 'host' cannot be changed"),
    ("header-response-authority", headers("response", "set", {":authority": "x"}), REJECT,
     "pseudo-header"),
    ("header-value-unescaped-percent", headers("request", "set", {"x-a": "abc%123"}), REJECT,
     "unescaped '%'"),
    ("header-value-variable", headers("request", "set", {"x-a": "%HOSTNAME%"}), ACCEPT, ""),
    ("header-value-escaped-percent", headers("response", "add", {"x-a": "100%%"}), ACCEPT, ""),
    ("header-value-trailing-percent", headers("request", "set", {"x-a": "%START_TIME%%"}),
     REJECT, "unescaped '%'"),
    ("header-value-control", headers("request", "set", {"x-a": "a\x01b"}), REJECT,
     "control characters"),
    ("header-name-not-a-token", headers("response", "set", {"bad name": "x"}), WARN,
     "this operation is left out"),
    # fault injection
    ("fault-empty", rule(fault={}), REJECT, "a fault needs an abort, a delay or both"),
    ("fault-abort", rule(fault={"abort": {"httpStatus": 503, "percentage": {"value": 10}}}),
     ACCEPT, ""),
    ("fault-abort-bad-status", rule(fault={"abort": {"httpStatus": 700}}), REJECT,
     "not in range 200-599"),
    ("fault-abort-no-type", rule(fault={"abort": {"percentage": {"value": 10}}}), WARN,
     "does nothing"),
    ("fault-abort-grpc", rule(fault={"abort": {"grpcStatus": "UNAVAILABLE"}}), ACCEPT, ""),
    ("fault-abort-bad-grpc", rule(fault={"abort": {"grpcStatus": "MEH"}}), REJECT,
     "is not a gRPC status"),
    ("fault-abort-http2", rule(fault={"abort": {"http2Error": "REFUSED_STREAM"}}), REJECT,
     "not supported"),
    ("fault-bad-percentage", rule(fault={"delay": {"fixedDelay": "1s",
                                                   "percentage": {"value": 0.00001}}}),
     REJECT, "neither 0 nor between 0.0001 and 100"),
    ("fault-delay-bad-duration", rule(fault={"delay": {"fixedDelay": "0.1ms"}}), REJECT,
     "at least 1ms"),
    ("fault-delay-exponential", rule(fault={"delay": {"exponentialDelay": "1s"}}), REJECT,
     "exponential delays are not supported"),
    # mirrors
    ("mirror", rule(mirror={"host": "shadow"}, mirrorPercentage={"value": 50}), ACCEPT, ""),
    ("mirror-and-mirrors", rule(mirror={"host": "a"}, mirrors=[{"destination": {"host": "b"}}]),
     REJECT, "cannot be combined with mirror"),
    ("mirror-percentage-over", rule(mirror={"host": "a"}, mirrorPercentage={"value": 101}),
     REJECT, "between 0 and 100"),
    ("mirror-percent-deprecated", rule(mirror={"host": "a"}, mirrorPercent=50), WARN,
     "deprecated"),
    ("mirrors-bad-host", rule(mirrors=[{"destination": {"host": "*"}}]), REJECT,
     "invalid destination host"),
    # CORS
    ("cors", rule(corsPolicy={"allowOrigins": [{"exact": "https://a.example.com"}],
                              "allowMethods": ["GET", "POST"], "allowHeaders": ["x-a"],
                              "maxAge": "24h", "allowCredentials": True}), ACCEPT, ""),
    ("cors-empty-origin", rule(corsPolicy={"allowOrigins": [{"exact": ""}]}), REJECT,
     "an origin match cannot be empty"),
    ("cors-bad-method", rule(corsPolicy={"allowMethods": ["FETCH"]}), REJECT,
     "'FETCH' is not an HTTP method"),
    ("cors-bad-header", rule(corsPolicy={"allowHeaders": ["bad header"]}), REJECT,
     "not a valid header name"),
    ("cors-star-header", rule(corsPolicy={"exposeHeaders": ["*"]}), ACCEPT, ""),
    ("cors-max-age-fraction", rule(corsPolicy={"maxAge": "1500ms"}), REJECT,
     "only whole seconds"),
    # unreachable rules
    ("rule-after-catch-all", vs([{"route": DEST}, {"match": [{"uri": {"prefix": "/a"}}],
                                                   "route": DEST}]), WARN, "never used"),
    ("duplicate-match", vs([{"match": [{"uri": {"prefix": "/a"}}], "route": DEST},
                            {"match": [{"uri": {"prefix": "/a"}}, {"uri": {"prefix": "/b"}}],
                             "route": DEST}]), WARN, "has the same match"),
    # TLS routes
    ("tls-route", sni("a.example.com"), ACCEPT, ""),
    ("tls-no-match", vs(None, tls=[{"route": DEST}]), REJECT,
     "a TLS route needs at least one match"),
    ("tls-no-sni", vs(None, tls=[{"match": [{"port": 443}], "route": DEST}]), REJECT,
     "at least one SNI host"),
    ("tls-no-route", sni("a.example.com", route=[]), REJECT, "spec.tls[0].route: required"),
    ("tls-sni-not-in-hosts", sni("b.other.com"), REJECT, "not covered by the VirtualService"),
    ("tls-sni-bad-wildcard", sni("a.*.example.com"), REJECT, "label '*' is invalid"),
    ("tls-sni-ip", sni("10.0.0.1"), WARN, "an IP address"),
    ("tls-bad-weights", sni("a.example.com", route=[
        {"destination": {"host": "a"}, "weight": 0},
        {"destination": {"host": "b"}, "weight": 0}]), REJECT, "cannot all be 0"),
    ("tls-bad-subnet", vs(None, tls=[{"match": [{"sniHosts": ["a.example.com"],
                                                 "destinationSubnets": ["10.0.0.0/99"]}],
                                      "route": DEST}]), REJECT, "not a valid IP"),
    # TCP routes
    ("tcp-route", vs(None, tcp=[{"match": [{"port": 31400}], "route": DEST}]), ACCEPT, ""),
    ("tcp-no-route", vs(None, tcp=[{"match": [{"port": 31400}]}]), REJECT,
     "spec.tcp[0].route: required"),
    ("tcp-port-zero-is-unset", vs(None, tcp=[{"match": [{"port": 0}], "route": DEST}]), ACCEPT,
     ""),
    ("tcp-bad-subnet", vs(None, tcp=[{"match": [{"destinationSubnets": ["nope"]}],
                                      "route": DEST}]), REJECT, "'nope' is not a valid IP"),
    # exportTo
    ("export-to", vs(exportTo=[".", "other"]), ACCEPT, ""),
    ("export-to-star-and-more", vs(exportTo=["*", "other"]), REJECT, "'*' cannot be combined"),
    # schema
    ("unknown-field", rule(colour="blue"), REJECT, "unknown field"),
]


@pytest.mark.parametrize(("obj", "expected", "fragment"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_virtual_service_rule(obj: dict[str, Any], expected: str, fragment: str) -> None:
    check(obj, expected, fragment)
