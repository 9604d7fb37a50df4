"""Admission: turn one raw object (a dict from YAML or JSON) into a stored form, or refuse it with
one line naming the object and the field.

Pure: no I/O, no clock. The server calls it for every write; `bastion translate` and `analyze` call
it offline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from bastion.api import certmanager, core, gatewayapi, istio, validation
from bastion.api.base import validate
from bastion.api.kinds import (
    ACME,
    CERT_MANAGER,
    GATEWAY_API,
    ISTIO_NETWORKING,
    KindInfo,
    info_for,
    kind_info,
    split_api_version,
)
from bastion.diag import Diagnostic, ObjectRef, Severity, one_line
from bastion.store.keys import StoreKey

MODELS: dict[tuple[str, str], type[Any]] = {
    (ISTIO_NETWORKING, "Gateway"): istio.Gateway,
    (ISTIO_NETWORKING, "VirtualService"): istio.VirtualService,
    (ISTIO_NETWORKING, "ServiceEntry"): istio.ServiceEntry,
    (ISTIO_NETWORKING, "DestinationRule"): istio.DestinationRule,
    ("", "Secret"): core.Secret,
    ("", "ConfigMap"): core.ConfigMap,
    ("", "Namespace"): core.Namespace,
    ("", "Service"): core.Service,
    ("", "Endpoints"): core.Endpoints,
    ("", "Pod"): core.Pod,
    ("discovery.k8s.io", "EndpointSlice"): core.EndpointSlice,
    (CERT_MANAGER, "Certificate"): certmanager.Certificate,
    (CERT_MANAGER, "Issuer"): certmanager.Issuer,
    (CERT_MANAGER, "ClusterIssuer"): certmanager.ClusterIssuer,
    (ACME, "Challenge"): certmanager.Challenge,
    (GATEWAY_API, "GatewayClass"): gatewayapi.GatewayClass,
    (GATEWAY_API, "Gateway"): gatewayapi.Gateway,
    (GATEWAY_API, "HTTPRoute"): gatewayapi.HTTPRoute,
    (GATEWAY_API, "TLSRoute"): gatewayapi.TLSRoute,
    (GATEWAY_API, "ReferenceGrant"): gatewayapi.ReferenceGrant,
    (GATEWAY_API, "BackendTLSPolicy"): gatewayapi.BackendTLSPolicy,
}

SEMANTIC_CHECKS: dict[type, Callable[[Any], Iterator[validation.Problem]]] = {
    istio.Gateway: validation.gateway_problems,
    istio.VirtualService: validation.virtual_service_problems,
    istio.ServiceEntry: validation.service_entry_problems,
    istio.DestinationRule: validation.destination_rule_problems,
    certmanager.Certificate: validation.certificate_problems,
    certmanager.Issuer: validation.issuer_problems,
    certmanager.ClusterIssuer: validation.issuer_problems,
    gatewayapi.Gateway: validation.gateway_api_gateway_problems,
    gatewayapi.HTTPRoute: validation.http_route_problems,
    gatewayapi.TLSRoute: validation.tls_route_problems,
    gatewayapi.BackendTLSPolicy: validation.backend_tls_policy_problems,
}


@dataclass(frozen=True)
class Admitted:
    key: StoreKey
    info: KindInfo
    body: dict[str, Any]  # normalised: namespace set, Secret stringData folded into data
    model: Any  # typed view for kinds bastion acts on, None for the others
    warnings: tuple[Diagnostic, ...] = ()


@dataclass(frozen=True)
class Refused:
    ref: ObjectRef
    problems: tuple[Diagnostic, ...]

    @property
    def message(self) -> str:
        """One line: the object once, then each field and its reason."""
        details = "; ".join(f"{p.field}: {p.message}" if p.field else p.message
                            for p in self.problems)
        return one_line(f"{self.ref}: {details}")


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    if kind in ("missing", "missing_keyword_only_argument", "missing_argument"):
        return "required"
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        return "unknown field"
    if kind == "too_short":
        return "at least one value is required"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message[0].lower() + message[1:] if message else message


def pydantic_problems(ref: ObjectRef, exc: ValidationError) -> Iterator[Diagnostic]:
    for error in exc.errors():
        loc = tuple(p for p in error["loc"] if not str(p).startswith("function-"))
        yield Diagnostic(ref, _path(loc), "Invalid", _message(error))


MAX_DEPTH = 64


def _too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Iteratively, so hostile nesting cannot exhaust the stack here or later."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return False


def admit(raw: Any, default_namespace: str = "default") -> Admitted | Refused:
    """Validate one object. Unknown kinds are admitted as stored-only."""
    if isinstance(raw, dict) and _too_deep(raw):
        ref = ObjectRef(str(raw.get("kind") or "<unknown>"), "", "<unnamed>")
        return Refused(ref, (Diagnostic(ref, "", "Invalid",
                                        f"nested more than {MAX_DEPTH} levels deep"),))
    if not isinstance(raw, dict):
        ref = ObjectRef("<unknown>", "", "<unnamed>")
        return Refused(ref, (Diagnostic(ref, "", "Invalid", "an object must be a mapping"),))
    api_version = raw.get("apiVersion")
    kind = raw.get("kind")
    given = raw.get("metadata")
    metadata: dict[str, Any] = given if isinstance(given, dict) else {}
    name = metadata.get("name") if isinstance(metadata.get("name"), str) else ""
    shown_kind = kind if isinstance(kind, str) and kind else "<unknown>"
    if not isinstance(api_version, str) or not api_version:
        ref = ObjectRef(shown_kind, "", name or "<unnamed>")
        return Refused(ref, (Diagnostic(ref, "apiVersion", "Invalid", "required"),))
    if not isinstance(kind, str) or not kind:
        ref = ObjectRef(shown_kind, "", name or "<unnamed>")
        return Refused(ref, (Diagnostic(ref, "kind", "Invalid", "required"),))
    group, version = split_api_version(api_version)
    info = kind_info(group, kind)
    namespace = ""
    if info.namespaced:
        namespace = metadata.get("namespace") or default_namespace
    ref = ObjectRef(kind, namespace, name or "<unnamed>")
    if not name:
        return Refused(ref, (Diagnostic(ref, "metadata.name", "Invalid", "required"),))
    if not validation.DNS1123_SUBDOMAIN.match(name) or len(name) > 253:
        return Refused(ref, (Diagnostic(
            ref, "metadata.name", "Invalid",
            "must be a lower-case DNS-1123 subdomain (letters, digits, '-', '.')"),))
    if info_for(group, kind) is not None and version not in info.versions:
        return Refused(ref, (Diagnostic(
            ref, "apiVersion", "Invalid",
            f"version {version!r} is not served; use one of {', '.join(info.versions)}"),))

    body = dict(raw)
    body["metadata"] = {**metadata, "namespace": namespace} if namespace else dict(metadata)
    if not namespace:
        body["metadata"].pop("namespace", None)
    body.pop("status", None)
    model_type = MODELS.get((group, kind))
    if model_type is None:
        return Admitted(StoreKey(group, kind, namespace, name), info, body, None)
    try:
        model = validate(model_type, body)
    except ValidationError as exc:
        return Refused(ref, tuple(pydantic_problems(ref, exc)))
    problems = [Diagnostic(ref, p.at, "Invalid", p.message,
                           Severity.WARNING if p.warning else Severity.ERROR)
                for p in _semantic(model)]
    if isinstance(model, core.Secret):
        body, model, secret_problems = _normalise_secret(ref, body, model)
        problems.extend(secret_problems)
    errors = tuple(p for p in problems if p.severity == Severity.ERROR)
    if errors:
        return Refused(ref, errors)
    warnings = tuple(p for p in problems if p.severity != Severity.ERROR)
    return Admitted(StoreKey(group, kind, namespace, name), info, body, model, warnings)


def admit_all(objects: Iterable[Any]) -> tuple[list[Any], list[str]]:
    """Offline admission of a whole manifest: the models of the kinds bastion acts on, and one
    line for every object refused."""
    models, refused = [], []
    for obj in objects:
        verdict = admit(obj)
        if isinstance(verdict, Refused):
            refused.append(verdict.message)
        elif verdict.model is not None:
            models.append(verdict.model)
    return models, refused


def _semantic(model: object) -> Iterator[validation.Problem]:
    check = SEMANTIC_CHECKS.get(type(model))
    if check is not None:
        yield from check(model)


def _normalise_secret(
    ref: ObjectRef, body: dict[str, Any], secret: core.Secret
) -> tuple[dict[str, Any], core.Secret, list[Diagnostic]]:
    """Fold stringData into data as the API server does, and apply the tls type's key rule."""
    entries = secret.entries()
    problems = []
    if secret.type == core.TLS_SECRET_TYPE:
        for key in ("tls.crt", "tls.key"):
            if key not in entries:
                problems.append(Diagnostic(ref, f"data[{key}]", "Invalid",
                                           f"required for a Secret of type {secret.type}"))
    data = dict(sorted(secret.encoded().items()))
    body = {k: v for k, v in body.items() if k != "stringData"}
    body["data"] = data
    body.setdefault("type", secret.type)
    return body, validate(core.Secret, body), problems


def secret_use_warnings(secret: core.Secret) -> list[str]:
    """What `create secret` warns about: names and keys a gateway will never use (Istio's rules)."""
    name = secret.metadata.name
    warnings = []
    if name.startswith(("istio", "prometheus")):
        warnings.append(
            f"secret {name!r}: names starting with 'istio' or 'prometheus' are never used by a "
            "gateway")
    if "token" in secret.entries():
        warnings.append(f"secret {name!r}: a secret with a 'token' key is never used by a gateway")
    return warnings
