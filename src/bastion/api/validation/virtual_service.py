"""Istio's admission rules for VirtualServices: hosts, gateway names, and every HTTP, TLS and TCP
rule, with Istio's verdicts. Where bastion is stricter than Istio (because Envoy would refuse
the result), the rule says so."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator, Sequence
from http import HTTPStatus
from typing import Any

from bastion.api.base import dump
from bastion.api.istio import (
    CorsPolicy,
    Destination,
    Headers,
    HTTPFaultInjection,
    HTTPMatchRequest,
    HTTPRoute,
    HTTPRouteDestination,
    L4MatchAttributes,
    Percent,
    RouteDestination,
    StringMatch,
    TLSMatchAttributes,
    VirtualService,
)
from bastion.api.validation.names import (
    fqdn_problem,
    ip_subnet_problem,
    is_dns_label,
    is_ip,
    wildcard_host_problem,
)
from bastion.api.validation.problem import Problem, warn
from bastion.api.validation.values import (
    duration_ns,
    duration_problem,
    header_name_problem,
    header_operation_problem,
    header_value_problem,
    is_authority,
    port_problem,
    regex_problem,
)

MESH = "mesh"
KB, MB = 1024, 1024 * 1024
# Envoy's redirect codes (Istio accepts any 3xx; Envoy has no other).
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
RETRY_POLICIES = frozenset({
    "5xx", "gateway-error", "reset", "reset-before-request", "connect-failure", "retriable-4xx",
    "refused-stream", "retriable-status-codes", "retriable-headers", "envoy-ratelimited",
    "http3-post-connect-failure", "cancelled", "deadline-exceeded", "internal",
    "resource-exhausted", "unavailable",
})
OUTBOUND_SNI = "outbound"
CORS_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS",
                          "TRACE", "*"})
# gRPC status names, by code (the order of grpc's status codes).
GRPC_STATUS = ("OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
               "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
               "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
               "UNAUTHENTICATED")
CONTROL = re.compile(r"[\x00\r\n]")


def virtual_service_problems(vs: VirtualService) -> Iterator[Problem]:
    spec = vs.spec
    yield from _control_characters(dump(spec, by_alias=True, exclude_none=True), "spec")
    if not spec.hosts:
        for field, value in (("gateways", spec.gateways), ("tls", spec.tls), ("tcp", spec.tcp)):
            if value:
                yield Problem(f"spec.{field}",
                              f"a delegate VirtualService (no hosts) cannot have {field}")
    yield from gateway_name_problems("spec.gateways", spec.gateways)
    to_gateway = bool(spec.gateways) and MESH not in spec.gateways
    sni = any(m.sni_hosts for route in spec.tls for m in route.match)
    hosts_valid = True
    for i, host in enumerate(spec.hosts):
        reason = _vs_host_problem(host, to_gateway, sni)
        if reason and not is_ip(host):
            hosts_valid = False
            yield Problem(f"spec.hosts[{i}]", reason)
        elif not reason and not to_gateway and host == "*":
            hosts_valid = False
            yield Problem(f"spec.hosts[{i}]", "host * is not allowed for the mesh gateway")
    if hosts_valid:
        for i, first in enumerate(spec.hosts):
            for j in range(i + 1, len(spec.hosts)):
                if hosts_overlap(first, spec.hosts[j]):
                    yield Problem(f"spec.hosts[{j}]",
                                  f"duplicate hosts: {first} and {spec.hosts[j]} overlap")
    if not (spec.http or spec.tls or spec.tcp):
        yield Problem("spec", "one of http, tls or tcp is required")
    for i, rule in enumerate(spec.http):
        yield from _http_route_problems(f"spec.http[{i}]", rule, delegate=not spec.hosts)
    for i, tls in enumerate(spec.tls):
        at = f"spec.tls[{i}]"
        if not tls.match:
            yield Problem(f"{at}.match", "a TLS route needs at least one match")
        for j, tls_match in enumerate(tls.match):
            yield from _tls_match_problems(f"{at}.match[{j}]", tls_match, vs, to_gateway)
        if not tls.route:
            yield Problem(f"{at}.route", "required")
        yield from _destinations_problems(f"{at}.route", tls.route)
    for i, tcp in enumerate(spec.tcp):
        at = f"spec.tcp[{i}]"
        for j, l4 in enumerate(tcp.match):
            yield from _l4_match_problems(f"{at}.match[{j}]", l4)
        if not tcp.route:
            yield Problem(f"{at}.route", "required")
        yield from _destinations_problems(f"{at}.route", tcp.route)
    yield from export_to_problems("spec.exportTo", spec.export_to)
    for section, rules in (("http", spec.http), ("tls", spec.tls), ("tcp", spec.tcp)):
        yield from _unreachable(section, rules)


def _control_characters(value: Any, at: str) -> Iterator[Problem]:
    """Stricter than Istio: paths, header values, redirects and hosts never carry CR, LF or NUL
    (Envoy refuses them, and they would split headers)."""
    if isinstance(value, str):
        if CONTROL.search(value):
            yield Problem(at, "must not contain CR, LF or NUL characters")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _control_characters(key, at)
            yield from _control_characters(item, f"{at}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _control_characters(item, f"{at}[{i}]")


def _vs_host_problem(host: str, to_gateway: bool, sni: bool) -> str | None:
    if to_gateway and sni and host.startswith(OUTBOUND_SNI + "_"):
        return _outbound_sni_problem(host)
    return wildcard_host_problem(host)


def _outbound_sni_problem(host: str) -> str | None:
    """Istio's own SNI names for AUTO_PASSTHROUGH, `outbound_.<port>_._.<host>`."""
    parts = host.split("_")
    if len(parts) < 4:
        return f"{host!r} does not follow outbound_.<port>_._.<host>"
    port, name = parts[1].strip("."), parts[3].strip(".")
    if not any(c.isdigit() for c in port) or not any(c.isalpha() for c in name):
        return f"{host!r} does not follow outbound_.<port>_._.<host>"
    return None


