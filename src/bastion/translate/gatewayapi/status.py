"""The status Gateway API users read, worked out from the objects and the build made of
them: a Gateway's `Accepted` and `Programmed` conditions, its address, and per listener
`Accepted`, `Programmed`, `ResolvedRefs`, `Conflicted` and `attachedRoutes`; an HTTPRoute's
per-parent `Accepted` and `ResolvedRefs`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bastion.api import gatewayapi
from bastion.diag import Diagnostic, ObjectRef
from bastion.ir.model import GatewayConfig
from bastion.translate.gatewayapi.convert import (
    GATEWAY_KIND,
    Converted,
    backend_allowed,
    backend_exists,
    certificate_names,
    client_cas,
    converted,
    generated_name,
    listener_of,
    ours,
    parents_of,
)
from bastion.translate.istio import hosts
from bastion.translate.istio.resources import Resources

CONTROLLER = gatewayapi.CONTROLLERS[0]
CONFLICTS = {"DuplicateHost": "HostnameConflict", "PortConflict": "ProtocolConflict"}


def _condition(kind: str, ok: bool, reason: str, message: str = "",
               generation: int = 1) -> dict[str, Any]:
    return {"type": kind, "status": "True" if ok else "False", "reason": reason,
            "message": message, "observedGeneration": generation}


def _served(configs: Iterable[GatewayConfig], ref: ObjectRef) -> bool:
    return any((server.key.gateway == ref.name and server.key.namespace == ref.namespace)
               or ref in server.sources
               for config in configs for listener in config.listeners
               for server in listener.servers)


def gateway_status(res: Resources, key: tuple[str, str], configs: list[GatewayConfig],
                   diagnostics: Iterable[Diagnostic], address: str) -> dict[str, Any] | None:
    gateway = res.gtw_gateways.get(key)
    if gateway is None or not ours(res, gateway.spec.gateway_class_name):
        return None
    namespace, name = key
    generation = 1
    by_object: dict[ObjectRef, list[Diagnostic]] = {}
    for d in diagnostics:
        by_object.setdefault(d.object, []).append(d)
    attached: dict[str, int] = {}
    made = converted(res)
    for vs in made.virtual_services:
        for parent in vs.spec.gateways:
            if _admits(made, parent, vs.metadata.namespace or "") and _hosts_meet(
                    made, parent, vs.spec.hosts):
                attached[parent] = attached.get(parent, 0) + 1
    listeners, programmed_all = [], True
    own = by_object.get(ObjectRef(GATEWAY_KIND, namespace, name), [])
    for i, listener in enumerate(gateway.spec.listeners):
        generated = ObjectRef("Gateway", namespace, generated_name(name, listener.name))
        found = [d for d in own if d.field.startswith(f"spec.listeners[{i}]")]
        elsewhere = certificate_names(res, namespace, listener)[1]
        bad = [d for d in found if d.code in ("CredentialNotFound", "CredentialInvalid")]
        bad_refs = [d.message for d in bad]
        reason = "ResolvedRefs"
        if bad:
            reason = "InvalidCACertificateRef" if any(
                "frontendValidation" in d.field for d in bad) else "InvalidCertificateRef"
        validation = listener.tls.frontend_validation if listener.tls else None
        if validation is not None and not client_cas(res, namespace, validation):
            reason = "InvalidCACertificateRef"
            bad_refs = ["no caCertificateRef is a Secret or ConfigMap this Gateway may use",
                        *bad_refs]
        if elsewhere:
            reason = "RefNotPermitted"
            bad_refs = [f"certificateRefs to {', '.join(elsewhere)} are not permitted: no "
                        "ReferenceGrant in their namespace lets this Gateway use them"]
        conflicts = [d for d in found if d.code in CONFLICTS]
        programmed = _served(configs, generated) and not bad_refs
        programmed_all &= programmed
        conditions = [
            _condition("Accepted", True, "Accepted", generation=generation),
            _condition("ResolvedRefs", not bad_refs, reason, "; ".join(bad_refs), generation),
            _condition("Conflicted", bool(conflicts),
                       CONFLICTS[conflicts[0].code] if conflicts else "NoConflicts",
                       "; ".join(d.message for d in conflicts), generation),
            _condition("Programmed", programmed, "Programmed" if programmed else "Invalid",
                       "" if programmed else "the listener is not served", generation),
        ]
        route_kind = "TLSRoute" if listener.protocol == "TLS" else "HTTPRoute"
        listeners.append({
            "name": listener.name,
            "supportedKinds": [{"group": "gateway.networking.k8s.io", "kind": route_kind}],
            "attachedRoutes": attached.get(f"{generated.namespace}/{generated.name}", 0),
            "conditions": conditions})
    accepted, programmed_reason = ("Accepted", ""), ("Programmed", "")
    if not programmed_all:
        programmed_reason = ("Invalid", "one or more listeners are not served")
    # Addresses asked for: bastion serves where `serve --bind-address` says, nowhere else.
    unsupported = [a.type for a in gateway.spec.addresses if a.type != "IPAddress"]
    elsewhere = [a.value for a in gateway.spec.addresses
                 if a.type == "IPAddress" and a.value != address]
    if unsupported:
        accepted = ("UnsupportedAddress", f"address types {', '.join(unsupported)} are not "
                    "supported; IPAddress is")
    if elsewhere:
        programmed_all = False
        programmed_reason = ("AddressNotAssigned", f"the gateway serves on {address} (serve "
                             f"--bind-address), not {', '.join(elsewhere)}")
    return {
        "addresses": [{"type": "IPAddress", "value": address}],
        "conditions": [
            _condition("Accepted", not unsupported, *accepted, generation),
            _condition("Programmed", programmed_all, *programmed_reason, generation)],
        "listeners": listeners}


def route_status(res: Resources, key: tuple[str, str], kind: str = "HTTPRoute"
                 ) -> dict[str, Any] | None:
    route: gatewayapi.HTTPRoute | gatewayapi.TLSRoute | None = (
        res.tls_routes.get(key) if kind == "TLSRoute" else res.http_routes.get(key))
    if route is None:
        return None
    namespace = key[0]
    refused = [f"{b.namespace or namespace}/{b.name}" for rule in route.spec.rules
               for b in rule.backend_refs if not backend_allowed(res, namespace, b, kind)]
    absent = [f"{b.namespace or namespace}/{b.name}" + (f" port {b.port}" if b.port else "")
              for rule in route.spec.rules for b in rule.backend_refs
              if backend_allowed(res, namespace, b, kind) and not backend_exists(res, namespace,
                                                                                 b)]
    missing = [f"no Service {', '.join(absent)}: its requests are answered 500"] if absent \
        else []
    backend_reason = "RefNotPermitted" if refused else "BackendNotFound"
    if refused:
        missing = [f"backendRefs to {', '.join(refused)} are not permitted: no ReferenceGrant "
                   "in their namespace lets this route use them", *missing]
    made = converted(res)
    listeners = {(g.metadata.namespace or "", g.metadata.name): listener_of(g)
                 for g in made.gateways}
    parents = []
    hostnames = list(route.spec.hostnames) or ["*"]
    for ref in route.spec.parent_refs:
        ref_namespace = ref.namespace or namespace
        matching, taking = parents_of(ref, namespace, kind, listeners)
        allowed = [p for p in taking if _admits(made, p, namespace)]
        meeting = [p for p in allowed if _hosts_meet(made, p, hostnames)]
        reason, message = "Accepted", ""
        if not matching:
            reason, message = "NoMatchingParent", "no listener of a served Gateway matches"
        elif not taking:
            reason, message = ("NotAllowedByListeners",
                               f"no listener takes routes of kind {kind}")
        elif not allowed:
            reason, message = ("NotAllowedByListeners",
                               f"no listener allows routes of namespace {namespace}")
        elif not meeting:
            reason, message = ("NoMatchingListenerHostname",
                               "no listener's hostname matches the route's")
        parent = {"group": ref.group, "kind": ref.kind, "name": ref.name,
                  "namespace": ref_namespace}
        if ref.section_name:
            parent["sectionName"] = ref.section_name
        parents.append({
            "parentRef": parent, "controllerName": CONTROLLER,
            "conditions": [
                _condition("Accepted", bool(meeting), reason, message),
                _condition("ResolvedRefs", not missing,
                           backend_reason if missing else "ResolvedRefs", "; ".join(missing))]})
    return {"parents": parents}


def _admits(made: Converted, parent: str, route_namespace: str) -> bool:
    """Whether the listener of generated Gateway `parent` allows routes of the namespace (its
    server hosts are `namespace/host`, `*/host` for any)."""
    gateway = made.gateway_named.get(parent)
    return gateway is not None and any(
        hosts.split_namespace(h)[0] in ("*", route_namespace)
        for s in gateway.spec.servers for h in s.hosts)


def _hosts_meet(made: Converted, parent: str, hostnames: Iterable[str]) -> bool:
    """Whether a route's hostnames meet the listener hostname of generated Gateway `parent`
    (`ns/name`)."""
    gateway = made.gateway_named.get(parent)
    if gateway is None:
        return False
    listener_hosts = [hosts.split_namespace(h)[1] for s in gateway.spec.servers
                      for h in s.hosts]
    return any(hosts.intersect(a, b) for a in listener_hosts for b in hostnames)
