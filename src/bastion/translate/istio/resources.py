"""The inputs of translation: typed objects, the gateway workload they are translated for, and
the options of this gateway process."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from bastion.api import core, istio


@dataclass(frozen=True)
class Workload:
    """The gateway this configuration is for: its labels pick Gateways by selector; its namespace
    is where credentials are read (Istio reads them beside the gateway pod)."""

    labels: tuple[tuple[str, str], ...] = (("istio", "ingressgateway"),)
    namespace: str = "istio-system"

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)


@dataclass(frozen=True)
class Options:
    bind_address: str = "0.0.0.0"
    port_map: tuple[tuple[int, int], ...] = ()  # gateway port -> local port Envoy binds

    def bind_port(self, port: int) -> int:
        return dict(self.port_map).get(port, port)


@dataclass
class Resources:
    """Everything stored that translation reads, by kind, keyed by (namespace, name)."""

    gateways: dict[tuple[str, str], istio.Gateway] = field(default_factory=dict)
    virtual_services: dict[tuple[str, str], istio.VirtualService] = field(default_factory=dict)
    service_entries: dict[tuple[str, str], istio.ServiceEntry] = field(default_factory=dict)
    secrets: dict[tuple[str, str], core.Secret] = field(default_factory=dict)
    services: dict[tuple[str, str], core.Service] = field(default_factory=dict)
    endpoints: dict[tuple[str, str], core.Endpoints] = field(default_factory=dict)
    endpoint_slices: dict[tuple[str, str], core.EndpointSlice] = field(default_factory=dict)

    @classmethod
    def from_models(cls, models: Iterable[object]) -> Resources:
        out = cls()
        slots = {
            istio.Gateway: out.gateways,
            istio.VirtualService: out.virtual_services,
            istio.ServiceEntry: out.service_entries,
            core.Secret: out.secrets,
            core.Service: out.services,
            core.Endpoints: out.endpoints,
            core.EndpointSlice: out.endpoint_slices,
        }
        for model in models:
            slot = slots.get(type(model))
            if slot is not None:
                meta = model.metadata  # type: ignore[attr-defined]
                slot[(meta.namespace or "", meta.name)] = model
        return out
