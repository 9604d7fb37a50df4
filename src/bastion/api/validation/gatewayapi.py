"""The Gateway API CRDs' validation rules (their schemas' patterns and CEL rules), so YAML the
API server refuses is refused here, with the field named."""

from __future__ import annotations

import re
from collections.abc import Iterator

from bastion.api.gatewayapi import BackendTLSPolicy, Gateway, HTTPRoute, PathMatch, TLSRoute
from bastion.api.validation.names import is_ip
from bastion.api.validation.problem import Problem

# The CRD's Hostname pattern: a DNS name, optionally with a leading "*." label.
HOSTNAME = re.compile(r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
CORE_PROTOCOLS = {"HTTP", "HTTPS", "TLS", "TCP", "UDP"}
CUSTOM_PROTOCOL = re.compile(r"^[a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?(/[a-zA-Z0-9]+)$")
METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
FILTERS = {"RequestHeaderModifier": "request_header_modifier",
           "ResponseHeaderModifier": "response_header_modifier",
           "RequestRedirect": "request_redirect", "URLRewrite": "url_rewrite",
           "RequestMirror": "request_mirror", "ExtensionRef": "extension_ref",
           "CORS": "cors"}
REDIRECT_CODES = {301, 302, 303, 307, 308}
BAD_PATH = re.compile(r"//|/\./|/\.\./|%2f|%2F|#")


def hostname_problem(value: str) -> str | None:
    if is_ip(value):
        return f"{value!r} is an IP address; a hostname is required"
    if len(value) > 253 or not HOSTNAME.match(value):
        return f"{value!r} is not a valid hostname (a DNS name, optionally with a leading *.)"
    return None


def gateway_api_gateway_problems(gateway: Gateway) -> Iterator[Problem]:
    names: set[str] = set()
    combos: set[tuple[int, str, str]] = set()
    for i, listener in enumerate(gateway.spec.listeners):
        at = f"spec.listeners[{i}]"
        if listener.name in names:
            yield Problem(f"{at}.name", "Listener name must be unique within the Gateway")
        names.add(listener.name)
        combo = (listener.port, listener.protocol, listener.hostname or "")
        if combo in combos:
            yield Problem(at, "Combination of port, protocol and hostname must be unique for "
                          "each listener")
        combos.add(combo)
        protocol = listener.protocol
        if protocol not in CORE_PROTOCOLS and not CUSTOM_PROTOCOL.match(protocol):
            yield Problem(f"{at}.protocol", f"unsupported protocol {protocol!r}")
        if listener.hostname is not None:
            if protocol in ("TCP", "UDP"):
                yield Problem(f"{at}.hostname", "hostname must not be specified for "
                              "protocols ['TCP', 'UDP']")
            elif (reason := hostname_problem(listener.hostname)) is not None:
                yield Problem(f"{at}.hostname", reason)
        if listener.allowed_routes.namespaces.from_ not in ("All", "Same", "Selector", "None"):
            yield Problem(f"{at}.allowedRoutes.namespaces.from",
                          "must be one of All, Same, Selector or None")
        elif listener.allowed_routes.namespaces.from_ == "Selector" and (
                listener.allowed_routes.namespaces.selector is None):
            yield Problem(f"{at}.allowedRoutes.namespaces.selector",
                          "a selector is required when from is Selector")
        tls = listener.tls
        if protocol in ("HTTP", "TCP", "UDP") and tls is not None:
            yield Problem(f"{at}.tls", "tls must not be specified for protocols "
                          "['HTTP', 'TCP', 'UDP']")
        if protocol in ("HTTPS", "TLS") and tls is None:
            yield Problem(f"{at}.tls", "tls must be specified for protocols ['HTTPS', 'TLS']")
        if tls is None:
            continue
        if tls.mode not in ("Terminate", "Passthrough"):
            yield Problem(f"{at}.tls.mode", "must be Terminate or Passthrough")
        elif tls.mode == "Terminate" and not (tls.certificate_refs or tls.options):
            yield Problem(f"{at}.tls", "certificateRefs or options must be specified when "
                          "mode is Terminate")
        if tls.mode == "Passthrough" and protocol == "HTTPS":
            yield Problem(f"{at}.tls.mode", "Passthrough is for protocol TLS, not HTTPS")
        for k, ref in enumerate(tls.certificate_refs):
            if (ref.group, ref.kind) != ("", "Secret"):
                yield Problem(f"{at}.tls.certificateRefs[{k}]",
                              "only core Secrets are supported as certificates")
        validation = tls.frontend_validation
        if validation is not None and validation.mode not in ("AllowValidOnly",
                                                              "AllowInsecureFallback"):
            yield Problem(f"{at}.tls.frontendValidation.mode",
                          "must be AllowValidOnly or AllowInsecureFallback")


def http_route_problems(route: HTTPRoute) -> Iterator[Problem]:
    yield from _hostnames(route.spec.hostnames)
    for i, rule in enumerate(route.spec.rules):
        at = f"spec.rules[{i}]"
        for j, match in enumerate(rule.matches):
            yield from _match_problems(f"{at}.matches[{j}]", match.path, match.method,
                                       [h.type for h in match.headers],
                                       [q.type for q in match.query_params])
        kinds = [f.type for f in rule.filters]
        if "RequestRedirect" in kinds and "URLRewrite" in kinds:
            yield Problem(f"{at}.filters", "May specify either httpRouteFilterRequestRedirect "
                          "or httpRouteFilterRequestRewrite, but not both")
        for once in ("RequestHeaderModifier", "ResponseHeaderModifier", "RequestRedirect",
                     "URLRewrite"):
            if kinds.count(once) > 1:
                yield Problem(f"{at}.filters", f"{once} filter cannot be repeated")
        for k, flt in enumerate(rule.filters):
            field = FILTERS.get(flt.type)
            if field is None:
                yield Problem(f"{at}.filters[{k}].type", f"unknown filter type {flt.type!r}")
            elif getattr(flt, field) is None:
                yield Problem(f"{at}.filters[{k}]", f"filter.{_camel(field)} must be specified "
                              f"for {flt.type} filter.type")
            if flt.request_redirect is not None and (
                    flt.request_redirect.status_code not in REDIRECT_CODES):
                yield Problem(f"{at}.filters[{k}].requestRedirect.statusCode",
                              "must be one of 301, 302, 303, 307 or 308")
            path = (flt.url_rewrite.path if flt.url_rewrite else None) or (
                flt.request_redirect.path if flt.request_redirect else None)
            if path is not None and path.type == "ReplacePrefixMatch" and not (
                    len(rule.matches) == 1 and rule.matches[0].path is not None
                    and rule.matches[0].path.type == "PathPrefix"):
                yield Problem(f"{at}.filters[{k}]", "When using ReplacePrefixMatch, exactly "
                              "one PathPrefix match must be specified")


def tls_route_problems(route: TLSRoute) -> Iterator[Problem]:
    yield from _hostnames(route.spec.hostnames)


def backend_tls_policy_problems(policy: BackendTLSPolicy) -> Iterator[Problem]:
    validation = policy.spec.validation
    if validation.ca_certificate_refs and validation.well_known_ca_certificates:
        yield Problem("spec.validation", "must not contain both CACertificateRefs and "
                      "WellKnownCACertificates")
    if not validation.ca_certificate_refs and not validation.well_known_ca_certificates:
        yield Problem("spec.validation", "must specify either CACertificateRefs or "
                      "WellKnownCACertificates")
    if (reason := hostname_problem(validation.hostname)) is not None:
        yield Problem("spec.validation.hostname", reason)


def _hostnames(hostnames: list[str]) -> Iterator[Problem]:
    for i, host in enumerate(hostnames):
        if (reason := hostname_problem(host)) is not None:
            yield Problem(f"spec.hostnames[{i}]", reason)


def _match_problems(at: str, path: PathMatch | None, method: str | None,
                    header_types: list[str], query_types: list[str]) -> Iterator[Problem]:
    if path is not None:
        if path.type not in ("Exact", "PathPrefix", "RegularExpression"):
            yield Problem(f"{at}.path.type", "must be Exact, PathPrefix or RegularExpression")
        elif path.type != "RegularExpression":
            if not path.value.startswith("/"):
                yield Problem(f"{at}.path.value", "value must be an absolute path and start "
                              "with '/' when type one of ['Exact', 'PathPrefix']")
            elif BAD_PATH.search(path.value) or path.value.endswith(("/..", "/.")):
                yield Problem(f"{at}.path.value", "must not contain '//', '/./', '/../', "
                              "'%2f', '#' or end with '/..' or '/.'")
    if method is not None and method not in METHODS:
        yield Problem(f"{at}.method", f"unsupported method {method!r}")
    for k, kind in enumerate(header_types):
        if kind not in ("Exact", "RegularExpression"):
            yield Problem(f"{at}.headers[{k}].type", "must be Exact or RegularExpression")
    for k, kind in enumerate(query_types):
        if kind not in ("Exact", "RegularExpression"):
            yield Problem(f"{at}.queryParams[{k}].type", "must be Exact or RegularExpression")


def _camel(snake: str) -> str:
    first, *rest = snake.split("_")
    return first + "".join(p.title() for p in rest).replace("Url", "URL")
