"""The Kubernetes Gateway API (`gateway.networking.k8s.io`, v1 and the v1beta1/v1alpha2
versions still in use): GatewayClass, Gateway, HTTPRoute, TLSRoute, ReferenceGrant and
BackendTLSPolicy, as their CRDs' schemas describe them. Fields outside the schema are refused,
as the API server refuses them."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from bastion.api.base import ObjectMeta, lenient, strict

# The controller names a GatewayClass may ask for: bastion's own, and Istio's.
CONTROLLERS = ("bastion.dev/gateway-controller", "istio.io/gateway-controller")


@strict
class ParametersRef:
    group: str
    kind: str
    name: str
    namespace: str | None = None


@strict
class GatewayClassSpec:
    controller_name: str = Field(min_length=1)
    parameters_ref: ParametersRef | None = None
    description: str | None = None


@lenient
class GatewayApiObject:
    api_version: str
    kind: str
    metadata: ObjectMeta


@lenient
class GatewayClass(GatewayApiObject):
    spec: GatewayClassSpec


@strict
class SecretObjectReference:
    name: str = Field(min_length=1)
    group: str = ""
    kind: str = "Secret"
    namespace: str | None = None


@strict
class FrontendValidation:
    ca_certificate_refs: list[SecretObjectReference] = Field(default_factory=list)
    mode: str = "AllowValidOnly"


@strict
class ListenerTLS:
    mode: str = "Terminate"
    certificate_refs: list[SecretObjectReference] = Field(default_factory=list)
    options: dict[str, str] = Field(default_factory=dict)
    frontend_validation: FrontendValidation | None = None


@strict
class LabelSelector:
    match_labels: dict[str, str] = Field(default_factory=dict)
    match_expressions: list[dict[str, Any]] = Field(default_factory=list)


@strict
class RouteNamespaces:
    # cf. the CRD: "Same" by default
    from_: str = Field(default="Same", alias="from")
    selector: LabelSelector | None = None


@strict
class RouteGroupKind:
    kind: str
    group: str = "gateway.networking.k8s.io"


@strict
class AllowedRoutes:
    namespaces: RouteNamespaces = Field(default_factory=RouteNamespaces)
    kinds: list[RouteGroupKind] = Field(default_factory=list)


@strict
class Listener:
    name: str = Field(min_length=1, max_length=253)
    port: int = Field(ge=1, le=65535)
    protocol: str = Field(min_length=1)
    hostname: str | None = None
    tls: ListenerTLS | None = None
    allowed_routes: AllowedRoutes = Field(default_factory=AllowedRoutes)


@strict
class GatewayAddress:
    value: str = Field(min_length=1)
    type: str = "IPAddress"


@strict
class GatewayInfrastructure:
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    parameters_ref: ParametersRef | None = None


@strict
class GatewaySpec:
    gateway_class_name: str = Field(min_length=1)
    listeners: list[Listener] = Field(min_length=1, max_length=64)
    addresses: list[GatewayAddress] = Field(default_factory=list)
    infrastructure: GatewayInfrastructure | None = None
    tls: dict[str, Any] | None = None  # Gateway-level TLS (frontend validation, newer API)
    allowed_listeners: dict[str, Any] | None = None


@lenient
class Gateway(GatewayApiObject):
    spec: GatewaySpec


@strict
class ParentReference:
    name: str = Field(min_length=1)
    group: str = "gateway.networking.k8s.io"
    kind: str = "Gateway"
    namespace: str | None = None
    section_name: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)


@strict
class PathMatch:
    type: str = "PathPrefix"
    value: str = "/"


@strict
class NameValueMatch:
    name: str = Field(min_length=1)
    value: str
    type: str = "Exact"


@strict
class HTTPRouteMatch:
    path: PathMatch | None = None
    headers: list[NameValueMatch] = Field(default_factory=list)
    query_params: list[NameValueMatch] = Field(default_factory=list)
    method: str | None = None


@strict
class HTTPHeader:
    name: str = Field(min_length=1)
    value: str


@strict
class HeaderModifier:
    set: list[HTTPHeader] = Field(default_factory=list)
    add: list[HTTPHeader] = Field(default_factory=list)
    remove: list[str] = Field(default_factory=list)


@strict
class PathModifier:
    type: str
    replace_full_path: str | None = None
    replace_prefix_match: str | None = None


@strict
class RequestRedirect:
    scheme: str | None = None
    hostname: str | None = None
    path: PathModifier | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    status_code: int = 302


@strict
class URLRewrite:
    hostname: str | None = None
    path: PathModifier | None = None


@strict
class BackendRef:
    name: str = Field(min_length=1)
    group: str = ""
    kind: str = "Service"
    namespace: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    weight: int = Field(default=1, ge=0, le=1_000_000)
    filters: list[dict[str, Any]] = Field(default_factory=list)


@strict
class Fraction:
    numerator: int = Field(ge=0)
    denominator: int = Field(default=100, ge=1)


@strict
class RequestMirror:
    backend_ref: BackendRef
    percent: int | None = Field(default=None, ge=0, le=100)
    fraction: Fraction | None = None


@strict
class HTTPRouteFilter:
    type: str
    request_header_modifier: HeaderModifier | None = None
    response_header_modifier: HeaderModifier | None = None
    request_redirect: RequestRedirect | None = None
    url_rewrite: URLRewrite | None = Field(default=None, alias="urlRewrite")
    request_mirror: RequestMirror | None = None
    extension_ref: dict[str, Any] | None = None
    cors: dict[str, Any] | None = None


@strict
class HTTPRouteTimeouts:
    request: str | None = None
    backend_request: str | None = None


@strict
class HTTPRouteRule:
    name: str | None = None
    matches: list[HTTPRouteMatch] = Field(default_factory=list, max_length=64)
    filters: list[HTTPRouteFilter] = Field(default_factory=list, max_length=16)
    backend_refs: list[BackendRef] = Field(default_factory=list)
    timeouts: HTTPRouteTimeouts | None = None
    retry: dict[str, Any] | None = None
    session_persistence: dict[str, Any] | None = None


@strict
class CommonRouteSpec:
    """What every route kind has: its parents and its hostnames."""

    parent_refs: list[ParentReference] = Field(default_factory=list, max_length=32)
    hostnames: list[str] = Field(default_factory=list, max_length=16)


@strict
class HTTPRouteSpec(CommonRouteSpec):
    rules: list[HTTPRouteRule] = Field(default_factory=list, max_length=16)


@lenient
class HTTPRoute(GatewayApiObject):
    spec: HTTPRouteSpec


@strict
class TLSRouteRule:
    name: str | None = None
    backend_refs: list[BackendRef] = Field(default_factory=list)


@strict
class TLSRouteSpec(CommonRouteSpec):
    rules: list[TLSRouteRule] = Field(default_factory=list, max_length=16)


@lenient
class TLSRoute(GatewayApiObject):
    spec: TLSRouteSpec


@strict
class ReferenceGrantFrom:
    group: str
    kind: str
    namespace: str


@strict
class ReferenceGrantTo:
    group: str
    kind: str
    name: str | None = None


@strict
class ReferenceGrantSpec:
    from_: list[ReferenceGrantFrom] = Field(alias="from", min_length=1)
    to: list[ReferenceGrantTo] = Field(min_length=1)


@lenient
class ReferenceGrant(GatewayApiObject):
    spec: ReferenceGrantSpec


@strict
class PolicyTargetReference:
    group: str
    kind: str
    name: str
    section_name: str | None = None


@strict
class BackendTLSValidation:
    hostname: str = Field(min_length=1)
    ca_certificate_refs: list[dict[str, Any]] = Field(default_factory=list)
    well_known_ca_certificates: str | None = Field(default=None,
                                                   alias="wellKnownCACertificates")
    subject_alt_names: list[dict[str, Any]] = Field(default_factory=list)


@strict
class BackendTLSPolicySpec:
    target_refs: list[PolicyTargetReference] = Field(min_length=1)
    validation: BackendTLSValidation
    options: dict[str, str] = Field(default_factory=dict)


@lenient
class BackendTLSPolicy(GatewayApiObject):
    spec: BackendTLSPolicySpec
