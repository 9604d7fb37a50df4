"""Istio's admission rules for DestinationRules: the host, subsets, and each traffic policy
(load balancer, connection pool, outlier detection, TLS to the backend, port-level settings),
with Istio's verdicts."""

from __future__ import annotations

from collections.abc import Iterator

from bastion.api.istio import (
    ClientTLSSettings,
    ConnectionPoolSettings,
    DestinationRule,
    LoadBalancerSettings,
    OutlierDetection,
    TrafficPolicy,
)
from bastion.api.validation.names import is_dns_label, wildcard_host_problem
from bastion.api.validation.problem import Problem, warn
from bastion.api.validation.values import duration_problem
from bastion.api.validation.virtual_service import export_to_problems

SIMPLE_LB = frozenset({"UNSPECIFIED", "RANDOM", "PASSTHROUGH", "ROUND_ROBIN", "LEAST_REQUEST",
                       "LEAST_CONN"})
TLS_MODES = frozenset({"DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"})


def destination_rule_problems(rule: DestinationRule) -> Iterator[Problem]:
    spec = rule.spec
    reason = wildcard_host_problem(spec.host)
    if reason:
        yield Problem("spec.host", reason)
    yield from _policy_problems("spec.trafficPolicy", spec.traffic_policy)
    names: set[str] = set()
    for i, subset in enumerate(spec.subsets):
        at = f"spec.subsets[{i}]"
        if subset.name in names:
            yield Problem(f"{at}.name", f"duplicate subset name {subset.name!r}")
        names.add(subset.name)
        if not is_dns_label(subset.name):
            yield Problem(f"{at}.name", f"invalid subset name {subset.name!r}")
        yield from _policy_problems(f"{at}.trafficPolicy", subset.traffic_policy)
    yield from export_to_problems("spec.exportTo", spec.export_to)


def _policy_problems(at: str, policy: TrafficPolicy | None) -> Iterator[Problem]:
    if policy is None:
        return
    if not (policy.load_balancer or policy.connection_pool or policy.outlier_detection
            or policy.tls or policy.port_level_settings or policy.tunnel
            or policy.proxy_protocol or policy.retry_budget):
        yield Problem(at, "a traffic policy needs at least one field")
        return
    if policy.tunnel is not None and policy.proxy_protocol is not None:
        yield Problem(at, "tunnel and proxyProtocol cannot be set together")
        return
    yield from _sections(at, policy.load_balancer, policy.connection_pool,
                         policy.outlier_detection, policy.tls)
    for k, level in enumerate(policy.port_level_settings):
        where = f"{at}.portLevelSettings[{k}]"
        if level.port is None:
            yield Problem(f"{where}.port", "required")
        if not (level.load_balancer or level.connection_pool or level.outlier_detection
                or level.tls):
            yield Problem(where, "a port traffic policy needs at least one field")
        else:
            yield from _sections(where, level.load_balancer, level.connection_pool,
                                 level.outlier_detection, level.tls)


def _sections(at: str, lb: LoadBalancerSettings | None, pool: ConnectionPoolSettings | None,
              outlier: OutlierDetection | None, tls: ClientTLSSettings | None
              ) -> Iterator[Problem]:
    if lb is not None:
        yield from _lb_problems(f"{at}.loadBalancer", lb)
    if pool is not None:
        yield from _pool_problems(f"{at}.connectionPool", pool)
    if outlier is not None:
        yield from _outlier_problems(f"{at}.outlierDetection", outlier)
    if tls is not None:
        yield from _tls_problems(f"{at}.tls", tls)


