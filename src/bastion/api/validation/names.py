"""Istio's rules for names: DNS labels, host names with and without wildcards, the hosts of a
Gateway server (`namespace/host`), IP addresses and subnets. Each function returns why a value
is refused, or None."""

from __future__ import annotations

import ipaddress
import re

# Istio checks labels in references (namespaces, gateway names) without regard to case.
DNS_LABEL = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# Host name labels: Istio checks them case-insensitively.
HOST_LABEL = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$")
# The first label of a host may be `*`, or a label with a leading `*` or `*-`.
WILDCARD_LABEL = re.compile(r"^(\*|(\*|\*-)?[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)$")
LABEL_MAX = 63
HOST_MAX = 255


def is_dns_label(value: str) -> bool:
    return len(value) <= LABEL_MAX and DNS_LABEL.match(value) is not None


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def fqdn_problem(name: str) -> str | None:
    """A host name with no wildcard; the last label may be empty (`example.com.`) and the top
    level domain is not all digits."""
    return _host_problem(name, name.split("."))


def wildcard_host_problem(name: str) -> str | None:
    """A host name whose first label may hold a wildcard (`*`, `*.example.com`,
    `*-api.example.com`)."""
    first, _, rest = name.partition(".")
    if name and len(first) <= LABEL_MAX and WILDCARD_LABEL.match(first):
        return _host_problem(name, rest.split(".")) if rest or name.endswith(".") else None
    if not name or len(name) > HOST_MAX:
        return _host_problem(name, [])
    return f"host name {name!r}: label {first!r} is invalid (a wildcard may only lead the " \
           "first label)"


def _host_problem(name: str, labels: list[str]) -> str | None:
    if not name:
        return "empty host name"
    if len(name) > HOST_MAX:
        return f"host name {name!r} is too long (at most {HOST_MAX} characters)"
    if labels and labels[-1].isdigit():
        return f"host name {name!r}: the top-level domain {labels[-1]!r} cannot be all digits"
    for i, label in enumerate(labels):
        if i == len(labels) - 1 and label == "":
            break  # `example.com.`: the last label may be empty
        if len(label) > LABEL_MAX or not HOST_LABEL.match(label):
            return f"host name {name!r}: label {label!r} is invalid"
    return None


def partial_wildcard_problem(name: str) -> str | None:
    if "*" in name and name != "*" and not name.startswith("*."):
        return f"partial wildcard {name!r} is not allowed"
    return None


def gateway_host_problems(host: str) -> list[str]:
    """A Gateway server's host: `[namespace/]dnsName`, where the namespace is `*`, `.` or a DNS
    label, and the name a host name with a leading wildcard, `*`, or an IP address; short names
    (no dot) are refused."""
    problems: list[str] = []
    if "/" in host:
        namespace, _, host = host.partition("/")
        if not namespace or not host:
            return ["the namespace and the host name of a `namespace/host` cannot be empty"]
        if namespace not in ("*", ".") and not is_dns_label(namespace):
            problems.append(f"invalid namespace {namespace!r}")
    if host != "*" and "." not in host:
        problems.append(f"short host name {host!r} is not allowed (use a fully qualified name)")
    reason = wildcard_host_problem(host)
    if reason and not is_ip(host):
        problems.append(reason)
    reason = partial_wildcard_problem(host)
    if reason:
        problems.append(reason)
    return problems


def ip_subnet_problem(value: str) -> str | None:
    """An address, or a CIDR block (`10.0.0.0/8`, `2001:db8::/32`)."""
    try:
        if value.count("/") == 1:
            ipaddress.ip_network(value, strict=False)
        else:
            ipaddress.ip_address(value)
    except ValueError:
        return f"{value!r} is not a valid IP address or CIDR block"
    return None
