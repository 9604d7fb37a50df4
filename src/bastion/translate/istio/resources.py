"""The inputs of translation: typed objects, the gateway workload they are translated for, and
the options of this gateway process."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bastion.api import certmanager, core, gatewayapi, istio
from bastion.ir.workload import Workload
from bastion.private import PrivateBytes
from bastion.translate.istio.files import FileRefs, file_refs, rule_file_refs
from bastion.translate.istio.hosts import covering, qualify
from bastion.translate.istio.refs import gateway_refs

__all__ = ["FileRead", "Options", "Resources", "Workload"]


@dataclass(frozen=True)
class Options:
    bind_address: str = "0.0.0.0"
    port_map: tuple[tuple[int, int], ...] = ()  # gateway port -> local port Envoy binds
    # Directories file-based certificates may be read from (`serve --cert-dir`); none: no file
    # a config author names is ever read.
    cert_dirs: tuple[str, ...] = ()
    # Also serve HTTP/3 (QUIC, UDP on the same port) for every server terminating TLS.
    http3: bool = False

    def bind_port(self, port: int) -> int:
        return dict(self.port_map).get(port, port)


@dataclass(frozen=True)
class FileRead:
    """A file a Gateway names, as the control plane last read it: its bytes (treated as key
    material, whatever it holds) or why it could not be read."""

    data: PrivateBytes | None = field(default=None, repr=False)
    error: str = ""


# The models translation reads (objects of other kinds never change a gateway's configuration).
READ_TYPES: tuple[type, ...] = (
    istio.Gateway, istio.VirtualService, istio.ServiceEntry, istio.DestinationRule,
    core.Secret, core.Service, core.Endpoints, core.Pod, core.EndpointSlice,
    certmanager.Challenge, gatewayapi.GatewayClass, gatewayapi.Gateway, gatewayapi.HTTPRoute,
    gatewayapi.ReferenceGrant, gatewayapi.TLSRoute, core.ConfigMap, gatewayapi.BackendTLSPolicy,
    core.Namespace)


@dataclass
class Resources:
    """Everything stored that translation reads, by kind, keyed by (namespace, name).

    It can be made whole (`from_models`) or kept current one object at a time (`put`,
    `remove`): the control plane keeps one and updates it with each change, so a change at
    10,000 hosts does not regroup 30,000 objects. `vs_by_gateway` indexes VirtualServices by
    the Gateways they name, for the same reason.
    """

    gateways: dict[tuple[str, str], istio.Gateway] = field(default_factory=dict)
    virtual_services: dict[tuple[str, str], istio.VirtualService] = field(default_factory=dict)
    service_entries: dict[tuple[str, str], istio.ServiceEntry] = field(default_factory=dict)
    destination_rules: dict[tuple[str, str], istio.DestinationRule] = field(
        default_factory=dict)
    secrets: dict[tuple[str, str], core.Secret] = field(default_factory=dict)
    services: dict[tuple[str, str], core.Service] = field(default_factory=dict)
    endpoints: dict[tuple[str, str], core.Endpoints] = field(default_factory=dict)
    pods: dict[tuple[str, str], core.Pod] = field(default_factory=dict)
    endpoint_slices: dict[tuple[str, str], core.EndpointSlice] = field(default_factory=dict)
    challenges: dict[tuple[str, str], certmanager.Challenge] = field(default_factory=dict)
    gateway_classes: dict[tuple[str, str], gatewayapi.GatewayClass] = field(
        default_factory=dict)
    gtw_gateways: dict[tuple[str, str], gatewayapi.Gateway] = field(default_factory=dict)
    http_routes: dict[tuple[str, str], gatewayapi.HTTPRoute] = field(default_factory=dict)
    tls_routes: dict[tuple[str, str], gatewayapi.TLSRoute] = field(default_factory=dict)
    reference_grants: dict[tuple[str, str], gatewayapi.ReferenceGrant] = field(
        default_factory=dict)
    config_maps: dict[tuple[str, str], core.ConfigMap] = field(default_factory=dict)
    namespaces: dict[tuple[str, str], core.Namespace] = field(default_factory=dict)
    backend_tls_policies: dict[tuple[str, str], gatewayapi.BackendTLSPolicy] = field(
        default_factory=dict)
    # (namespace, name) of the VirtualServices naming each Gateway; tuples, not dicts, since a
    # Gateway is most often named by one or two.
    vs_by_gateway: dict[tuple[str, str], tuple[tuple[str, str], ...]] = field(
        default_factory=dict)
    # (namespace, name) of the DestinationRules by their qualified host (a pattern), so that a
    # destination's rule is found without visiting every rule.
    rules_by_host: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    # Files named by Gateways (certificates, keys, CAs, CRLs, staples), by Gateway, and what
    # the control plane read of each (kept current by its file watcher).
    files_by_object: dict[tuple[type, str, str], FileRefs] = field(default_factory=dict)
    files: dict[str, FileRead] = field(default_factory=dict)

    @classmethod
    def from_models(cls, models: Iterable[object]) -> Resources:
        out = cls()
        for model in models:
            out.put(model)
        return out

    def _slot(self, model_type: type) -> dict[tuple[str, str], Any] | None:
        slots: dict[type, dict[tuple[str, str], Any]] = {
            istio.Gateway: self.gateways,
            istio.VirtualService: self.virtual_services,
            istio.ServiceEntry: self.service_entries,
            istio.DestinationRule: self.destination_rules,
            core.Secret: self.secrets,
            core.Service: self.services,
            core.Endpoints: self.endpoints,
            core.Pod: self.pods,
            core.EndpointSlice: self.endpoint_slices,
            certmanager.Challenge: self.challenges,
            gatewayapi.GatewayClass: self.gateway_classes,
            gatewayapi.Gateway: self.gtw_gateways,
            gatewayapi.HTTPRoute: self.http_routes,
            gatewayapi.TLSRoute: self.tls_routes,
            gatewayapi.ReferenceGrant: self.reference_grants,
            core.ConfigMap: self.config_maps,
            core.Namespace: self.namespaces,
            gatewayapi.BackendTLSPolicy: self.backend_tls_policies,
        }
        return slots.get(model_type)

    def put(self, model: object) -> None:
        slot = self._slot(type(model))
        if slot is None:
            return
        meta = model.metadata  # type: ignore[attr-defined]
        key = (meta.namespace or "", meta.name)
        if isinstance(model, istio.VirtualService):
            self._unindex(key)
            for ref in gateway_refs(model, model.spec.gateways):
                bound = self.vs_by_gateway.get(ref, ())
                if key not in bound:
                    self.vs_by_gateway[ref] = (*bound, key)
        if isinstance(model, istio.DestinationRule):
            self._unindex_rule(key)
            pattern = qualify(model.spec.host, meta.namespace or "default")
            self.rules_by_host[pattern] = (*self.rules_by_host.get(pattern, ()), key)
        if isinstance(model, istio.Gateway | istio.DestinationRule):
            refs = file_refs(model) if isinstance(model, istio.Gateway) else rule_file_refs(model)
            if refs:
                self.files_by_object[(type(model), *key)] = refs
            else:
                self.files_by_object.pop((type(model), *key), None)
        slot[key] = model

    def remove(self, model_type: type, key: tuple[str, str]) -> None:
        slot = self._slot(model_type)
        if slot is None:
            return
        if model_type is istio.VirtualService:
            self._unindex(key)
        if model_type is istio.DestinationRule:
            self._unindex_rule(key)
        self.files_by_object.pop((model_type, *key), None)
        slot.pop(key, None)

    def wanted_files(self) -> FileRefs:
        """Every file some Gateway or DestinationRule names."""
        return FileRefs.union(self.files_by_object.values())

    def rules_for_host(self, host: str) -> list[istio.DestinationRule]:
        """The DestinationRules whose host can cover `host` (the candidates of Istio's
        precedence)."""
        return [self.destination_rules[key] for pattern in covering(host)
                for key in self.rules_by_host.get(pattern, ())]

    def _unindex_rule(self, key: tuple[str, str]) -> None:
        old = self.destination_rules.get(key)
        if old is None:
            return
        pattern = qualify(old.spec.host, old.metadata.namespace or "default")
        kept = tuple(k for k in self.rules_by_host.get(pattern, ()) if k != key)
        if kept:
            self.rules_by_host[pattern] = kept
        else:
            self.rules_by_host.pop(pattern, None)

    def _unindex(self, key: tuple[str, str]) -> None:
        old = self.virtual_services.get(key)
        if old is None:
            return
        for ref in gateway_refs(old, old.spec.gateways):
            bound = tuple(k for k in self.vs_by_gateway.get(ref, ()) if k != key)
            if bound:
                self.vs_by_gateway[ref] = bound
            else:
                self.vs_by_gateway.pop(ref, None)
