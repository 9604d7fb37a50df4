"""DestinationRules to backend policies: which rule applies to a destination (Istio's
precedence), and its traffic policy for one port (port-level settings override the rule's own,
section by section)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bastion.api import istio, validation
from bastion.diag import ObjectRef
from bastion.ir.model import (
    BackendPolicy,
    Balance,
    ConnectionLimits,
    Ejection,
    HashKey,
    UpstreamTls,
)
from bastion.translate.istio import hosts
from bastion.translate.istio.hosts import qualify

SIMPLE = {"ROUND_ROBIN": Balance.ROUND_ROBIN, "LEAST_REQUEST": Balance.LEAST_REQUEST,
          "LEAST_CONN": Balance.LEAST_REQUEST, "RANDOM": Balance.RANDOM,
          "PASSTHROUGH": Balance.ROUND_ROBIN, "UNSPECIFIED": Balance.ROUND_ROBIN}


def _ms(value: str | None) -> int | None:
    ns = validation.duration_ns(value) if value else None
    return ns // 1_000_000 if ns is not None else None


def _visible(rule: istio.DestinationRule, namespace: str) -> bool:
    export = rule.spec.export_to
    return (not export or "*" in export or namespace in export
            or ("." in export and (rule.metadata.namespace or "") == namespace))


def rule_for(rules: Iterable[istio.DestinationRule], host: str, gateway_namespace: str
             ) -> istio.DestinationRule | None:
    """Istio's choice: a rule in the gateway's namespace first, then one in the destination's
    own namespace, then any other exported to the gateway; within each, the most specific
    host, then the oldest rule."""
    service_namespace = host.split(".")[1] if host.count(".") >= 2 else ""
    best: tuple[tuple[int, int, str, str, str], istio.DestinationRule] | None = None
    for rule in rules:
        namespace = rule.metadata.namespace or "default"
        pattern = qualify(rule.spec.host, namespace)
        if rule.spec.workload_selector or not hosts.matches(pattern, host):
            continue
        if not _visible(rule, gateway_namespace):
            continue
        scope = 0 if namespace == gateway_namespace else 1 if namespace == service_namespace else 2
        rank = (scope, 0 if pattern == host else 1, rule.metadata.creation_timestamp or "",
                namespace, rule.metadata.name)
        if best is None or rank < best[0]:
            best = (rank, rule)
    return best[1] if best is not None else None


@dataclass(frozen=True)
class _Sections:
    load_balancer: istio.LoadBalancerSettings | None
    connection_pool: istio.ConnectionPoolSettings | None
    outlier_detection: istio.OutlierDetection | None
    tls: istio.ClientTLSSettings | None


def _layers(policy: istio.TrafficPolicy | None, port: int) -> list[Any]:
    """A traffic policy's sections for `port`, the port-level settings' first."""
    if policy is None:
        return []
    level = next((p for p in policy.port_level_settings
                  if p.port is not None and p.port.number == port), None)
    return [level, policy] if level is not None else [policy]


def _section(rule: istio.DestinationRule, port: int, subset: str = "") -> _Sections:
    """The rule's policy for `port` (and `subset`): each section from the most specific place
    that sets it: the subset's port-level settings, the subset's policy, the rule's port-level
    settings, the rule's policy."""
    chosen = next((s for s in rule.spec.subsets if s.name == subset), None) if subset else None
    layers = (_layers(chosen.traffic_policy, port) if chosen else []) + _layers(
        rule.spec.traffic_policy, port)

    def pick(name: str) -> Any:
        return next((getattr(layer, name) for layer in layers
                     if getattr(layer, name) is not None), None)

    return _Sections(pick("load_balancer"), pick("connection_pool"),
                     pick("outlier_detection"), pick("tls"))


def subset_labels(rule: istio.DestinationRule, subset: str) -> dict[str, str] | None:
    """The labels a subset selects, or None when the rule has no such subset."""
    chosen = next((s for s in rule.spec.subsets if s.name == subset), None)
    return dict(chosen.labels) if chosen is not None else None


def policy(rule: istio.DestinationRule, port: int, subset: str = ""
           ) -> tuple[BackendPolicy, istio.ClientTLSSettings | None]:
    """The backend policy, and the TLS settings whose credentials the caller resolves."""
    section = _section(rule, port, subset)
    ref = ObjectRef("DestinationRule", rule.metadata.namespace or "", rule.metadata.name)
    balance, hash_key = Balance.ROUND_ROBIN, None
    lb = section.load_balancer
    if lb is not None and lb.consistent_hash is not None:
        ch = lb.consistent_hash
        cookie = ch.http_cookie
        balance = Balance.HASH
        hash_key = HashKey(header=ch.http_header_name, cookie=cookie.name if cookie else None,
                           cookie_path=cookie.path if cookie else None,
                           cookie_ttl_ms=_ms(cookie.ttl) if cookie else None,
                           query=ch.http_query_parameter_name,
                           source_ip=bool(ch.use_source_ip))
    elif lb is not None and lb.simple:
        balance = SIMPLE.get(lb.simple, Balance.ROUND_ROBIN)
    limits = None
    pool = section.connection_pool
    if pool is not None:
        tcp, http = pool.tcp, pool.http
        limits = ConnectionLimits(
            max_connections=tcp.max_connections if tcp else None,
            connect_timeout_ms=_ms(tcp.connect_timeout) if tcp else None,
            max_pending_requests=http.http1_max_pending_requests if http else None,
            max_requests=http.http2_max_requests if http else None,
            max_requests_per_connection=http.max_requests_per_connection if http else None,
            max_retries=http.max_retries if http else None,
            idle_timeout_ms=_ms(http.idle_timeout) if http else None)
    ejection = None
    outlier = section.outlier_detection
    if outlier is not None:
        ejection = Ejection(
            consecutive_5xx=outlier.consecutive_5xx_errors if outlier.consecutive_5xx_errors
            is not None else outlier.consecutive_errors,
            consecutive_gateway_errors=outlier.consecutive_gateway_errors,
            interval_ms=_ms(outlier.interval), base_ejection_ms=_ms(outlier.base_ejection_time),
            max_ejection_percent=outlier.max_ejection_percent,
            min_health_percent=outlier.min_health_percent)
    tls = section.tls if section.tls is not None and section.tls.mode in (
        "SIMPLE", "MUTUAL") else None
    return BackendPolicy(balance=balance, hash_key=hash_key, limits=limits, ejection=ejection,
                         source=ref), tls


def upstream_tls(tls: istio.ClientTLSSettings, certificate: str | None, ca: str | None
                 ) -> UpstreamTls:
    return UpstreamTls(certificate=certificate, ca=ca, sni=tls.sni,
                       subject_alt_names=tuple(tls.subject_alt_names),
                       skip_verify=bool(tls.insecure_skip_verify))
