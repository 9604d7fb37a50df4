"""Gateway API objects to the Istio objects they mean. Each listener of a Gateway becomes a
Gateway of its own (`NAME~LISTENER` + GENERATED), so that a route's `sectionName` binds to one
listener; allowedRoutes become Istio's `namespace/host` server hosts; each HTTPRoute becomes a
VirtualService, each TLSRoute one with `tls` routes; ReferenceGrants decide which
certificateRefs and backendRefs of other namespaces may be used.

Not converted yet, and so not served: BackendTLSPolicies, namespace selectors other than
`kubernetes.io/metadata.name`."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from bastion.api import core, gatewayapi, istio
from bastion.api.base import validate
from bastion.api.kinds import GATEWAY_API
from bastion.diag import Diagnostic, ObjectRef
from bastion.ir.workload import Workload
from bastion.translate.istio.credentials import GATEWAY_PREFIX
from bastion.translate.istio.resources import Resources

# Appended to the names of the Istio objects made from Gateway API objects: no Istio object a
# user writes can be named so (a name has no '~'), so none is ever replaced by one.
GENERATED = "~gateway-api"
LISTENER_SEPARATOR = "~"  # gateway~listener: neither name may hold one
TLS_ROUTE = "~tls"  # a TLSRoute's VirtualService, beside an HTTPRoute of the same name
CONFIGMAP_CA = "~configmap"  # the Secret a ConfigMap's CA is read as
ROUTE_KINDS = "bastion.dev/route-kinds"  # on a generated Gateway: what its listener takes
BUILT_IN_CLASSES = ("istio", "bastion")  # served without a GatewayClass object, as Istio's
METADATA_NAME = "kubernetes.io/metadata.name"
MUTUAL_OPTION = "gateway.istio.io/tls-terminate-mode"


# How findings name a Gateway API Gateway (its kind is also Istio's).
GATEWAY_KIND = f"Gateway.{GATEWAY_API}"
SERVER = re.compile(r"^spec\.servers\[0\]")
SERVER_FIELDS = ((".tls.caCertCredentialName", ".tls.frontendValidation.caCertificateRefs"),
                 (".tls.credentialNames", ".tls.certificateRefs"),
                 (".tls.credentialName", ".tls.certificateRefs"), (".hosts", ".hostname"))
RULE = re.compile(r"^spec\.http\[(\d+)\]")
RULE_FIELDS = ((re.compile(r"\.route\[(\d+)\]\.destination(\.host|\.port)?"),
                r".backendRefs[\1]"), (re.compile(r"\.match\["), ".matches["))


@dataclass(frozen=True)
class Converted:
    gateways: tuple[istio.Gateway, ...]
    virtual_services: tuple[istio.VirtualService, ...]
    destination_rules: tuple[istio.DestinationRule, ...] = ()

    @cached_property
    def gateway_named(self) -> dict[str, istio.Gateway]:
        """The generated Gateways by `namespace/name`, as VirtualServices name them."""
        return {f"{g.metadata.namespace}/{g.metadata.name}": g for g in self.gateways}


def original(diag: Diagnostic, res: Resources) -> Diagnostic:
    """A finding about a generated Istio object, as one about the Gateway API object it was
    made from (its field named in that object's terms)."""
    ref = diag.object
    if not ref.name.endswith(GENERATED):
        return diag
    base = ref.name.removesuffix(GENERATED)
    if ref.kind == "Gateway":
        gateway, _, listener = base.partition(LISTENER_SEPARATOR)
        source = res.gtw_gateways.get((ref.namespace, gateway))
        index = next((i for i, li in enumerate(source.spec.listeners) if li.name == listener),
                     0) if source is not None else 0
        at = SERVER.sub(f"spec.listeners[{index}]", diag.field)
        for before, after in SERVER_FIELDS:
            at = at.replace(before, after)
        return dataclasses.replace(diag, object=ObjectRef(GATEWAY_KIND, ref.namespace, gateway),
                                   field=at)
    if ref.kind == "DestinationRule":
        policy = base.partition(LISTENER_SEPARATOR)[0]
        at = diag.field.replace("spec.trafficPolicy.tls.credentialName",
                                "spec.validation.caCertificateRefs")
        return dataclasses.replace(diag, field=at, object=ObjectRef(
            "BackendTLSPolicy", ref.namespace, policy))
    if ref.kind == "VirtualService" and base.endswith(TLS_ROUTE):
        at = re.sub(r"^spec\.tls\[(\d+)\]\.route\[(\d+)\]\.destination(\.host)?",
                    r"spec.rules[\1].backendRefs[\2]", diag.field)
        return dataclasses.replace(diag, field=at, object=ObjectRef(
            "TLSRoute", ref.namespace, base.removesuffix(TLS_ROUTE)))
    if ref.kind == "VirtualService":
        at = RULE.sub(r"spec.rules[\1]", diag.field)
        for pattern, replacement in RULE_FIELDS:
            at = pattern.sub(replacement, at)
        return dataclasses.replace(diag, object=ObjectRef("HTTPRoute", ref.namespace, base),
                                   field=at)
    return diag


def generated_name(gateway: str, listener: str) -> str:
    return f"{gateway}{LISTENER_SEPARATOR}{listener}{GENERATED}"


def granted(res: Resources, source: tuple[str, str, str], target: tuple[str, str, str, str]
            ) -> bool:
    """Whether a ReferenceGrant lets objects of `source` (group, kind, namespace) refer to
    `target` (group, kind, namespace, name); the same namespace needs none."""
    namespace = source[2]
    to_group, to_kind, to_namespace, to_name = target
    if namespace == to_namespace:
        return True
    return any(
        any((f.group, f.kind, f.namespace) == source for f in grant.spec.from_)
        and any((t.group, t.kind) == (to_group, to_kind) and t.name in (None, to_name)
                for t in grant.spec.to)
        for (ns, _), grant in res.reference_grants.items() if ns == to_namespace)


def certificate_names(res: Resources, namespace: str, listener: gatewayapi.Listener
                      ) -> tuple[list[str], list[str]]:
    """(the credential names of the certificateRefs the listener may use, the refs it may not
    as `namespace/name`)."""
    usable, refused = [], []
    for ref in listener.tls.certificate_refs if listener.tls else []:
        where = ref.namespace or namespace
        # Named with the namespace always: the Gateway's is not the gateway pod's.
        if (ref.group, ref.kind) != ("", "Secret"):
            refused.append(f"{where}/{ref.name}")
        elif granted(res, (GATEWAY_API, "Gateway", namespace), ("", "Secret", where, ref.name)):
            usable.append(f"{GATEWAY_PREFIX}{where}/{ref.name}")
        else:
            refused.append(f"{where}/{ref.name}")
    return usable, refused


def client_cas(res: Resources, namespace: str, validation: gatewayapi.FrontendValidation
               ) -> list[str]:
    """The credential names of the client CAs a listener may use: a Secret's, or a
    ConfigMap's (served as a Secret CONFIGMAP_CA names; see with_gateway_api)."""
    out = []
    for ref in validation.ca_certificate_refs:
        where = ref.namespace or namespace
        if (ref.group, ref.kind) not in (("", "Secret"), ("", "ConfigMap")) or not granted(
                res, (GATEWAY_API, "Gateway", namespace), ("", ref.kind, where, ref.name)):
            continue
        name = ref.name + CONFIGMAP_CA if ref.kind == "ConfigMap" else ref.name
        out.append(f"{GATEWAY_PREFIX}{where}/{name}")
    return out


def backend_allowed(res: Resources, namespace: str, ref: gatewayapi.BackendRef,
                    route_kind: str = "HTTPRoute") -> bool:
    where = ref.namespace or namespace
    return (ref.group, ref.kind) == ("", "Service") and granted(
        res, (GATEWAY_API, route_kind, namespace), ("", "Service", where, ref.name))


def backend_exists(res: Resources, namespace: str, ref: gatewayapi.BackendRef) -> bool:
    """A Service of that name (with that port) in its namespace."""
    service = res.services.get((ref.namespace or namespace, ref.name))
    return service is not None and (ref.port is None or any(
        p.port == ref.port for p in service.spec.ports))


def usable(res: Resources, namespace: str, ref: gatewayapi.BackendRef,
           route_kind: str = "HTTPRoute") -> bool:
    """A backend a route's traffic may go to: a granted Service that exists (the others get
    no share; with none left, the Gateway API answers 500)."""
    return (ref.weight > 0 and backend_allowed(res, namespace, ref, route_kind)
            and backend_exists(res, namespace, ref))


def ours(res: Resources, class_name: str) -> bool:
    gateway_class = res.gateway_classes.get(("", class_name))
    if gateway_class is not None:
        return gateway_class.spec.controller_name in gatewayapi.CONTROLLERS
    return class_name in BUILT_IN_CLASSES


def converted(res: Resources) -> Converted:
    gateways: list[istio.Gateway] = []
    for (namespace, name), gateway in sorted(res.gtw_gateways.items()):
        if ours(res, gateway.spec.gateway_class_name):
            gateways.extend(_gateways(res, namespace, name, gateway))
    listeners = {(g.metadata.namespace or "", g.metadata.name): listener_of(g)
                 for g in gateways}
    services = [vs for key, route in sorted(res.http_routes.items())
                for vs in _virtual_services(res, key, route, listeners)]
    services += [vs for key, tls_route in sorted(res.tls_routes.items())
                 for vs in _passthrough_services(res, key, tls_route, listeners)]
    rules = [rule for key, policy in sorted(res.backend_tls_policies.items())
             for rule in _backend_tls(res, key, policy)]
    return Converted(tuple(gateways), tuple(services), tuple(rules))


def with_gateway_api(res: Resources) -> Resources:
    """`res` with the Istio objects the Gateway API objects mean (itself when there are
    none)."""
    if not (res.gtw_gateways or res.backend_tls_policies):
        return res
    made = converted(res)
    if not (made.gateways or made.destination_rules):
        return res
    overlay = dataclasses.replace(res, gateways=dict(res.gateways),
                                  virtual_services=dict(res.virtual_services),
                                  vs_by_gateway=dict(res.vs_by_gateway),
                                  files_by_object=dict(res.files_by_object),
                                  secrets=dict(res.secrets),
                                  destination_rules=dict(res.destination_rules),
                                  rules_by_host=dict(res.rules_by_host))
    for model in (*made.gateways, *made.virtual_services, *made.destination_rules,
                  *_config_map_cas(res)):
        overlay.put(model)
    return overlay


def _backend_tls(res: Resources, key: tuple[str, str], policy: gatewayapi.BackendTLSPolicy
                 ) -> Iterator[istio.DestinationRule]:
    """A BackendTLSPolicy as the DestinationRule it means: TLS to each Service it targets,
    with its hostname as SNI and (without subjectAltNames) as the name to verify, and its CA
    (or the system's trust store for `wellKnownCACertificates: System`)."""
    namespace, name = key
    validation = policy.spec.validation
    sans = [s.get("hostname") or s.get("uri") for s in validation.subject_alt_names]
    tls: dict[str, Any] = {"mode": "SIMPLE", "sni": validation.hostname,
                           "subjectAltNames": [s for s in sans if s] or [validation.hostname]}
    refs = validation.ca_certificate_refs
    if refs:
        ref = refs[0]
        kind, ref_name = ref.get("kind", ""), ref.get("name", "")
        if (ref.get("group", ""), kind) not in (("", "ConfigMap"), ("", "Secret")):
            return
        tls["credentialName"] = ref_name + CONFIGMAP_CA if kind == "ConfigMap" else ref_name
    for target in policy.spec.target_refs:
        if (target.group, target.kind) != ("", "Service"):
            continue
        yield validate(istio.DestinationRule, {
            "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
            "metadata": {"name": f"{name}{LISTENER_SEPARATOR}{target.name}{GENERATED}",
                         "namespace": namespace,
                         "creationTimestamp": policy.metadata.creation_timestamp},
            "spec": {"host": target.name, "trafficPolicy": {"tls": tls}}})


def _config_map_cas(res: Resources) -> Iterator[core.Secret]:
    """Every ConfigMap holding `ca.crt`, as the Secret (`NAME` + CONFIGMAP_CA) a listener's
    client CA is read from, since credentials are read from Secrets."""
    for (namespace, name), config_map in sorted(res.config_maps.items()):
        if "ca.crt" in config_map.data:
            yield validate(core.Secret, {
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": name + CONFIGMAP_CA, "namespace": namespace},
                "stringData": {"ca.crt": config_map.data["ca.crt"]}})


def _gateways(res: Resources, namespace: str, name: str, gateway: gatewayapi.Gateway
              ) -> Iterator[istio.Gateway]:
    selector = (gateway.spec.infrastructure.labels if gateway.spec.infrastructure
                and gateway.spec.infrastructure.labels else Workload().label_map)
    for listener in gateway.spec.listeners:
        server = _server(res, namespace, listener)
        if server is None:
            continue
        yield validate(istio.Gateway, {
            "apiVersion": "networking.istio.io/v1", "kind": "Gateway",
            "metadata": {"name": generated_name(name, listener.name), "namespace": namespace,
                         "creationTimestamp": gateway.metadata.creation_timestamp,
                         "annotations": {"gateway.networking.k8s.io/gateway": name,
                                         ROUTE_KINDS: ",".join(route_kinds(listener))}},
            "spec": {"selector": selector, "servers": [server]}})


def _server(res: Resources, namespace: str, listener: gatewayapi.Listener
            ) -> dict[str, Any] | None:
    host = listener.hostname or "*"
    allowed = listener.allowed_routes.namespaces
    if allowed.from_ == "None":
        return None
    if allowed.from_ == "All":
        hosts = [f"*/{host}"]
    elif allowed.from_ == "Selector":
        chosen = _selected_namespaces(res, allowed.selector)
        if not chosen:
            return None  # no namespace may attach routes: nothing to serve
        hosts = [f"{ns}/{host}" for ns in chosen]
    else:
        hosts = [f"{namespace}/{host}"]
    port = {"number": listener.port, "name": listener.name, "protocol": listener.protocol}
    tls = listener.tls
    if listener.protocol == "HTTP" or tls is None:
        return {"port": port, "hosts": hosts}
    if tls.mode == "Passthrough":
        return {"port": port, "hosts": hosts, "tls": {"mode": "PASSTHROUGH"}}
    names = certificate_names(res, namespace, listener)[0]
    mutual = tls.options.get(MUTUAL_OPTION) == "MUTUAL" or tls.frontend_validation is not None
    settings: dict[str, Any] = {"mode": "MUTUAL" if mutual else "SIMPLE"}
    validation = tls.frontend_validation
    if validation is not None:
        cas = client_cas(res, namespace, validation)
        if not cas:
            return None  # no CA it may use: not served (its status says why)
        settings["caCertCredentialName"] = cas[0]
        if validation.mode == "AllowInsecureFallback":  # a client without a certificate too
            settings["mode"] = "OPTIONAL_MUTUAL"
    if not names:
        return None  # no certificate it may use: not served (its status says why)
    if len(names) == 1:
        settings["credentialName"] = names[0]
    else:
        settings["credentialNames"] = names
    return {"port": port, "hosts": hosts, "tls": settings}


def _selected_namespaces(res: Resources, selector: gatewayapi.LabelSelector | None
                         ) -> list[str]:
    """The namespaces a listener's selector picks: every Namespace object whose labels match
    (each has `kubernetes.io/metadata.name`, as Kubernetes sets it), and the namespace a
    selector names by that label even without a Namespace object."""
    if selector is None:
        return []
    labelled = {name: {**ns.metadata.labels, METADATA_NAME: name}
                for (_, name), ns in res.namespaces.items()}
    named = selector.match_labels.get(METADATA_NAME)
    if named is not None:
        labelled.setdefault(named, {METADATA_NAME: named})
    return sorted(n for n, labels in labelled.items() if _selects(selector, labels))


def _selects(selector: gatewayapi.LabelSelector, labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.match_labels.items()):
        return False
    for expression in selector.match_expressions:
        key, operator = expression.get("key", ""), expression.get("operator", "")
        values = set(expression.get("values") or [])
        present = key in labels
        if not {"In": present and labels.get(key) in values,
                "NotIn": not present or labels.get(key) not in values,
                "Exists": present, "DoesNotExist": not present}.get(operator, False):
            return False
    return True


def route_kinds(listener: gatewayapi.Listener) -> list[str]:
    """The route kinds a listener takes: its allowedRoutes' kinds, or its protocol's."""
    if listener.allowed_routes.kinds:
        return [k.kind for k in listener.allowed_routes.kinds if k.group == GATEWAY_API]
    return {"HTTP": ["HTTPRoute"], "HTTPS": ["HTTPRoute"], "TLS": ["TLSRoute"]}.get(
        listener.protocol, [])


def listener_of(gateway: istio.Gateway) -> tuple[int, list[str]]:
    """(port, route kinds) of the listener a generated Gateway was made of."""
    kinds = gateway.metadata.annotations.get(ROUTE_KINDS, "")
    return gateway.spec.servers[0].port.number, [k for k in kinds.split(",") if k]


def parents_of(ref: gatewayapi.ParentReference, route_namespace: str, route_kind: str,
               listeners: dict[tuple[str, str], tuple[int, list[str]]]
               ) -> tuple[list[str], list[str]]:
    """(the generated Gateways, `ns/name`, a parentRef names; those of them whose listener
    takes routes of this kind)."""
    if (ref.group, ref.kind) != (GATEWAY_API, "Gateway"):
        return [], []
    namespace = ref.namespace or route_namespace
    prefix = f"{ref.name}{LISTENER_SEPARATOR}"
    named, taking = [], []
    for (ns, name), (port, kinds) in sorted(listeners.items()):
        if ns != namespace or not name.startswith(prefix):
            continue
        listener = name[len(prefix):-len(GENERATED)]
        if ref.section_name not in (None, listener) or ref.port not in (None, port):
            continue
        named.append(f"{ns}/{name}")
        if route_kind in kinds:
            taking.append(f"{ns}/{name}")
    return named, taking


def _parents(route_namespace: str, route: gatewayapi.HTTPRoute | gatewayapi.TLSRoute,
             listeners: dict[tuple[str, str], tuple[int, list[str]]]) -> list[str]:
    """The generated Gateways (`ns/name`) the route attaches to."""
    kind = "TLSRoute" if isinstance(route, gatewayapi.TLSRoute) else "HTTPRoute"
    return [p for ref in route.spec.parent_refs
            for p in parents_of(ref, route_namespace, kind, listeners)[1]]


def _virtual_services(res: Resources, key: tuple[str, str], route: gatewayapi.HTTPRoute,
                      listeners: dict[tuple[str, str], tuple[int, list[str]]]
                      ) -> Iterator[istio.VirtualService]:
    namespace, name = key
    parents = _parents(namespace, route, listeners)
    if not parents:
        return
    rules = [_rule(res, namespace, rule) for rule in route.spec.rules]
    yield validate(istio.VirtualService, {
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": name + GENERATED, "namespace": namespace,
                     "creationTimestamp": route.metadata.creation_timestamp,
                     "annotations": {"gateway.networking.k8s.io/httproute": name}},
        "spec": {"hosts": list(route.spec.hostnames) or ["*"], "gateways": parents,
                 "http": rules}})