def hosts_overlap(a: str, b: str) -> bool:
    """Istio's host matching: a wildcard covers the names it is a suffix of."""
    wild_a, wild_b = a.startswith("*"), b.startswith("*")
    if wild_a and wild_b:
        short, long = (a, b) if len(a) < len(b) else (b, a)
        return long[1:].endswith(short[1:])
    if wild_a:
        return b.endswith(a[1:])
    if wild_b:
        return a.endswith(b[1:])
    return a == b


def host_subset(a: str, b: str) -> bool:
    """Whether every name `a` matches is matched by `b`."""
    if a.startswith("*"):
        return b.startswith("*") and a[1:].endswith(b[1:])
    if b.startswith("*"):
        return a.endswith(b[1:])
    return a == b


def gateway_name_problems(at: str, names: Sequence[str]) -> Iterator[Problem]:
    for i, name in enumerate(names):
        where = f"{at}[{i}]"
        if "/" not in name:
            if "." in name:
                local, _, namespace = name.partition(".")
                yield warn(where, f"legacy gateway name {name!r}; prefer namespace/name: "
                                  f"{namespace.split('.')[0]}/{local}")
            reason = fqdn_problem(name)
            if reason:
                yield Problem(where, f"invalid gateway name: {reason}")
            continue
        namespace, _, gateway = name.partition("/")
        if not namespace or not gateway:
            yield Problem(where, "the namespace and the name of a gateway cannot be empty")
        if not is_dns_label(namespace):
            yield Problem(where, f"invalid namespace {namespace!r}")
        if not is_dns_label(gateway):
            yield Problem(where, f"invalid gateway name {gateway!r}")


def export_to_problems(at: str, values: Sequence[str]) -> Iterator[Problem]:
    seen: set[str] = set()
    for i, value in enumerate(values):
        if value not in (".", "*") and not is_dns_label(value):
            yield Problem(f"{at}[{i}]", f"invalid namespace {value!r}")
        if value in seen:
            yield Problem(f"{at}[{i}]", f"duplicate entry {value!r}")
        seen.add(value)
    if "*" in seen and len(seen) > 1:
        yield Problem(at, "'*' cannot be combined with other namespaces")


# -- HTTP -------------------------------------------------------------------------------------

