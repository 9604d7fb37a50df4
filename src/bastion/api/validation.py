"""Istio's semantic rules for Gateways and VirtualServices, beyond what the schema checks.

Each rule mirrors one of Istio's own admission checks, so YAML that istiod refuses is refused here
with the field named, and YAML it accepts is accepted.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from typing import Any

import re2

from bastion.api.base import dump
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
# Envoy compiles route regexes with RE2 and refuses programs larger than its runtime limit;
# bastion's bootstrap raises that limit to this value (as Istio's does), and admission checks it.
RE2_MAX_PROGRAM_SIZE = 32768
# Envoy's default cap on a direct response body.
MAX_DIRECT_RESPONSE_BODY = 4096
# Headers a route may not set, add or remove (Envoy refuses them).
PROTECTED_HEADERS = ("host",)
HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9a-zA-Z]+$")
CONTROL = re.compile(r"[\x00\r\n]")

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


def regex_problem(pattern: str) -> str | None:
    """Why Envoy's RE2 would refuse `pattern`, or None."""
    options = re2.Options()
    options.log_errors = False
    try:
        compiled = re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        return f"invalid RE2 regular expression: {reason}"
    if compiled.programsize > RE2_MAX_PROGRAM_SIZE:
        return (f"regular expression too large for RE2 (program size {compiled.programsize} > "
                f"{RE2_MAX_PROGRAM_SIZE})")
    return None


def _string_match_problems(at: str, match: StringMatch | None) -> Iterator[Problem]:
    if match is None or match.regex is None:
        return
    reason = regex_problem(match.regex)
    if reason:
        yield f"{at}.regex", reason


def _match_problems(at: str, match: HTTPMatchRequest) -> Iterator[Problem]:
    for name in ("uri", "scheme", "method", "authority"):
        yield from _string_match_problems(f"{at}.{name}", getattr(match, name))
    for header, value in match.headers.items():
        if header != header.lower():
            yield f"{at}.headers", f"header name {header!r} must be lower-case"
        elif not HEADER_NAME.match(header.lstrip(":")):
            yield f"{at}.headers", f"invalid header name {header!r}"
        yield from _string_match_problems(f"{at}.headers.{header}", value)


def _control_characters(value: Any, at: str) -> Iterator[Problem]:
    """Paths, header values, redirects and hosts never carry CR, LF or NUL (Envoy refuses them,
    and they would split headers)."""
    if isinstance(value, str):
        if CONTROL.search(value):
            yield at, "must not contain CR, LF or NUL characters"
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _control_characters(key, at)
            yield from _control_characters(item, f"{at}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _control_characters(item, f"{at}[{i}]")


def _header_ops_problems(at: str, ops: Any) -> Iterator[Problem]:
    if ops is None:
        return
    for kind in ("set", "add", "remove"):
        names = getattr(ops, kind)
        for name in (names if isinstance(names, list) else list(names)):
            if not HEADER_NAME.match(name):
                yield f"{at}.{kind}", f"invalid header name {name!r}"
            elif name.startswith(":") or name.lower() in PROTECTED_HEADERS:
                yield f"{at}.{kind}", f"header {name!r} cannot be changed"


def _headers_problems(at: str, headers: Any) -> Iterator[Problem]:
    if headers is not None:
        yield from _header_ops_problems(f"{at}.request", headers.request)
        yield from _header_ops_problems(f"{at}.response", headers.response)


def virtual_service_problems(vs: VirtualService) -> Iterator[Problem]:
    yield from _control_characters(dump(vs.spec, by_alias=True, exclude_none=True), "spec")
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
        yield from _headers_problems(f"{at}.headers", rule.headers)
        for k, dest in enumerate(rule.route):
            yield from _headers_problems(f"{at}.route[{k}].headers", dest.headers)
        body = rule.direct_response.body if rule.direct_response else None
        if body is not None and len((body.string or "").encode()) > MAX_DIRECT_RESPONSE_BODY:
            yield f"{at}.directResponse.body", (
                f"at most {MAX_DIRECT_RESPONSE_BODY} bytes (Envoy's limit)")
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
        elif se.spec.resolution == "STATIC" and not is_ip(endpoint.address):
            yield f"spec.endpoints[{i}].address", (
                f"{endpoint.address!r} is not an IP address (required with resolution STATIC)")


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


# The cipher suites and ECDH curves a Gateway's TLS settings may name (OpenSSL/BoringSSL names,
# as Istio's API takes them). Anything else is dropped with a warning, as Istio does; a data
# plane then uses what it supports of the rest.
ISTIO_CIPHER_SUITES = frozenset({
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    "ECDHE-ECDSA-AES128-SHA", "ECDHE-RSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA",
    "ECDHE-RSA-AES256-SHA", "AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-SHA",
    "AES256-SHA", "DES-CBC3-SHA", "ECDHE-PSK-CHACHA20-POLY1305", "ECDHE-PSK-AES128-CBC-SHA",
    "PSK-AES128-CBC-SHA",
})
ISTIO_ECDH_CURVES = frozenset({"X25519", "P-256", "P-384", "P-521", "X25519MLKEM768"})