def _lb_problems(at: str, lb: LoadBalancerSettings) -> Iterator[Problem]:
    if lb.simple is not None and lb.simple not in SIMPLE_LB:
        yield Problem(f"{at}.simple", f"unknown load balancer {lb.simple!r}")
    hashing = lb.consistent_hash
    if hashing is not None:
        if hashing.http_cookie is not None and not hashing.http_cookie.name:
            yield Problem(f"{at}.consistentHash.httpCookie.name", "required")
        if hashing.minimum_ring_size:
            yield warn(f"{at}.consistentHash.minimumRingSize",
                       "deprecated; use ringHash.minimumRingSize")
            if hashing.ring_hash is not None or hashing.maglev is not None:
                yield Problem(f"{at}.consistentHash",
                              "only one of minimumRingSize, ringHash and maglev may be set")
        if hashing.maglev is not None:
            size = int(hashing.maglev.get("tableSize", 0) or 0)
            if not size or size >= 5000011 or not _prime(size):
                yield Problem(f"{at}.consistentHash.maglev.tableSize",
                              "must be a prime number below 5000011")


def _prime(n: int) -> bool:
    return n > 1 and all(n % d for d in range(2, int(n ** 0.5) + 1))


def _pool_problems(at: str, pool: ConnectionPoolSettings) -> Iterator[Problem]:
    if pool.http is None and pool.tcp is None:
        yield Problem(at, "a connection pool needs tcp or http")
    if pool.http is not None:
        http = pool.http
        if http.idle_timeout is not None and (reason := duration_problem(http.idle_timeout)):
            yield Problem(f"{at}.http.idleTimeout", reason)
        if http.h2_upgrade_policy == "UPGRADE" and http.use_client_protocol:
            yield Problem(f"{at}.http.useClientProtocol",
                          "cannot be true when h2UpgradePolicy is UPGRADE")
    if pool.tcp is not None:
        for field, value in (("connectTimeout", pool.tcp.connect_timeout),
                             ("maxConnectionDuration", pool.tcp.max_connection_duration)):
            if value is not None and (reason := duration_problem(value)):
                yield Problem(f"{at}.tcp.{field}", reason)


def _outlier_problems(at: str, outlier: OutlierDetection) -> Iterator[Problem]:
    for field, value in (("baseEjectionTime", outlier.base_ejection_time),
                         ("interval", outlier.interval)):
        if value is not None and (reason := duration_problem(value)):
            yield Problem(f"{at}.{field}", reason)
    if outlier.consecutive_errors:
        yield warn(f"{at}.consecutiveErrors",
                   "deprecated; use consecutiveGatewayErrors or consecutive5xxErrors")
    if outlier.consecutive_local_origin_failures and not (
            outlier.split_external_local_origin_errors):
        yield Problem(f"{at}.consecutiveLocalOriginFailures",
                      "needs splitExternalLocalOriginErrors")
    for name, percent in (("maxEjectionPercent", outlier.max_ejection_percent),
                          ("minHealthPercent", outlier.min_health_percent)):
        if percent is not None and not 0 <= percent <= 100:
            yield Problem(f"{at}.{name}", f"percentage {percent} is not in range 0..100")


def _tls_problems(at: str, tls: ClientTLSSettings) -> Iterator[Problem]:
    if tls.mode not in TLS_MODES:
        yield Problem(f"{at}.mode", f"unknown TLS mode {tls.mode!r}")
        return
    if tls.insecure_skip_verify:
        if tls.mode == "SIMPLE" and (tls.ca_certificates or tls.credential_name
                                     or tls.subject_alt_names):
            yield Problem(at, "caCertificates, credentialName and subjectAltNames cannot be "
                              "set with insecureSkipVerify")
        if tls.mode == "MUTUAL" and (tls.ca_certificates or tls.subject_alt_names):
            yield Problem(at, "caCertificates and subjectAltNames cannot be set with "
                              "insecureSkipVerify")
    if tls.mode in ("SIMPLE", "MUTUAL") and tls.credential_name:
        if tls.client_certificate or tls.ca_certificates or tls.private_key or tls.ca_crl:
            yield Problem(at, "with credentialName, no client certificate, CA or CRL file may "
                              "be set")
        return
    if tls.mode == "MUTUAL":
        if not tls.client_certificate:
            yield Problem(f"{at}.clientCertificate", "required for mutual TLS")
        if not tls.private_key:
            yield Problem(f"{at}.privateKey", "required for mutual TLS")