def _http_route_problems(at: str, rule: HTTPRoute, delegate: bool) -> Iterator[Problem]:
    yield from _conflicts(at, rule, delegate)
    for j, match in enumerate(rule.match):
        yield from _http_match_problems(f"{at}.match[{j}]", match)
    yield from _headers_problems(f"{at}.headers", rule.headers)
    if rule.mirror_percent is not None:
        if rule.mirror_percent > 100:
            yield Problem(f"{at}.mirrorPercent", "at most 100")
        yield warn(f"{at}.mirrorPercent", "deprecated; use mirrorPercentage")
    if rule.mirror_percentage is not None and not 0 <= rule.mirror_percentage.value <= 100:
        yield Problem(f"{at}.mirrorPercentage", "must be between 0 and 100")
    if rule.mirror is not None:
        yield from destination_problems(f"{at}.mirror", rule.mirror)
    for k, mirror in enumerate(rule.mirrors):
        yield from destination_problems(f"{at}.mirrors[{k}].destination", mirror.destination)
        if mirror.percentage is not None and not 0 <= mirror.percentage.value <= 100:
            yield Problem(f"{at}.mirrors[{k}].percentage", "must be between 0 and 100")
    if rule.fault is not None:
        yield from _fault_problems(f"{at}.fault", rule.fault)
    if rule.cors_policy is not None:
        yield from _cors_problems(f"{at}.corsPolicy", rule.cors_policy)
    if rule.redirect is not None:
        yield from _redirect_problems(f"{at}.redirect", rule)
    if rule.direct_response is not None:
        yield from _direct_response_problems(f"{at}.directResponse", rule)
    if rule.retries is not None:
        yield from _retry_problems(f"{at}.retries", rule)
    if rule.rewrite is not None:
        yield from _rewrite_problems(f"{at}.rewrite", rule)
    yield from _destinations_problems(f"{at}.route", rule.route)
    if rule.timeout is not None:
        reason = duration_problem(rule.timeout)
        if reason:
            yield Problem(f"{at}.timeout", reason)


def _percentage_problem(percentage: Percent | None) -> str | None:
    """Istio takes 0, or 0.0001 to 100."""
    if percentage is None:
        return None
    value = percentage.value
    if value < 0 or value > 100 or 0 < value < 0.0001:
        return f"percentage {value} is neither 0 nor between 0.0001 and 100"
    return None


def _fault_problems(at: str, fault: HTTPFaultInjection) -> Iterator[Problem]:
    if fault.abort is None and fault.delay is None:
        yield Problem(at, "a fault needs an abort, a delay or both")
    abort = fault.abort
    if abort is not None:
        reason = _percentage_problem(abort.percentage)
        if reason:
            yield Problem(f"{at}.abort.percentage", reason)
        if abort.http2_error is not None:
            yield Problem(f"{at}.abort.http2Error", "HTTP/2 error aborts are not supported")
        elif abort.grpc_status is not None:
            if abort.grpc_status not in GRPC_STATUS:
                yield Problem(f"{at}.abort.grpcStatus",
                              f"{abort.grpc_status!r} is not a gRPC status (for example "
                              "NOT_FOUND)")
        elif abort.http_status is not None:
            if not 200 <= abort.http_status <= 600:
                yield Problem(f"{at}.abort.httpStatus",
                              f"HTTP status {abort.http_status} is not in range 200-599")
        else:
            yield warn(f"{at}.abort", "an abort without httpStatus or grpcStatus does nothing")
    delay = fault.delay
    if delay is not None:
        reason = _percentage_problem(delay.percentage)
        if reason:
            yield Problem(f"{at}.delay.percentage", reason)
        if delay.exponential_delay is not None:
            yield Problem(f"{at}.delay.exponentialDelay", "exponential delays are not supported")
        if delay.fixed_delay is not None:
            reason = duration_problem(delay.fixed_delay)
            if reason:
                yield Problem(f"{at}.delay.fixedDelay", reason)


def _cors_problems(at: str, cors: CorsPolicy) -> Iterator[Problem]:
    for k, origin in enumerate(cors.allow_origins):
        value = origin.exact if origin.exact is not None else (
            origin.prefix if origin.prefix is not None else origin.regex)
        if not value:
            yield Problem(f"{at}.allowOrigins[{k}]", "an origin match cannot be empty")
        elif origin.regex is not None:
            reason = regex_problem(origin.regex)
            if reason:
                yield Problem(f"{at}.allowOrigins[{k}].regex", reason)
    for k, method in enumerate(cors.allow_methods):
        if method not in CORS_METHODS:
            yield Problem(f"{at}.allowMethods[{k}]", f"{method!r} is not an HTTP method")
    for field, names in (("allowHeaders", cors.allow_headers),
                         ("exposeHeaders", cors.expose_headers)):
        for k, name in enumerate(names):
            if name != "*" and header_name_problem(name):
                yield Problem(f"{at}.{field}[{k}]", f"{name!r} is not a valid header name")
    if cors.max_age is not None:
        reason = duration_problem(cors.max_age)
        ns = duration_ns(cors.max_age)
        if reason:
            yield Problem(f"{at}.maxAge", reason)
        elif ns is not None and ns % 1_000_000_000:
            yield Problem(f"{at}.maxAge", "only whole seconds are supported")
    if cors.allow_origin:
        yield warn(f"{at}.allowOrigin", "deprecated; use allowOrigins")


