"""Findings about what objects name: a credential looked for in the gateway's namespace and
found only elsewhere, a Gateway no gateway group runs, two servers of one gateway claiming one
host on one port, a VirtualService naming a Gateway that does not exist or whose hosts no
server of it has."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from bastion.api import istio
from bastion.diag import Diagnostic, ObjectRef, Severity
from bastion.errors import CredentialError
from bastion.ir.workload import Workload
from bastion.translate.istio import hosts
from bastion.translate.istio.credentials import CA_SUFFIX, credential_name
from bastion.translate.istio.gateway import selects
from bastion.translate.istio.refs import bindable_hosts, gateway_refs
from bastion.translate.istio.resources import Resources

MESH = "mesh"


def where_else(res: Resources, diag: Diagnostic, namespaces: frozenset[str]) -> Diagnostic:
    """A credential not found, with where Secrets of its name are: a gateway reads them from
    its own namespace only, and a Secret created beside the Gateway is the usual mistake."""
    if diag.object.kind != "Gateway":
        return diag
    gateway = res.gateways.get((diag.object.namespace, diag.object.name))
    value = _field(gateway, diag.field) if gateway is not None else None
    names = value if isinstance(value, list) else [value] if isinstance(value, str) else []
    found = set()
    for raw in names:
        try:
            base = credential_name(raw).removesuffix(CA_SUFFIX)
        except CredentialError:
            continue
        found |= {f"{ns}/{name}" for ns, name in res.secrets
                  if name in (base, base + CA_SUFFIX) and ns not in namespaces}
    if not found:
        return diag
    hint = (f"; a Secret of that name is in {', '.join(sorted(found))}, but a gateway reads "
            f"credentials from its own namespace ({', '.join(sorted(namespaces))})")
    return Diagnostic(diag.object, diag.field, diag.code, diag.message + hint, diag.severity)


def _field(model: object, path: str) -> object:
    """The value at a diagnostic's field path (`spec.servers[0].tls.credentialName`)."""
    value: object = model
    for part in path.replace("]", "").split("."):
        name, _, index = part.partition("[")
        snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in name)
        value = getattr(value, snake, None)
        if index and isinstance(value, list):
            value = value[int(index)] if int(index) < len(value) else None
    return value


def unselected_gateways(res: Resources, workloads: Iterable[Workload]) -> Iterator[Diagnostic]:
    groups = list(workloads)
    for (namespace, name), gateway in sorted(res.gateways.items()):
        if not any(selects(gateway, w) for w in groups):
            wanted = ",".join(f"{k}={v}" for k, v in sorted(gateway.spec.selector.items()))
            yield Diagnostic(ObjectRef("Gateway", namespace, name), "spec.selector",
                             "SelectorNotFound",
                             f"Referenced selector not found: {wanted!r}: no gateway of this "
                             "control plane has these labels, so nothing serves the Gateway",
                             Severity.WARNING)


def virtual_service_bindings(res: Resources) -> Iterator[Diagnostic]:
    for (namespace, name), vs in sorted(res.virtual_services.items()):
        if not vs.spec.hosts:
            continue  # a delegate: bound through its root
        ref = ObjectRef("VirtualService", namespace, name)
        named = [(f"spec.gateways[{i}]", g) for i, g in enumerate(vs.spec.gateways)]
        named += [(f"spec.http[{i}].match[{j}].gateways[{k}]", g)
                  for i, rule in enumerate(vs.spec.http) for j, m in enumerate(rule.match)
                  for k, g in enumerate(m.gateways)]
        for at, entry in named:
            if entry == MESH:
                continue
            for key in sorted(gateway_refs(vs, [entry])):
                gateway = res.gateways.get(key)
                if gateway is None:
                    yield Diagnostic(ref, at, "GatewayNotFound",
                                     f"Referenced gateway not found: \"{key[0]}/{key[1]}\"")
                elif at.startswith("spec.gateways") and (missing := _unbound(gateway, vs)):
                    yield Diagnostic(
                        ref, "spec.hosts", "HostNotInGateway",
                        f"one or more host {missing} defined in VirtualService "
                        f"{namespace}/{name} not found in Gateway {key[0]}/{key[1]}",
                        Severity.WARNING)


def _unbound(gateway: istio.Gateway, vs: istio.VirtualService) -> list[str]:
    """The VirtualService's hosts no server of the Gateway lets it bind."""
    bindable = [h for server in gateway.spec.servers
                for h in bindable_hosts(gateway, server.hosts, vs)]
    return [h for h in vs.spec.hosts if not any(hosts.intersect(b, h) for b in bindable)]


def conflicting_servers(res: Resources, workloads: Iterable[Workload]) -> Iterator[Diagnostic]:
    """Two TLS servers of one gateway group claiming a host on one port, whether or not
    their credentials let them be served: the first (oldest Gateway, then order) takes it."""
    for workload in workloads:
        chosen = sorted((g for g in res.gateways.values() if selects(g, workload)),
                        key=lambda g: (g.metadata.creation_timestamp or "",
                                       g.metadata.namespace or "", g.metadata.name))
        claimed: dict[tuple[int, str], tuple[ObjectRef, str]] = {}
        for gateway in chosen:
            ref = ObjectRef("Gateway", gateway.metadata.namespace or "", gateway.metadata.name)
            for i, server in enumerate(gateway.spec.servers):
                if server.tls is None or server.tls.mode == "ISTIO_MUTUAL":
                    continue
                at = f"spec.servers[{i}]"
                for host in (hosts.split_namespace(h)[1].lower() for h in server.hosts):
                    first = next((owner for (port, other), owner in claimed.items()
                                  if port == server.port.number and hosts.intersect(host, other)
                                  and owner != (ref, at)), None)
                    if first is not None:
                        yield Diagnostic(ref, f"{at}.hosts", "DuplicateHost",
                                         f"host {host} on port {server.port.number} is also "
                                         f"claimed by {first[0]} {first[1]}, which takes it")
                    else:
                        claimed.setdefault((server.port.number, host), (ref, at))
