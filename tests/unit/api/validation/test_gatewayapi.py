"""The Gateway API CRDs' validation at admission (their schemas and CEL rules), a case per
rule, plus cert-manager's webhook rules for Certificates and Issuers."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.unit.api.validation.verdicts import ACCEPT, REJECT, WARN, check

GROUP = "gateway.networking.k8s.io/v1"


def gateway(*listeners: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": GROUP, "kind": "Gateway",
            "metadata": {"name": "gw", "namespace": "istio-system"},
            "spec": {"gatewayClassName": "istio", "listeners": list(listeners)}}


HTTPS = {"name": "https", "port": 443, "protocol": "HTTPS", "hostname": "httpbin.example.com",
         "tls": {"mode": "Terminate", "certificateRefs": [{"name": "httpbin-credential"}]}}
HTTP = {"name": "http", "port": 80, "protocol": "HTTP"}


def listener(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(HTTPS)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


@pytest.mark.parametrize(("obj", "expected", "fragment"), [
    (gateway(HTTPS), ACCEPT, ""),
    (gateway(HTTPS, listener(port=8443)), REJECT, "Listener name must be unique"),
    (gateway(HTTPS, listener(name="other")), REJECT, "port, protocol and hostname must be unique"),
    (gateway(listener(tls=None)), REJECT, "tls must be specified for protocols"),
    (gateway({**HTTP, "tls": HTTPS["tls"]}), REJECT, "tls must not be specified"),
    (gateway(listener(tls={"mode": "Terminate"})), REJECT, "certificateRefs or options"),
    (gateway(listener(tls={"mode": "Terminate",
                           "options": {"gateway.istio.io/tls-terminate-mode": "MUTUAL"},
                           "certificateRefs": [{"name": "c"}]})), ACCEPT, ""),
    (gateway(listener(hostname="10.0.0.1")), REJECT, "is an IP address"),
    (gateway(listener(hostname="*.example.com")), ACCEPT, ""),
    (gateway(listener(hostname="a.*.example.com")), REJECT, "not a valid hostname"),
    (gateway({"name": "tcp", "port": 9000, "protocol": "TCP", "hostname": "a.example.com"}),
     REJECT, "hostname must not be specified"),
    (gateway(listener(protocol="QUIC")), REJECT, "unsupported protocol"),
    (gateway(listener(port=0)), REJECT, "spec.listeners[0].port"),
    (gateway(listener(tls={"mode": "Passthrough"})), REJECT, "Passthrough is for protocol TLS"),
    (gateway({**HTTP, "allowedRoutes": {"namespaces": {"from": "Selector"}}}), REJECT,
     "a selector is required"),
    (gateway({**HTTP, "allowedRoutes": {"namespaces": {"from": "Selector", "selector": {
        "matchLabels": {"kubernetes.io/metadata.name": "default"}}}}}), ACCEPT, ""),
    (gateway({**HTTP, "bogus": 1}), REJECT, "unknown field"),
])
def test_gateway(obj: dict[str, Any], expected: str, fragment: str) -> None:
    check(obj, expected, fragment)


def route(*rules: dict[str, Any], hostnames: list[str] | None = None) -> dict[str, Any]:
    return {"apiVersion": GROUP, "kind": "HTTPRoute", "metadata": {"name": "r"},
            "spec": {"parentRefs": [{"name": "gw", "namespace": "istio-system"}],
                     "hostnames": hostnames or ["httpbin.example.com"], "rules": list(rules)}}


BACKEND = {"backendRefs": [{"name": "httpbin", "port": 8000}]}


@pytest.mark.parametrize(("obj", "expected", "fragment"), [
    (route({"matches": [{"path": {"type": "PathPrefix", "value": "/status"}}], **BACKEND}),
     ACCEPT, ""),
    (route({"matches": [{"path": {"type": "Exact", "value": "hello"}}], **BACKEND}), REJECT,
     "must be an absolute path"),
    (route({"matches": [{"path": {"type": "PathPrefix", "value": "/a//b"}}], **BACKEND}),
     REJECT, "must not contain"),
    (route({"matches": [{"path": {"type": "Glob", "value": "/a"}}], **BACKEND}), REJECT,
     "must be Exact, PathPrefix or RegularExpression"),
    (route({"matches": [{"method": "FETCH"}], **BACKEND}), REJECT, "unsupported method"),
    (route({"filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https"}},
                        {"type": "URLRewrite", "urlRewrite": {"hostname": "x"}}]}), REJECT,
     "but not both"),
    (route({"filters": [{"type": "RequestHeaderModifier"}], **BACKEND}), REJECT,
     "filter.requestHeaderModifier must be specified"),
    (route({"filters": [{"type": "RequestRedirect", "requestRedirect": {"statusCode": 305}}]}),
     REJECT, "must be one of 301, 302"),
    (route({"matches": [{"path": {"type": "Exact", "value": "/a"}}], "filters": [
        {"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplacePrefixMatch",
                                                       "replacePrefixMatch": "/b"}}}],
            **BACKEND}), REJECT, "exactly one PathPrefix match"),
    (route(BACKEND, hostnames=["Bad_Host"]), REJECT, "not a valid hostname"),
    (route({"backendRefs": [{"name": "httpbin", "port": 8000, "weight": -1}]}), REJECT,
     "weight"),
])
def test_http_route(obj: dict[str, Any], expected: str, fragment: str) -> None:
    check(obj, expected, fragment)


def test_backend_tls_policy_needs_one_source_of_trust() -> None:
    policy = {"apiVersion": GROUP, "kind": "BackendTLSPolicy", "metadata": {"name": "p"},
              "spec": {"targetRefs": [{"group": "", "kind": "Service", "name": "s"}],
                       "validation": {"hostname": "s.example.com"}}}
    check(policy, REJECT, "must specify either")
    policy["spec"]["validation"]["wellKnownCACertificates"] = "System"
    check(policy, ACCEPT, "")


@pytest.mark.parametrize(("spec", "expected", "fragment"), [
    ({}, ACCEPT, ""),
    ({"duration": "30m"}, REJECT, "greater than 1h0m0s"),
    ({"renewBefore": "1m"}, REJECT, "greater than 5m0s"),
    ({"duration": "24h", "renewBefore": "24h"}, REJECT, "must be greater than renewBefore"),
    ({"privateKey": {"algorithm": "ECDSA", "size": 255}}, REJECT, "256, 384 or 521"),
    ({"privateKey": {"rotationPolicy": "Sometimes"}}, REJECT, "Never or Always"),
    ({"usages": ["server auth", "flying"]}, REJECT, "unknown key usage"),
    ({"dnsNames": []}, REJECT, "at least one of commonName, dnsNames"),
    ({"keystores": {"pkcs12": {"create": True}}}, WARN, "not implemented by bastion"),
])
def test_certificate(spec: dict[str, Any], expected: str, fragment: str) -> None:
    check({"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
           "metadata": {"name": "c", "namespace": "istio-system"},
           "spec": {"secretName": "c", "dnsNames": ["c.example.com"],
                    "issuerRef": {"name": "ca", "kind": "ClusterIssuer"}, **spec}},
          expected, fragment)


@pytest.mark.parametrize(("spec", "expected", "fragment"), [
    ({"selfSigned": {}}, ACCEPT, ""),
    ({}, REJECT, "at least one issuer type"),
    ({"selfSigned": {}, "ca": {"secretName": "x"}}, REJECT, "more than one issuer type"),
    ({"vault": {"server": "https://vault"}}, WARN, "not implemented by bastion"),
    ({"acme": {"server": "http://acme", "privateKeySecretRef": {"name": "k"}}}, REJECT,
     "must be an https:// URL"),
    ({"acme": {"server": "https://acme", "privateKeySecretRef": {"name": "k"},
               "solvers": [{"dns01": {"route53": {}}}]}}, WARN, "only http01"),
])
def test_issuer(spec: dict[str, Any], expected: str, fragment: str) -> None:
    check({"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer",
           "metadata": {"name": "i"}, "spec": spec}, expected, fragment)
