"""Istio's semantic rules for Gateways and VirtualServices, beyond what the schema checks.

Each rule mirrors one of Istio's own admission checks, so YAML that istiod refuses is refused here
with the field named, and YAML it accepts is accepted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from bastion.api.istio import (
    Gateway,
    HTTPMatchRequest,
    ServiceEntry,
    StringMatch,
    TLSMode,
    VirtualService,
)

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
HOST_LABEL = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_]*[A-Za-z0-9])?$")

PROTOCOLS = {
    "HTTP", "HTTPS", "GRPC", "GRPC-WEB", "HTTP2", "MONGO", "TCP", "TLS", "HTTP_PROXY", "REDIS",
    "MYSQL", "UDP",
}
TLS_PROTOCOLS = {"HTTPS", "TLS"}
# RE2, which Envoy uses, refuses these Python-only constructs; Envoy would NACK the route.
RE2_UNSUPPORTED = re.compile(r"\(\?[=!]|\(\?<[=!]|\\[1-9]|\(\?P=|\(\?\(")

Problem = tuple[str, str]  # (field path, message)


def check_host(host: str, allow_namespace: bool) -> str | None:
    """Return why `host` is not a valid Istio host, or None."""
    if allow_namespace and "/" in host:
        namespace, _, host = host.partition("/")
        if namespace not in ("*", ".") and not DNS_LABEL.match(namespace):
            return f"invalid namespace {namespace!r} in host"
    if host == "*":
        return None
    name = host[2:] if host.startswith("*.") else host
    if not name or len(name) > 255:
        return f"invalid host {host!r}"
    for label in name.split("."):
        if not HOST_LABEL.match(label) or len(label) > 63:
            return f"invalid host {host!r}: wildcard only allowed as the left-most label"
    return None


def gateway_problems(gateway: Gateway) -> Iterator[Problem]:
    if not DNS_LABEL.match(gateway.metadata.name):
        yield "metadata.name", "must be a DNS-1123 label (lower-case letters, digits, '-')"
    port_names: dict[str, int] = {}
    for i, server in enumerate(gateway.spec.servers):
        at = f"spec.servers[{i}]"
        protocol = server.port.protocol.upper()
        if protocol not in PROTOCOLS:
            yield f"{at}.port.protocol", f"unsupported protocol {server.port.protocol!r}"
        if not server.port.name:
            yield f"{at}.port.name", "required"
        elif server.port.name in port_names:
            first = port_names[server.port.name]
            yield f"{at}.port.name", (
                f"port names in servers must be unique: {server.port.name!r} is already used "
                f"by spec.servers[{first}]"
            )
        else:
            port_names[server.port.name] = i
        if server.port.target_port is not None:
            yield f"{at}.port.targetPort", "targetPort has no effect on Gateways"
        if server.port.number == 0 and not (server.bind or "").startswith("unix://"):
            yield f"{at}.port.number", "must be between 1 and 65535"
        for j, host in enumerate(server.hosts):
            reason = check_host(host, allow_namespace=True)
            if reason:
                yield f"{at}.hosts[{j}]", reason
        yield from _server_tls_problems(at, protocol, server.tls)


def _server_tls_problems(at: str, protocol: str, tls) -> Iterator[Problem]:  # type: ignore[no-untyped-def]
    if protocol in TLS_PROTOCOLS and tls is None:
        yield f"{at}.tls", f"required for protocol {protocol}"
        return
    if tls is None:
        return
    if protocol not in TLS_PROTOCOLS and protocol != "HTTP":
        yield f"{at}.tls", f"not allowed for protocol {protocol}"
        return
    if protocol == "HTTP" and (tls.credential_name or tls.mode != TLSMode.PASSTHROUGH):
        yield f"{at}.tls", "only httpsRedirect may be set on an HTTP server"
    sources = [
        bool(tls.credential_name),
        bool(tls.credential_names),
        bool(tls.server_certificate or tls.private_key),
        bool(tls.tls_certificates),
    ]
    if sum(sources) > 1:
        yield f"{at}.tls", (
            "only one of credentialName, credentialNames, serverCertificate/privateKey and "
            "tlsCertificates may be set"
        )
    if len(tls.credential_names) > 2:
        yield f"{at}.tls.credentialNames", "at most 2 credentials may be given"
    if tls.mode == TLSMode.ISTIO_MUTUAL and any(sources):
        yield f"{at}.tls.mode", "ISTIO_MUTUAL does not take certificates or credentials"
    if tls.ca_crl and (tls.credential_name or tls.credential_names):
        yield f"{at}.tls.caCrl", "with credentialName, the CRL must be inside the credential"
    if tls.ca_crl and tls.mode == TLSMode.SIMPLE:
        yield f"{at}.tls.caCrl", "a CRL has no use in SIMPLE mode"
    if tls.mode in (TLSMode.SIMPLE, TLSMode.MUTUAL, TLSMode.OPTIONAL_MUTUAL) and not any(sources):
        yield f"{at}.tls", f"mode {tls.mode} requires credentialName"


def _string_match_problems(at: str, match: StringMatch | None) -> Iterator[Problem]:
    if match is None or match.regex is None:
        return
    if RE2_UNSUPPORTED.search(match.regex):
        yield f"{at}.regex", "look-around and back-references are not supported by RE2"
        return
    try:
        re.compile(match.regex)
    except re.error as exc:
        yield f"{at}.regex", f"invalid regular expression: {exc}"


def _match_problems(at: str, match: HTTPMatchRequest) -> Iterator[Problem]:
    for name in ("uri", "scheme", "method", "authority"):
        yield from _string_match_problems(f"{at}.{name}", getattr(match, name))
    for header, value in match.headers.items():
        if header != header.lower():
            yield f"{at}.headers", f"header name {header!r} must be lower-case"
        yield from _string_match_problems(f"{at}.headers.{header}", value)


def virtual_service_problems(vs: VirtualService) -> Iterator[Problem]:
    for i, host in enumerate(vs.spec.hosts):
        reason = check_host(host, allow_namespace=False)
        if reason:
            yield f"spec.hosts[{i}]", reason
    for i, gateway in enumerate(vs.spec.gateways):
        if not gateway:
            yield f"spec.gateways[{i}]", "must not be empty"
    for i, rule in enumerate(vs.spec.http):
        at = f"spec.http[{i}]"
        for j, match in enumerate(rule.match):
            yield from _match_problems(f"{at}.match[{j}]", match)
        if len(rule.route) > 1:
            total = sum(d.weight or 0 for d in rule.route)
            if total == 0:
                yield f"{at}.route", "weights of several destinations must not all be zero"
        if rule.redirect and rule.redirect.redirect_code is not None:
            code = rule.redirect.redirect_code
            if code not in (301, 302, 303, 307, 308):
                yield f"{at}.redirect.redirectCode", f"unsupported redirect code {code}"


def service_entry_problems(se: ServiceEntry) -> Iterator[Problem]:
    for i, host in enumerate(se.spec.hosts):
        reason = check_host(host, allow_namespace=False)
        if reason:
            yield f"spec.hosts[{i}]", reason
    if se.spec.resolution not in ("NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN"):
        yield "spec.resolution", f"unsupported resolution {se.spec.resolution!r}"
    for i, endpoint in enumerate(se.spec.endpoints):
        if not endpoint.address:
            yield f"spec.endpoints[{i}].address", "required"