def _passthrough_services(res: Resources, key: tuple[str, str], route: gatewayapi.TLSRoute,
                          listeners: dict[tuple[str, str], tuple[int, list[str]]]
                          ) -> Iterator[istio.VirtualService]:
    """A TLSRoute: connections whose SNI is one of its hostnames passed through, still
    encrypted, to its backends."""
    namespace, name = key
    parents = _parents(namespace, route, listeners)
    hostnames = list(route.spec.hostnames) or ["*"]
    if not parents:
        return
    rules = [{"match": [{"sniHosts": hostnames}],
              "route": [{"destination": _destination(namespace, b), "weight": b.weight}
                        for b in rule.backend_refs if usable(res, namespace, b, "TLSRoute")]}
             for rule in route.spec.rules]
    yield validate(istio.VirtualService, {
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": name + TLS_ROUTE + GENERATED, "namespace": namespace,
                     "creationTimestamp": route.metadata.creation_timestamp,
                     "annotations": {"gateway.networking.k8s.io/tlsroute": name}},
        "spec": {"hosts": hostnames, "gateways": parents,
                 "tls": [r for r in rules if r["route"]]}})


def _string(kind: str, value: str) -> dict[str, str]:
    return {"regex": value} if kind == "RegularExpression" else {
        "prefix" if kind == "PathPrefix" else "exact": value}