def _conflicts(at: str, rule: HTTPRoute, delegate: bool) -> Iterator[Problem]:
    present = {"route": bool(rule.route), "redirect": rule.redirect is not None,
               "fault": rule.fault is not None, "rewrite": rule.rewrite is not None,
               "directResponse": rule.direct_response is not None}
    if rule.delegate is not None and not delegate:
        for field in ("redirect", "route"):
            if present[field]:
                yield Problem(f"{at}.{field}", "a rule with a delegate cannot have " + field)
        return
    if delegate and rule.delegate is not None:
        yield Problem(f"{at}.delegate", "a delegate VirtualService cannot delegate again")
    if rule.redirect is not None:
        for field in ("route", "fault", "rewrite", "directResponse"):
            if present[field]:
                yield Problem(f"{at}.{field}", "cannot be combined with redirect")
    elif rule.direct_response is not None:
        for field in ("route", "fault", "rewrite"):
            if present[field]:
                yield Problem(f"{at}.{field}", "cannot be combined with directResponse")
    elif not rule.route and rule.delegate is None:
        yield Problem(at, "one of route, redirect or directResponse is required")
    if rule.mirror is not None and rule.mirrors:
        yield Problem(f"{at}.mirrors", "cannot be combined with mirror")


def _http_match_problems(at: str, match: HTTPMatchRequest) -> Iterator[Problem]:
    for kind, headers in (("headers", match.headers), ("withoutHeaders", match.without_headers)):
        for name, value in headers.items():
            if not name.startswith("@request.auth.claims"):
                reason = header_name_problem(name, allow_pseudo=True)
                if reason:
                    yield Problem(f"{at}.{kind}", reason)
            if kind == "withoutHeaders" and value.regex == "*":
                continue  # `*` means "present", not a regex
            yield from _string_match_problems(f"{at}.{kind}.{name}", value)
    if match.uri is not None and match.uri.regex is not None:
        # A URI may have an empty prefix; its regex is checked.
        yield from _string_match_problems(f"{at}.uri", match.uri)
    for field in ("scheme", "method", "authority"):
        value = getattr(match, field)
        if value is not None:
            yield from _string_match_problems(f"{at}.{field}", value)
    for name, value in match.query_params.items():
        yield from _string_match_problems(f"{at}.queryParams.{name}", value)
    if match.port:
        reason = port_problem(match.port)
        if reason:
            yield Problem(f"{at}.port", reason)
    yield from gateway_name_problems(f"{at}.gateways", match.gateways)
    if match.source_namespace and not is_dns_label(match.source_namespace):
        yield Problem(f"{at}.sourceNamespace", f"invalid namespace {match.source_namespace!r}")


def _string_match_problems(at: str, match: StringMatch) -> Iterator[Problem]:
    if match.prefix is not None and match.prefix == "":
        yield Problem(f"{at}.prefix", "a prefix match cannot be empty")
    if match.regex is not None:
        reason = regex_problem(match.regex)
        if reason:
            yield Problem(f"{at}.regex", reason)


def _headers_problems(at: str, headers: Headers | None) -> Iterator[Problem]:
    if headers is None:
        return
    for direction, ops in (("request", headers.request), ("response", headers.response)):
        if ops is None:
            continue
        authority = direction == "request"
        for kind in ("set", "add"):
            for name, value in getattr(ops, kind).items():
                reason = header_operation_problem(name, allow_authority=authority)
                if reason:
                    yield Problem(f"{at}.{direction}.{kind}", reason)
                elif not operable(name):
                    yield _dropped(f"{at}.{direction}.{kind}", name)
                reason = header_value_problem(value)
                if reason:
                    yield Problem(f"{at}.{direction}.{kind}.{name}", reason)
        for name in ops.remove:
            reason = header_operation_problem(name, allow_authority=False)
            if reason:
                yield Problem(f"{at}.{direction}.remove", reason)
            elif not operable(name):
                yield _dropped(f"{at}.{direction}.remove", name)


def operable(name: str) -> bool:
    """Whether Envoy takes a header operation on `name`: an HTTP token (or the authority)."""
    return is_authority(name) or header_name_problem(name) is None


