"""Resolving a route destination (`httpbin`, port 8000) to a backend with endpoints, through a
Service and its Endpoints/EndpointSlices, or a ServiceEntry."""

from __future__ import annotations

from bastion.api import core, istio
from bastion.diag import ObjectRef
from bastion.ir.model import Backend, BackendRef, Endpoint
from bastion.translate.istio.hosts import CLUSTER_DOMAIN
from bastion.translate.istio.resources import Resources

HTTP2_APP_PROTOCOLS = {"http2", "grpc", "grpc-web", "kubernetes.io/h2c"}


def _is_http2(name: str | None, app_protocol: str | None) -> bool:
    if app_protocol and app_protocol.lower() in HTTP2_APP_PROTOCOLS:
        return True
    prefix = (name or "").lower().split("-", 1)[0]
    return prefix in ("grpc", "http2", "h2c")


def _service_port(service: core.Service, port: int | None) -> core.ServicePort | None:
    if port is None:
        return service.spec.ports[0] if len(service.spec.ports) == 1 else None
    return next((p for p in service.spec.ports if p.port == port), None)


def _same_port(endpoint_name: str | None, service_name: str | None, only: bool) -> bool:
    """Endpoints ports pair with the Service port of the same name; a lone port pairs with a lone
    unnamed one, so hand-written Endpoints without names work."""
    if (endpoint_name or "") == (service_name or ""):
        return True
    return only and not (endpoint_name and service_name)


def _labels(res: Resources, ref: core.ObjectReference | None) -> tuple[tuple[str, str], ...]:
    """The labels of the pod an endpoint points at (what DestinationRule subsets select)."""
    if ref is None or ref.kind != "Pod" or not ref.name:
        return ()
    pod = res.pods.get((ref.namespace or "", ref.name))
    return tuple(sorted(pod.metadata.labels.items())) if pod is not None else ()


def _from_endpoints(
    res: Resources, namespace: str, name: str, service_port: core.ServicePort
) -> list[Endpoint]:
    out: list[Endpoint] = []
    endpoints = res.endpoints.get((namespace, name))
    if endpoints is not None:
        for subset in endpoints.subsets:
            only = len(subset.ports) == 1
            for ep_port in subset.ports:
                if _same_port(ep_port.name, service_port.name, only):
                    out.extend(Endpoint(a.ip, ep_port.port, _labels(res, a.target_ref))
                               for a in subset.addresses)
    for (slice_ns, _), eps in sorted(res.endpoint_slices.items()):
        if slice_ns != namespace or eps.metadata.labels.get(core.SERVICE_NAME_LABEL) != name:
            continue
        single = len(eps.ports) == 1
        for sp in eps.ports:
            if sp.port is None or not _same_port(sp.name, service_port.name, single):
                continue
            for endpoint in eps.endpoints:
                if endpoint.conditions.ready is False:
                    continue
                out.extend(Endpoint(addr, sp.port, _labels(res, endpoint.target_ref))
                           for addr in endpoint.addresses)
    return sorted(set(out), key=lambda e: (e.address, e.port))


def _from_service(res: Resources, ref: BackendRef) -> Backend | None:
    parts = ref.host.split(".")
    if len(parts) != 5 or ".".join(parts[2:]) != CLUSTER_DOMAIN:
        return None
    name, namespace = parts[0], parts[1]
    service = res.services.get((namespace, name))
    if service is None:
        return None
    service_port = _service_port(service, ref.port)
    if service_port is None:
        return None
    return Backend(
        ref=ref,
        endpoints=tuple(_from_endpoints(res, namespace, name, service_port)),
        source=ObjectRef("Service", namespace, name),
        http2=_is_http2(service_port.name, service_port.app_protocol),
    )


def _from_service_entry(res: Resources, ref: BackendRef) -> Backend | None:
    for (namespace, name), entry in sorted(res.service_entries.items()):
        if ref.host not in (h.lower() for h in entry.spec.hosts):
            continue
        port = next((p for p in entry.spec.ports if p.number == ref.port), None)
        if port is None:
            continue
        return Backend(
            ref=ref,
            endpoints=_entry_endpoints(entry, port, ref.host),
            source=ObjectRef("ServiceEntry", namespace, name),
            http2=_is_http2(port.name, (port.protocol or "").lower()),
            dns=entry.spec.resolution in ("DNS", "DNS_ROUND_ROBIN"),
        )
    return None


def _entry_endpoints(entry: istio.ServiceEntry, port: istio.ServicePort, host: str
                     ) -> tuple[Endpoint, ...]:
    target = port.target_port or port.number
    if not entry.spec.endpoints:
        if entry.spec.resolution in ("DNS", "DNS_ROUND_ROBIN"):
            return (Endpoint(host, target),)
        return ()
    out = []
    for endpoint in entry.spec.endpoints:
        if endpoint.address:
            out.append(Endpoint(endpoint.address, endpoint.ports.get(port.name or "", target),
                                tuple(sorted(endpoint.labels.items())), endpoint.weight or 0))
    return tuple(sorted(set(out), key=lambda e: (e.address, e.port)))


def why_empty(res: Resources, backend: Backend) -> str:
    """Why a resolved backend has no endpoint, in the words of the objects behind it (what a
    user checks next after a 503 "no healthy upstream")."""
    source = backend.source
    port = backend.ref.port
    if source.kind == "ServiceEntry":
        entry = res.service_entries.get((source.namespace, source.name))
        if entry is not None and entry.spec.resolution == "NONE":
            return (f"ServiceEntry {source.namespace}/{source.name} has resolution NONE and no "
                    "endpoints: a gateway has no original destination to pass requests to")
        return f"ServiceEntry {source.namespace}/{source.name} lists no endpoints for port {port}"
    key = (source.namespace, source.name)
    slices = [eps for (ns, _), eps in res.endpoint_slices.items()
              if ns == source.namespace and eps.metadata.labels.get(core.SERVICE_NAME_LABEL)
              == source.name]
    if key not in res.endpoints and not slices:
        reason = (f"Service {source.namespace}/{source.name} has no endpoints: no EndpointSlice "
                  "or Endpoints names it")
        service = res.services.get(key)
        selector = service.spec.selector if service is not None else None
        if not selector:
            return reason + " (it has no selector: they are written by hand)"
        if not any(ns == source.namespace and selector.items() <= pod.metadata.labels.items()
                   for (ns, _), pod in res.pods.items()):
            wanted = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
            return reason + f", and no pod matches its selector {wanted}"
        return reason
    waiting = sum(1 for eps in slices for e in eps.endpoints if e.conditions.ready is False)
    if waiting:
        return f"Service {source.namespace}/{source.name} has {waiting} endpoints, none ready"
    return f"Service {source.namespace}/{source.name} has no endpoints for port {port}"


def resolve(res: Resources, ref: BackendRef) -> Backend | None:
    return _from_service(res, ref) or _from_service_entry(res, ref)


def default_port(res: Resources, host: str) -> int | None:
    """The port of a destination given without one: allowed when the service has exactly one."""
    parts = host.split(".")
    if len(parts) == 5:
        service = res.services.get((parts[1], parts[0]))
        if service is not None and len(service.spec.ports) == 1:
            return service.spec.ports[0].port
    for entry in res.service_entries.values():
        if host in (h.lower() for h in entry.spec.hosts) and len(entry.spec.ports) == 1:
            return entry.spec.ports[0].number
    return None
