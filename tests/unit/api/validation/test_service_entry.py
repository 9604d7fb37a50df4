"""Istio's ServiceEntry rules a gateway's backends meet, one case (or more) per rule, each with
Istio's verdict: read from `ValidateServiceEntry` in istio/istio
`pkg/config/validation/validation.go`."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.api.validation.verdicts import ACCEPT, REJECT, WARN, check

PORTS = [{"number": 8000, "name": "http", "protocol": "HTTP"}]


def se(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"hosts": ["api.example.com"], "ports": PORTS, "resolution": "DNS"}
    body.update(spec)
    return {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
            "metadata": {"name": "se"}, "spec": body}


CASES = [
    ("dns", se(), ACCEPT, ""),
    ("host-star", se(hosts=["*"]), REJECT, "host * is not allowed"),
    ("host-bad", se(hosts=["a.*.com"]), REJECT, "label '*' is invalid"),
    ("host-partial-wildcard", se(hosts=["*api.example.com"], resolution="NONE"), WARN,
     "partial wildcard"),
    ("dns-wildcard-without-endpoints", se(hosts=["*.example.com"]), REJECT,
     "without endpoints, resolution DNS needs host names"),
    ("static-ip", se(resolution="STATIC", endpoints=[{"address": "10.0.0.1"}]), ACCEPT, ""),
    ("static-name", se(resolution="STATIC", endpoints=[{"address": "api.internal"}]), REJECT,
     "is not an IP address"),
    ("none-with-endpoints", se(resolution="NONE", endpoints=[{"address": "10.0.0.1"}]), REJECT,
     "no endpoints may be given with resolution NONE"),
    ("round-robin-two", se(resolution="DNS_ROUND_ROBIN", endpoints=[
        {"address": "a.example.com"}, {"address": "b.example.com"}]), REJECT, "at most one"),
    ("dns-bad-endpoint", se(endpoints=[{"address": "not an address"}]), REJECT,
     "neither a host name nor an IP"),
    ("endpoint-unknown-port", se(endpoints=[{"address": "10.0.0.1", "ports": {"grpc": 9000}}]),
     REJECT, "not a port of the ServiceEntry"),
    ("cidr-with-dns", se(addresses=["10.0.0.0/24"]), REJECT, "CIDR blocks need resolution"),
    ("cidr-with-none", se(addresses=["10.0.0.0/24"], resolution="NONE"), ACCEPT, ""),
    ("bad-address", se(addresses=["300.0.0.1"]), REJECT, "not a valid IP"),
    ("duplicate-port", se(ports=[*PORTS, {"number": 8000, "name": "h2", "protocol": "HTTP2"}]),
     REJECT, "port 8000 is already defined"),
    ("duplicate-port-name", se(ports=[*PORTS, {"number": 9000, "name": "http",
                                               "protocol": "HTTP"}]), REJECT,
     "port name 'http' is already defined"),
    ("bad-protocol", se(ports=[{"number": 80, "name": "x", "protocol": "SPDY"}]), REJECT,
     "unsupported protocol"),
    ("several-hosts-tcp", se(hosts=["a.example.com", "b.example.com"],
                             ports=[{"number": 5432, "name": "pg", "protocol": "TCP"}]), REJECT,
     "several hosts need HTTP or TLS ports"),
    ("selector-and-endpoints", se(resolution="STATIC", workloadSelector={"labels": {"a": "b"}},
                                  endpoints=[{"address": "10.0.0.1"}]), REJECT,
     "only one of workloadSelector and endpoints"),
    ("dynamic-dns-not-wildcard", se(resolution="DYNAMIC_DNS"), REJECT,
     "must be a wildcard"),
    ("bad-resolution", se(resolution="MAGIC"), REJECT, "unsupported resolution 'MAGIC'"),
]


@pytest.mark.parametrize(("obj", "expected", "fragment"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_service_entry_rule(obj: dict[str, Any], expected: str, fragment: str) -> None:
    check(obj, expected, fragment)