def _dropped(at: str, name: str) -> Problem:
    """Stricter than Istio, which accepts the name and lets Envoy refuse the whole route
    table: the operation is left out, with a warning."""
    return warn(at, f"{name!r} is not a valid header name; this operation is left out")


def redirect_served(rule: HTTPRoute) -> bool:
    """Whether Envoy has the rule's redirect code (Istio accepts any 3xx and then leaves a rule
    with another one out of the route table; so does bastion, with a warning)."""
    code = rule.redirect.redirect_code if rule.redirect is not None else None
    return not code or code in REDIRECT_CODES


def _redirect_problems(at: str, rule: HTTPRoute) -> Iterator[Problem]:
    redirect = rule.redirect
    assert redirect is not None
    if redirect.uri and redirect.prefix_rewrite:
        yield Problem(at, "only one of uri and prefixRewrite may be set")
    if redirect.prefix_rewrite:
        for j, match in enumerate(rule.match):
            if match.uri is not None and match.uri.prefix is None:
                yield Problem(f"{at}.prefixRewrite",
                              f"needs every uri match to be a prefix match (match[{j}] is not)")
                break
    if not (redirect.uri or redirect.prefix_rewrite or redirect.authority or redirect.port
            or redirect.derive_port or redirect.scheme):
        yield Problem(at, "a redirect must set uri, prefixRewrite, authority, scheme or port")
    code = redirect.redirect_code
    if code:
        if not 300 <= code <= 399:
            yield Problem(f"{at}.redirectCode", f"{code} is not a redirect code (3xx)")
        elif not redirect_served(rule):
            yield warn(f"{at}.redirectCode",
                       f"{code} is not a redirect code Envoy has (301, 302, 303, 307, 308); "
                       "the rule is left out, as Istio does")
    if redirect.scheme and redirect.scheme not in ("http", "https"):
        yield Problem(f"{at}.scheme", "must be http or https")
    if redirect.port:
        reason = port_problem(redirect.port)
        if reason:
            yield Problem(f"{at}.port", reason)


def direct_response_bytes(rule: HTTPRoute) -> bytes | None:
    """The body of a direct response, decoded (None: no body or bytes that are not base64)."""
    response = rule.direct_response
    body = response.body if response else None
    if body is None:
        return b""
    if body.bytes is not None:
        try:
            return base64.b64decode(body.bytes, validate=True)
        except (binascii.Error, ValueError):
            return None
    return (body.string or "").encode()


def _direct_response_problems(at: str, rule: HTTPRoute) -> Iterator[Problem]:
    body = direct_response_bytes(rule)
    if body is None:
        yield Problem(f"{at}.body.bytes", "not valid base64")
    elif len(body) > MB:
        yield Problem(f"{at}.body", "at most 1 MB")
    elif len(body) > 100 * KB:
        yield warn(f"{at}.body", "direct responses over 100 KB slow down every route push")


def _retry_problems(at: str, rule: HTTPRoute) -> Iterator[Problem]:
    retries = rule.retries
    assert retries is not None
    if retries.attempts == 0 and (retries.per_try_timeout or retries.retry_on
                                  or retries.retry_remote_localities is not None):
        yield Problem(f"{at}.attempts",
                      "retry settings are given but attempts is 0 (retries disabled)")
    for field, value in (("perTryTimeout", retries.per_try_timeout),
                         ("backoff", retries.backoff)):
        if value is not None:
            reason = duration_problem(value)
            if reason:
                yield Problem(f"{at}.{field}", reason)
    for policy in (retries.retry_on or "").split(",") if retries.retry_on else ():
        if policy.isdigit() and int(policy) in HTTPStatus._value2member_map_:
            continue
        if policy not in RETRY_POLICIES:
            yield Problem(f"{at}.retryOn", f"{policy!r} is not a retryOn policy or status code")


def _rewrite_problems(at: str, rule: HTTPRoute) -> Iterator[Problem]:
    rewrite = rule.rewrite
    assert rewrite is not None
    regex = rewrite.uri_regex_rewrite
    if rewrite.uri and regex is not None:
        yield Problem(at, "only one of uri and uriRegexRewrite may be set")
    if not (rewrite.uri or regex is not None or rewrite.authority):
        yield Problem(at, "a rewrite must set uri, uriRegexRewrite or authority")
    if regex is not None:
        if not regex.match or not regex.rewrite:
            yield Problem(f"{at}.uriRegexRewrite", "needs both match and rewrite")
        else:
            reason = regex_problem(regex.match)
            if reason:
                yield Problem(f"{at}.uriRegexRewrite.match", reason)
    if rewrite.authority:
        request = rule.headers.request if rule.headers else None
        for kind in ("set", "add"):
            if request is not None and any(is_authority(n) for n in getattr(request, kind)):
                yield Problem(f"{at}.authority",
                              f"the authority is also set by headers.request.{kind}")


