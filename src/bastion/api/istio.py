"""Models of the networking.istio.io resources bastion acts on (v1, v1beta1 and v1alpha3 share a
schema). Fields bastion does not implement are still declared, so valid Istio YAML is accepted and
the translator can say precisely which setting it ignores."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field, model_validator

from bastion.api.base import ObjectMeta, strict


class TLSMode(StrEnum):
    PASSTHROUGH = "PASSTHROUGH"
    SIMPLE = "SIMPLE"
    MUTUAL = "MUTUAL"
    AUTO_PASSTHROUGH = "AUTO_PASSTHROUGH"
    ISTIO_MUTUAL = "ISTIO_MUTUAL"
    OPTIONAL_MUTUAL = "OPTIONAL_MUTUAL"


class TLSProtocol(StrEnum):
    TLS_AUTO = "TLS_AUTO"
    TLSV1_0 = "TLSV1_0"
    TLSV1_1 = "TLSV1_1"
    TLSV1_2 = "TLSV1_2"
    TLSV1_3 = "TLSV1_3"


@strict
class Port:
    number: int = Field(ge=0, le=65535)
    protocol: str
    name: str
    target_port: int | None = None


@strict
class TLSCertificate:
    server_certificate: str | None = None
    private_key: str | None = None
    ca_certificates: str | None = None


@strict
class ServerTLSSettings:
    https_redirect: bool = False
    mode: TLSMode = TLSMode.PASSTHROUGH
    server_certificate: str | None = None
    private_key: str | None = None
    ca_certificates: str | None = None
    credential_name: str | None = None
    credential_names: list[str] = Field(default_factory=list)
    ca_cert_credential_name: str | None = None
    tls_certificates: list[TLSCertificate] = Field(default_factory=list)
    subject_alt_names: list[str] = Field(default_factory=list)
    verify_certificate_spki: list[str] = Field(default_factory=list)
    verify_certificate_hash: list[str] = Field(default_factory=list)
    min_protocol_version: TLSProtocol = TLSProtocol.TLS_AUTO
    max_protocol_version: TLSProtocol = TLSProtocol.TLS_AUTO
    cipher_suites: list[str] = Field(default_factory=list)
    ecdh_curves: list[str] = Field(default_factory=list)
    ca_crl: str | None = None
    insecure_skip_verify: bool | None = None


@strict
class Server:
    port: Port
    bind: str | None = None
    hosts: list[str] = Field(min_length=1)
    tls: ServerTLSSettings | None = None
    name: str | None = None
    default_endpoint: str | None = None


@strict
class GatewaySpec:
    servers: list[Server] = Field(min_length=1)
    selector: dict[str, str] = Field(default_factory=dict)


@strict
class StringMatch:
    exact: str | None = None
    prefix: str | None = None
    regex: str | None = None

    @model_validator(mode="after")
    def _one_of(self) -> StringMatch:
        set_fields = [f for f in ("exact", "prefix", "regex") if getattr(self, f) is not None]
        if len(set_fields) > 1:
            raise ValueError(f"only one of exact, prefix, regex may be set (got {set_fields})")
        return self


@strict
class HTTPMatchRequest:
    name: str | None = None
    uri: StringMatch | None = None
    scheme: StringMatch | None = None
    method: StringMatch | None = None
    authority: StringMatch | None = None
    headers: dict[str, StringMatch] = Field(default_factory=dict)
    port: int | None = None
    source_labels: dict[str, str] = Field(default_factory=dict)
    gateways: list[str] = Field(default_factory=list)
    query_params: dict[str, StringMatch] = Field(default_factory=dict)
    ignore_uri_case: bool = False
    without_headers: dict[str, StringMatch] = Field(default_factory=dict)
    source_namespace: str | None = None
    stat_prefix: str | None = None


@strict
class PortSelector:
    number: int = Field(ge=1, le=65535)


@strict
class Destination:
    host: str = Field(min_length=1)
    subset: str | None = None
    port: PortSelector | None = None


@strict
class HeaderOperations:
    set: dict[str, str] = Field(default_factory=dict)
    add: dict[str, str] = Field(default_factory=dict)
    remove: list[str] = Field(default_factory=list)


@strict
class Headers:
    request: HeaderOperations | None = None
    response: HeaderOperations | None = None


@strict
class HTTPRouteDestination:
    destination: Destination
    weight: int | None = Field(default=None, ge=0)
    headers: Headers | None = None


@strict
class HTTPRedirect:
    uri: str | None = None
    authority: str | None = None
    port: int | None = None
    derive_port: str | None = None
    scheme: str | None = None
    redirect_code: int | None = None
    prefix_rewrite: str | None = None


@strict
class RegexRewrite:
    match: str | None = None
    rewrite: str | None = None


@strict
class HTTPRewrite:
    uri: str | None = None
    authority: str | None = None
    uri_regex_rewrite: RegexRewrite | None = None


@strict
class HTTPRetry:
    attempts: int = Field(default=0, ge=0)
    per_try_timeout: str | None = None
    retry_on: str | None = None
    retry_remote_localities: bool | None = None
    retry_ignore_previous_hosts: bool | None = None
    backoff: str | None = None


@strict
class HTTPBody:
    string: str | None = None
    bytes: str | None = None


@strict
class HTTPDirectResponse:
    status: int = Field(ge=200, le=599)
    body: HTTPBody | None = None


@strict
class Percent:
    value: float = 0.0


@strict
class FaultDelay:
    fixed_delay: str | None = None
    exponential_delay: str | None = None
    percentage: Percent | None = None
    percent: int | None = None  # deprecated by Istio


@strict
class FaultAbort:
    http_status: int | None = None
    grpc_status: str | None = None
    http2_error: str | None = None
    percentage: Percent | None = None


@strict
class HTTPFaultInjection:
    delay: FaultDelay | None = None
    abort: FaultAbort | None = None


@strict
class HTTPMirrorPolicy:
    destination: Destination
    percentage: Percent | None = None


@strict
class CorsPolicy:
    allow_origins: list[StringMatch] = Field(default_factory=list)
    allow_origin: list[str] = Field(default_factory=list)  # deprecated by Istio
    allow_methods: list[str] = Field(default_factory=list)
    allow_headers: list[str] = Field(default_factory=list)
    expose_headers: list[str] = Field(default_factory=list)
    max_age: str | None = None
    allow_credentials: bool | None = None
    unmatched_preflights: str | None = None


@strict
class HTTPRoute:
    name: str | None = None
    match: list[HTTPMatchRequest] = Field(default_factory=list)
    route: list[HTTPRouteDestination] = Field(default_factory=list)
    redirect: HTTPRedirect | None = None
    direct_response: HTTPDirectResponse | None = None
    delegate: dict[str, Any] | None = None
    rewrite: HTTPRewrite | None = None
    timeout: str | None = None
    retries: HTTPRetry | None = None
    fault: HTTPFaultInjection | None = None
    mirror: Destination | None = None
    mirrors: list[HTTPMirrorPolicy] = Field(default_factory=list)
    mirror_percent: int | None = None
    mirror_percentage: Percent | None = None
    cors_policy: CorsPolicy | None = None
    headers: Headers | None = None



@strict
class RouteDestination:
    destination: Destination
    weight: int | None = Field(default=None, ge=0)


@strict
class L4MatchAttributes:
    destination_subnets: list[str] = Field(default_factory=list)
    port: int | None = None
    source_labels: dict[str, str] = Field(default_factory=dict)
    gateways: list[str] = Field(default_factory=list)
    source_namespace: str | None = None


@strict
class TLSMatchAttributes(L4MatchAttributes):
    sni_hosts: list[str] = Field(default_factory=list)


@strict
class TLSRoute:
    match: list[TLSMatchAttributes] = Field(default_factory=list)
    route: list[RouteDestination] = Field(default_factory=list)


@strict
class TCPRoute:
    match: list[L4MatchAttributes] = Field(default_factory=list)
    route: list[RouteDestination] = Field(default_factory=list)


@strict
class VirtualServiceSpec:
    hosts: list[str] = Field(default_factory=list)  # none: a delegate VirtualService
    gateways: list[str] = Field(default_factory=list)
    http: list[HTTPRoute] = Field(default_factory=list)
    tls: list[TLSRoute] = Field(default_factory=list)
    tcp: list[TCPRoute] = Field(default_factory=list)
    export_to: list[str] = Field(default_factory=list)


@strict
class ServicePort:
    number: int = Field(ge=1, le=65535)
    protocol: str | None = None
    name: str | None = None
    target_port: int | None = None


@strict
class WorkloadEntry:
    address: str | None = None
    ports: dict[str, int] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    network: str | None = None
    locality: str | None = None
    weight: int | None = None
    service_account: str | None = None


@strict
class ServiceEntrySpec:
    hosts: list[str] = Field(min_length=1)
    addresses: list[str] = Field(default_factory=list)
    ports: list[ServicePort] = Field(default_factory=list)
    location: str | None = None
    resolution: str = "NONE"
    endpoints: list[WorkloadEntry] = Field(default_factory=list)
    workload_selector: dict[str, Any] | None = None
    export_to: list[str] = Field(default_factory=list)
    subject_alt_names: list[str] = Field(default_factory=list)


@strict
class HTTPCookie:
    name: str
    path: str | None = None
    ttl: str | None = None


@strict
class ConsistentHashLB:
    http_header_name: str | None = None
    http_cookie: HTTPCookie | None = None
    use_source_ip: bool | None = None
    http_query_parameter_name: str | None = None
    minimum_ring_size: int | None = None
    ring_hash: dict[str, Any] | None = None
    maglev: dict[str, Any] | None = None


@strict
class LoadBalancerSettings:
    simple: str | None = None
    consistent_hash: ConsistentHashLB | None = None
    locality_lb_setting: dict[str, Any] | None = None
    warmup_duration_secs: str | None = None
    warmup: dict[str, Any] | None = None


@strict
class TCPSettings:
    max_connections: int | None = Field(default=None, ge=0)
    connect_timeout: str | None = None
    tcp_keepalive: dict[str, Any] | None = None
    max_connection_duration: str | None = None
    idle_timeout: str | None = None


@strict
class HTTPSettings:
    http1_max_pending_requests: int | None = Field(default=None, ge=0)
    http2_max_requests: int | None = Field(default=None, ge=0)
    max_requests_per_connection: int | None = Field(default=None, ge=0)
    max_retries: int | None = Field(default=None, ge=0)
    idle_timeout: str | None = None
    h2_upgrade_policy: str | None = None
    use_client_protocol: bool | None = None
    max_concurrent_streams: int | None = Field(default=None, ge=0)


@strict
class ConnectionPoolSettings:
    tcp: TCPSettings | None = None
    http: HTTPSettings | None = None


@strict
class OutlierDetection:
    consecutive_errors: int | None = None
    consecutive_5xx_errors: int | None = Field(default=None, ge=0, alias="consecutive5xxErrors")
    consecutive_gateway_errors: int | None = Field(default=None, ge=0)
    consecutive_local_origin_failures: int | None = Field(default=None, ge=0)
    split_external_local_origin_errors: bool | None = None
    interval: str | None = None
    base_ejection_time: str | None = None
    max_ejection_percent: int | None = None
    min_health_percent: int | None = None


@strict
class ClientTLSSettings:
    mode: str = "DISABLE"
    client_certificate: str | None = None
    private_key: str | None = None
    ca_certificates: str | None = None
    credential_name: str | None = None
    subject_alt_names: list[str] = Field(default_factory=list)
    sni: str | None = None
    insecure_skip_verify: bool | None = None
    ca_crl: str | None = None


@strict
class PortTrafficPolicy:
    port: PortSelector | None = None
    load_balancer: LoadBalancerSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None
    tls: ClientTLSSettings | None = None


@strict
class TrafficPolicy:
    load_balancer: LoadBalancerSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None
    tls: ClientTLSSettings | None = None
    port_level_settings: list[PortTrafficPolicy] = Field(default_factory=list)
    tunnel: dict[str, Any] | None = None
    proxy_protocol: dict[str, Any] | None = None
    retry_budget: dict[str, Any] | None = None


@strict
class Subset:
    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    traffic_policy: TrafficPolicy | None = None


@strict
class DestinationRuleSpec:
    host: str = Field(min_length=1)
    traffic_policy: TrafficPolicy | None = None
    subsets: list[Subset] = Field(default_factory=list)
    export_to: list[str] = Field(default_factory=list)
    workload_selector: dict[str, Any] | None = None


@strict
class IstioObject:
    api_version: str
    kind: str
    metadata: ObjectMeta
    status: dict[str, Any] | None = None


@strict
class Gateway(IstioObject):
    spec: GatewaySpec


@strict
class VirtualService(IstioObject):
    spec: VirtualServiceSpec


@strict
class ServiceEntry(IstioObject):
    spec: ServiceEntrySpec


@strict
class DestinationRule(IstioObject):
    spec: DestinationRuleSpec
