"""Istio host names: wildcards, namespace prefixes and how two host sets intersect."""

from __future__ import annotations

CLUSTER_DOMAIN = "svc.cluster.local"


def qualify(host: str, namespace: str) -> str:
    """Istio qualifies a short destination name with the VirtualService's namespace."""
    if "." in host or host == "*":
        return host.lower()
    return f"{host}.{namespace}.{CLUSTER_DOMAIN}".lower()


def covering(host: str) -> list[str]:
    """Every pattern that can cover `host`: itself, `*.` and each of its suffixes, and `*`
    (what an index by pattern is probed with)."""
    host = host.lower()
    labels = host.split(".")
    return [host] + [f"*.{'.'.join(labels[i:])}" for i in range(1, len(labels))] + ["*"]


def split_namespace(host: str) -> tuple[str, str]:
    """`ns/host` -> (ns, host); a bare host admits every namespace (`*`)."""
    if "/" in host:
        namespace, _, name = host.partition("/")
        return namespace, name
    return "*", host


def matches(pattern: str, host: str) -> bool:
    """Does `pattern` (possibly `*` or `*.suffix`) cover `host` (possibly a wildcard itself)?"""
    pattern, host = pattern.lower(), host.lower()
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        suffix = pattern[1:]  # ".example.com"
        if host.startswith("*."):
            return host[1:].endswith(suffix)
        return host.endswith(suffix) and len(host) > len(suffix)
    return pattern == host


def intersect(a: str, b: str) -> str | None:
    """The more specific of two overlapping hosts, or None when they do not overlap."""
    if matches(a, b):
        return b.lower()
    if matches(b, a):
        return a.lower()
    return None


def specificity(host: str) -> tuple[int, int, str]:
    """Sort key: exact names before wildcards, longer wildcards before shorter, `*` last."""
    if host == "*":
        return (2, 0, host)
    if host.startswith("*."):
        return (1, -len(host), host)
    return (0, 0, host)