def _destinations_problems(
        at: str, routes: Sequence[HTTPRouteDestination | RouteDestination]) -> Iterator[Problem]:
    total = 0
    for k, dest in enumerate(routes):
        yield from destination_problems(f"{at}[{k}].destination", dest.destination)
        if isinstance(dest, HTTPRouteDestination):
            yield from _headers_problems(f"{at}[{k}].headers", dest.headers)
        total += dest.weight or 0
    if len(routes) > 1 and total == 0:
        yield Problem(at, "the weights of several destinations cannot all be 0")


def destination_problems(at: str, destination: Destination) -> Iterator[Problem]:
    host = destination.host
    reason = "invalid destination host '*'" if host == "*" else wildcard_host_problem(host)
    if reason:
        yield Problem(f"{at}.host", reason)
    if destination.subset is not None and not is_dns_label(destination.subset):
        yield Problem(f"{at}.subset", f"invalid subset name {destination.subset!r}")


# -- TLS and TCP ------------------------------------------------------------------------------

def _tls_match_problems(at: str, match: TLSMatchAttributes, vs: VirtualService,
                        to_gateway: bool) -> Iterator[Problem]:
    if not match.sni_hosts:
        yield Problem(f"{at}.sniHosts", "a TLS match needs at least one SNI host")
    for k, sni in enumerate(match.sni_hosts):
        where = f"{at}.sniHosts[{k}]"
        reason = _vs_host_problem(sni, to_gateway, True)
        if reason:
            if is_ip(sni):
                yield warn(where, f"an IP address ({sni}) as SNI: most clients never send one")
            else:
                yield Problem(where, reason)
            continue
        if not any(host_subset(sni, host) for host in vs.spec.hosts):
            yield Problem(where, f"SNI host {sni!r} is not covered by the VirtualService's "
                                 f"hosts ({', '.join(vs.spec.hosts)})")
    yield from _l4_match_problems(at, match)


def _l4_match_problems(at: str, match: L4MatchAttributes) -> Iterator[Problem]:
    port, source_namespace = match.port, match.source_namespace
    for k, subnet in enumerate(match.destination_subnets):
        reason = ip_subnet_problem(subnet)
        if reason:
            yield Problem(f"{at}.destinationSubnets[{k}]", reason)
    if port:
        reason = port_problem(port)
        if reason:
            yield Problem(f"{at}.port", reason)
    yield from gateway_name_problems(f"{at}.gateways", match.gateways)
    if source_namespace and not is_dns_label(source_namespace):
        yield Problem(f"{at}.sourceNamespace", f"invalid namespace {source_namespace!r}")


# -- rules that can never match ---------------------------------------------------------------

def _match_key(match: Any) -> str:
    data = dump(match, exclude_none=True, exclude_defaults=True)
    data.pop("name", None)
    return json.dumps(data, sort_keys=True)


def _unreachable(section: str, rules: Sequence[Any]) -> Iterator[Problem]:
    """Istio's warnings for rules behind a catch-all and matches an earlier rule already has."""
    seen: dict[str, int] = {}
    catch_all = -1
    for n, rule in enumerate(rules):
        at = f"spec.{section}[{n}]"
        if not rule.match:
            if catch_all >= 0:
                yield warn(at, f"never used: spec.{section}[{catch_all}] has no match either "
                               "(only the last rule can have no matches)")
            catch_all = n
            continue
        if catch_all >= 0:
            yield warn(at, f"never used: spec.{section}[{catch_all}] before it matches "
                           "everything")
            continue
        duplicates = 0
        for m, match in enumerate(rule.match):
            key = _match_key(match)
            if key in seen:
                duplicates += 1
                yield warn(f"{at}.match[{m}]",
                           f"never used: spec.{section}[{seen[key]}] has the same match")
            else:
                seen[key] = n
        if duplicates == len(rule.match) and duplicates > 1:
            yield warn(at, "never used: every match is used by earlier rules")