def _rule(res: Resources, namespace: str, rule: gatewayapi.HTTPRouteRule) -> dict[str, Any]:
    out: dict[str, Any] = {}
    matches = []
    for match in rule.matches:
        m: dict[str, Any] = {}
        if match.path is not None:
            m["uri"] = _string(match.path.type, match.path.value)
        if match.headers:
            m["headers"] = {h.name.lower(): _string(h.type, h.value) for h in match.headers}
        if match.query_params:
            m["queryParams"] = {q.name: _string(q.type, q.value) for q in match.query_params}
        if match.method:
            m["method"] = {"exact": match.method}
        matches.append(m)
    if matches:
        out["match"] = matches
    headers: dict[str, Any] = {}
    for flt in rule.filters:
        if flt.request_header_modifier is not None:
            headers["request"] = _header_ops(flt.request_header_modifier)
        elif flt.response_header_modifier is not None:
            headers["response"] = _header_ops(flt.response_header_modifier)
        elif flt.request_redirect is not None:
            out["redirect"] = _redirect(flt.request_redirect)
        elif flt.url_rewrite is not None:
            rewrite: dict[str, Any] = {}
            if flt.url_rewrite.hostname:
                rewrite["authority"] = flt.url_rewrite.hostname
            path = flt.url_rewrite.path
            if path is not None:
                rewrite["uri"] = path.replace_prefix_match if path.type == \
                    "ReplacePrefixMatch" else path.replace_full_path
            out["rewrite"] = rewrite
        elif flt.request_mirror is not None:
            mirror = flt.request_mirror
            percent = mirror.percent if mirror.percent is not None else (
                100.0 * mirror.fraction.numerator / mirror.fraction.denominator
                if mirror.fraction else 100.0)
            out.setdefault("mirrors", []).append({
                "destination": _destination(namespace, mirror.backend_ref),
                "percentage": {"value": percent}})
    if headers:
        out["headers"] = headers
    if "redirect" not in out:
        # A backend the route may not refer to gets no share (Gateway API: its requests 500).
        out["route"] = [{"destination": _destination(namespace, b), "weight": b.weight}
                        for b in rule.backend_refs if usable(res, namespace, b)] or None
        if out["route"] is None:  # no backend: Gateway API answers 500
            del out["route"]
            out["directResponse"] = {"status": 500}
    if rule.timeouts is not None and rule.timeouts.request:
        out["timeout"] = rule.timeouts.request
    return out


