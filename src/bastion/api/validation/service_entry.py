"""Istio's admission rules for ServiceEntries, for the resolutions a gateway uses (NONE, STATIC,
DNS, DNS_ROUND_ROBIN, DYNAMIC_DNS)."""

from __future__ import annotations

from collections.abc import Iterator

from bastion.api.istio import ServiceEntry
from bastion.api.validation.names import (
    fqdn_problem,
    ip_subnet_problem,
    is_ip,
    partial_wildcard_problem,
    wildcard_host_problem,
)
from bastion.api.validation.problem import Problem, warn
from bastion.api.validation.values import port_problem
from bastion.api.validation.virtual_service import export_to_problems

RESOLUTIONS = ("NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN", "DYNAMIC_DNS")
PORT_PROTOCOLS = frozenset({"HTTP", "HTTPS", "GRPC", "GRPC-WEB", "HTTP2", "MONGO", "TCP", "TLS",
                            "HTTP_PROXY", "REDIS", "MYSQL", "UDP"})
HTTP_OR_TLS = frozenset({"HTTP", "HTTPS", "GRPC", "GRPC-WEB", "HTTP2", "HTTP_PROXY", "TLS"})


def service_entry_problems(se: ServiceEntry) -> Iterator[Problem]:
    spec = se.spec
    resolution = spec.resolution
    if spec.workload_selector is not None and spec.endpoints:
        yield Problem("spec.endpoints", "only one of workloadSelector and endpoints may be set")
    for i, host in enumerate(spec.hosts):
        at = f"spec.hosts[{i}]"
        if host == "*":
            yield Problem(at, "host * is not allowed")
            continue
        reason = wildcard_host_problem(host)
        if reason:
            yield Problem(at, reason)
        partial = partial_wildcard_problem(host)
        if partial and resolution != "DYNAMIC_DNS":
            yield warn(at, partial)
    cidr = False
    for i, address in enumerate(spec.addresses):
        cidr = cidr or "/" in address
        reason = ip_subnet_problem(address)
        if reason:
            yield Problem(f"spec.addresses[{i}]", reason)
    if cidr and resolution not in ("NONE", "STATIC"):
        yield Problem("spec.addresses", "CIDR blocks need resolution NONE or STATIC")
    names: set[str] = set()
    numbers: set[int] = set()
    for i, port in enumerate(spec.ports):
        at = f"spec.ports[{i}]"
        if port.name is not None and port.name in names:
            yield Problem(f"{at}.name", f"port name {port.name!r} is already defined")
        if port.number in numbers:
            yield Problem(f"{at}.number", f"port {port.number} is already defined")
        names.add(port.name or "")
        numbers.add(port.number)
        if port.target_port:
            reason = port_problem(port.target_port)
            if reason:
                yield Problem(f"{at}.targetPort", reason)
        if not port.name:
            yield Problem(f"{at}.name", "required")
        if (port.protocol or "").upper() not in PORT_PROTOCOLS:
            yield Problem(f"{at}.protocol", f"unsupported protocol {port.protocol!r}")
    if resolution not in RESOLUTIONS:
        yield Problem("spec.resolution", f"unsupported resolution {resolution!r}")
        return
    yield from _resolution_problems(se)
    if resolution != "NONE" and len(spec.hosts) > 1 and any(
            (p.protocol or "").upper() not in HTTP_OR_TLS for p in spec.ports):
        yield Problem("spec.hosts", "several hosts need HTTP or TLS ports (nothing else tells "
                                    "the hosts apart)")
    yield from export_to_problems("spec.exportTo", spec.export_to)


def _resolution_problems(se: ServiceEntry) -> Iterator[Problem]:
    spec = se.spec
    resolution = spec.resolution
    port_names = {p.name for p in spec.ports if p.name}
    if resolution == "NONE":
        if spec.endpoints:
            yield Problem("spec.endpoints", "no endpoints may be given with resolution NONE")
        return
    if resolution == "DYNAMIC_DNS":
        for i, host in enumerate(spec.hosts):
            if not host.startswith("*"):
                yield Problem(f"spec.hosts[{i}]", "must be a wildcard for resolution DYNAMIC_DNS")
        if spec.addresses:
            yield Problem("spec.addresses", "not allowed with resolution DYNAMIC_DNS")
        if spec.endpoints:
            yield Problem("spec.endpoints", "not allowed with resolution DYNAMIC_DNS")
        return
    if resolution in ("DNS", "DNS_ROUND_ROBIN") and not spec.endpoints:
        for i, host in enumerate(spec.hosts):
            reason = fqdn_problem(host)
            if reason:
                yield Problem(f"spec.hosts[{i}]",
                              f"without endpoints, resolution {resolution} needs host names: "
                              f"{reason}")
                break
    if resolution == "DNS_ROUND_ROBIN" and len(spec.endpoints) > 1:
        yield Problem("spec.endpoints", "resolution DNS_ROUND_ROBIN takes at most one endpoint")
    for i, endpoint in enumerate(spec.endpoints):
        at = f"spec.endpoints[{i}]"
        address = endpoint.address or ""
        if not address:
            yield Problem(f"{at}.address", "required")
        elif resolution == "STATIC" and not is_ip(address) and not address.startswith("unix://"):
            yield Problem(f"{at}.address",
                          f"{address!r} is not an IP address (required with resolution STATIC)")
        elif resolution != "STATIC" and not is_ip(address) and fqdn_problem(address):
            yield Problem(f"{at}.address", f"{address!r} is neither a host name nor an IP address")
        for name, number in endpoint.ports.items():
            if name not in port_names:
                yield Problem(f"{at}.ports.{name}", "not a port of the ServiceEntry")
            reason = port_problem(number)
            if reason:
                yield Problem(f"{at}.ports.{name}", reason)
