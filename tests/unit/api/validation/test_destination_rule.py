"""Istio's DestinationRule rules, one case (or more) per rule, each with Istio's verdict: read
from `ValidateDestinationRule`, `validateTrafficPolicy`, `validateConnectionPool`,
`validateLoadBalancer`, `validateOutlierDetection` and `agent.ValidateTLS` in istio/istio."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.api.validation.verdicts import ACCEPT, REJECT, WARN, check


def dr(policy: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"host": "web.default.svc.cluster.local"}
    if policy is not None:
        body["trafficPolicy"] = policy
    body.update(spec)
    return {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
            "metadata": {"name": "dr"}, "spec": body}


CASES = [
    ("plain", dr(), ACCEPT, ""),
    ("bad-host", dr(host="a.*.com"), REJECT, "spec.host"),
    ("wildcard-host", dr(host="*.example.com"), ACCEPT, ""),
    ("empty-policy", dr({}), REJECT, "a traffic policy needs at least one field"),
    ("simple-lb", dr({"loadBalancer": {"simple": "LEAST_REQUEST"}}), ACCEPT, ""),
    ("unknown-lb", dr({"loadBalancer": {"simple": "FASTEST"}}), REJECT,
     "unknown load balancer"),
    ("hash-cookie", dr({"loadBalancer": {"consistentHash": {"httpCookie": {
        "name": "s", "ttl": "10s"}}}}), ACCEPT, ""),
    ("hash-cookie-no-name", dr({"loadBalancer": {"consistentHash": {"httpCookie": {
        "name": ""}}}}), REJECT, "httpCookie.name: required"),
    ("hash-min-ring-deprecated", dr({"loadBalancer": {"consistentHash": {
        "useSourceIp": True, "minimumRingSize": 1024}}}), WARN, "deprecated"),
    ("hash-maglev-not-prime", dr({"loadBalancer": {"consistentHash": {
        "httpHeaderName": "x", "maglev": {"tableSize": 1000}}}}), REJECT, "prime"),
    ("pool-empty", dr({"connectionPool": {}}), REJECT, "a connection pool needs tcp or http"),
    ("pool", dr({"connectionPool": {"tcp": {"maxConnections": 10, "connectTimeout": "1s"},
                                    "http": {"http1MaxPendingRequests": 5}}}), ACCEPT, ""),
    ("pool-negative", dr({"connectionPool": {"tcp": {"maxConnections": -1}}}), REJECT,
     "maxConnections"),
    ("pool-bad-timeout", dr({"connectionPool": {"tcp": {"connectTimeout": "0.1ms"}}}), REJECT,
     "at least 1ms"),
    ("pool-upgrade-and-client-protocol", dr({"connectionPool": {"http": {
        "h2UpgradePolicy": "UPGRADE", "useClientProtocol": True}}}), REJECT,
     "cannot be true when h2UpgradePolicy is UPGRADE"),
    ("outlier", dr({"outlierDetection": {"consecutive5xxErrors": 3, "interval": "10s",
                                         "baseEjectionTime": "30s"}}), ACCEPT, ""),
    ("outlier-deprecated-errors", dr({"outlierDetection": {"consecutiveErrors": 3}}), WARN,
     "deprecated"),
    ("outlier-percent", dr({"outlierDetection": {"maxEjectionPercent": 120}}), REJECT,
     "not in range 0..100"),
    ("outlier-local-origin", dr({"outlierDetection": {"consecutiveLocalOriginFailures": 2}}),
     REJECT, "needs splitExternalLocalOriginErrors"),
    ("tls-simple-credential", dr({"tls": {"mode": "SIMPLE", "credentialName": "ca"}}), ACCEPT,
     ""),
    ("tls-credential-and-files", dr({"tls": {"mode": "MUTUAL", "credentialName": "c",
                                             "clientCertificate": "/c"}}), REJECT,
     "with credentialName, no client certificate"),
    ("tls-mutual-no-files", dr({"tls": {"mode": "MUTUAL"}}), REJECT,
     "clientCertificate: required for mutual TLS"),
    ("tls-skip-verify-with-ca", dr({"tls": {"mode": "SIMPLE", "insecureSkipVerify": True,
                                            "credentialName": "ca"}}), REJECT,
     "cannot be set with insecureSkipVerify"),
    ("tls-bad-mode", dr({"tls": {"mode": "STRICT"}}), REJECT, "unknown TLS mode"),
    ("port-level", dr({"portLevelSettings": [{"port": {"number": 80},
                                              "loadBalancer": {"simple": "RANDOM"}}]}), ACCEPT,
     ""),
    ("port-level-empty", dr({"portLevelSettings": [{"port": {"number": 80}}]}), REJECT,
     "a port traffic policy needs at least one field"),
    ("port-level-no-port", dr({"portLevelSettings": [{"loadBalancer": {"simple": "RANDOM"}}]}),
     REJECT, "port: required"),
    ("subsets", dr(subsets=[{"name": "v1", "labels": {"version": "v1"}}]), ACCEPT, ""),
    ("subset-duplicate", dr(subsets=[{"name": "v1"}, {"name": "v1"}]), REJECT,
     "duplicate subset name"),
    ("subset-bad-name", dr(subsets=[{"name": "V_1"}]), REJECT, "invalid subset name"),
    ("tunnel-and-proxy-protocol", dr({"tunnel": {"protocol": "CONNECT"},
                                      "proxyProtocol": {"version": "V1"}}), REJECT,
     "tunnel and proxyProtocol"),
]


@pytest.mark.parametrize(("obj", "expected", "fragment"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_destination_rule_rule(obj: dict[str, Any], expected: str, fragment: str) -> None:
    check(obj, expected, fragment)