def _destination(namespace: str, ref: gatewayapi.BackendRef) -> dict[str, Any]:
    host = ref.name if (ref.namespace or namespace) == namespace else \
        f"{ref.name}.{ref.namespace}.svc.cluster.local"
    out: dict[str, Any] = {"host": host}
    if ref.port is not None:
        out["port"] = {"number": ref.port}
    return out


def _header_ops(modifier: gatewayapi.HeaderModifier) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if modifier.set:
        out["set"] = {h.name: h.value for h in modifier.set}
    if modifier.add:
        out["add"] = {h.name: h.value for h in modifier.add}
    if modifier.remove:
        out["remove"] = list(modifier.remove)
    return out


def _redirect(redirect: gatewayapi.RequestRedirect) -> dict[str, Any]:
    out: dict[str, Any] = {"redirectCode": redirect.status_code}
    if redirect.scheme:
        out["scheme"] = redirect.scheme
    if redirect.hostname:
        out["authority"] = redirect.hostname
    if redirect.port:
        out["port"] = redirect.port
    path = redirect.path
    if path is not None and path.type == "ReplaceFullPath" and path.replace_full_path:
        out["uri"] = path.replace_full_path
    elif path is not None and path.replace_prefix_match is not None:
        out["prefixRewrite"] = path.replace_prefix_match
    return out
