"""Frozen dataclasses describing one gateway's configuration.

The IR names listeners, SNI chains, TLS policies, virtual hosts, routes, backends and credentials; it
carries the source object of each so problems and dumps point back at what the user wrote. It knows
nothing about Envoy: a different data plane, or a different config source (Gateway API), meets the
rest of bastion here.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from bastion.diag import ObjectRef
from bastion.pem import CertificateSummary
from bastion.private import PrivateBytes


class TlsMode(StrEnum):
    SIMPLE = "SIMPLE"
    MUTUAL = "MUTUAL"
    OPTIONAL_MUTUAL = "OPTIONAL_MUTUAL"


class PathKind(StrEnum):
    EXACT = "exact"
    PREFIX = "prefix"
    REGEX = "regex"


@dataclass(frozen=True)
class StringMatch:
    kind: PathKind
    value: str
    ignore_case: bool = False


@dataclass(frozen=True)
class HeaderMatch:
    name: str
    match: StringMatch | None  # None: the header must be present
    invert: bool = False


@dataclass(frozen=True)
class RouteMatch:
    path: StringMatch
    headers: tuple[HeaderMatch, ...] = ()
    query: tuple[HeaderMatch, ...] = ()


@dataclass(frozen=True)
class HeaderOps:
    set: tuple[tuple[str, str], ...] = ()
    add: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.set or self.add or self.remove)


@dataclass(frozen=True)
class BackendRef:
    """A backend service port (or a subset of its endpoints): resolved to a `Backend` if it
    exists, else a dangling reference (Envoy then answers 503, as Istio does for an unknown
    destination)."""

    host: str
    port: int
    subset: str = ""


@dataclass(frozen=True)
class WeightedBackend:
    backend: BackendRef
    weight: int
    request_headers: HeaderOps = HeaderOps()
    response_headers: HeaderOps = HeaderOps()


class RetryCondition(StrEnum):
    """What a failed attempt looked like, for a retry policy to retry it."""

    CONNECT_FAILURE = "connect-failure"  # no connection to the backend
    REFUSED_STREAM = "refused-stream"  # the backend refused the HTTP/2 stream
    RESET = "reset"  # the connection was reset or timed out without a response
    SERVER_ERROR = "5xx"  # any 5xx answer (or no answer)
    GATEWAY_ERROR = "gateway-error"  # 502, 503, 504
    RETRIABLE_4XX = "retriable-4xx"  # 409
    RETRIABLE_STATUS = "retriable-status-codes"  # one of the policy's status codes
    GRPC_CANCELLED = "cancelled"
    GRPC_DEADLINE_EXCEEDED = "deadline-exceeded"
    GRPC_INTERNAL = "internal"
    GRPC_RESOURCE_EXHAUSTED = "resource-exhausted"
    GRPC_UNAVAILABLE = "unavailable"


# Istio's default retry policy for gateway routes.
DEFAULT_RETRY_ON = (RetryCondition.CONNECT_FAILURE, RetryCondition.REFUSED_STREAM,
                    RetryCondition.GRPC_UNAVAILABLE, RetryCondition.GRPC_CANCELLED,
                    RetryCondition.RETRIABLE_STATUS)


@dataclass(frozen=True)
class Mirror:
    """A copy of each request (of `percent` of them) sent to another backend, its answer
    dropped."""

    backend: BackendRef
    percent: float = 100.0


@dataclass(frozen=True)
class Fault:
    """Faults injected into a route's requests: a delay, an abort, or both, each for a share
    of the requests (0-100 %)."""

    delay_ms: int = 0
    delay_percent: float = 0.0
    abort_status: int = 0  # HTTP status; 0: none
    abort_grpc: int | None = None  # gRPC status code
    abort_percent: float = 0.0


@dataclass(frozen=True)
class Cors:
    allow_origins: tuple[StringMatch, ...] = ()
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age_s: int | None = None
    allow_credentials: bool | None = None
    forward_unmatched_preflights: bool = True


@dataclass(frozen=True)
class Forward:
    backends: tuple[WeightedBackend, ...]
    timeout_ms: int = 0  # 0: no route timeout, Istio's default
    retry_attempts: int = 2
    retry_on: tuple[RetryCondition, ...] = DEFAULT_RETRY_ON
    retry_status_codes: tuple[int, ...] = (503,)
    per_try_timeout_ms: int = 0
    retry_backoff_ms: int = 0  # 0: Envoy's default (25 ms)
    retry_other_hosts: bool = True  # a retry avoids the hosts already tried
    retry_other_localities: bool = False  # a retry moves on to priorities not tried yet
    rewrite_prefix: str | None = None
    rewrite_regex: tuple[str, str] | None = None  # (RE2 pattern, substitution)
    rewrite_authority: str | None = None
    mirrors: tuple[Mirror, ...] = ()
    hash_key: HashKey | None = None  # consistent hashing (the backend's DestinationRule)


@dataclass(frozen=True)
class Redirect:
    path: str | None
    authority: str | None
    scheme: str | None
    port: int | None
    code: int
    prefix: str | None = None  # replaces the matched path prefix (a prefix match's)


@dataclass(frozen=True)
class DirectResponse:
    status: int
    body: str | bytes | None


Action = Forward | Redirect | DirectResponse


@dataclass(frozen=True)
class Route:
    match: RouteMatch
    action: Action
    source: ObjectRef
    request_headers: HeaderOps = HeaderOps()
    response_headers: HeaderOps = HeaderOps()
    fault: Fault | None = None
    cors: Cors | None = None


@dataclass(frozen=True)
class VirtualHost:
    host: str  # the host this vhost was made for, e.g. "httpbin.example.com"
    port: int  # the gateway (server) port
    domains: tuple[str, ...]
    routes: tuple[Route, ...]
    require_tls: bool = False


@dataclass(frozen=True)
class TlsPolicy:
    mode: TlsMode
    certificates: tuple[str, ...]  # credential names, e.g. ("httpbin-credential",)
    ca: str | None  # CA credential name for client verification
    min_version: str | None = None  # "1.2", "1.3"; None: bastion's default (1.2)
    max_version: str | None = None
    cipher_suites: tuple[str, ...] = ()
    ecdh_curves: tuple[str, ...] = ()
    subject_alt_names: tuple[str, ...] = ()
    verify_spki: tuple[str, ...] = ()
    verify_hash: tuple[str, ...] = ()
    skip_verify: bool = False
    # The group's shared session-ticket keys (their credential name), so a client resumes its
    # session on any replica; None: each gateway process makes its own.
    ticket_keys: str | None = None


@dataclass(frozen=True)
class TicketKeys:
    """The keys TLS session tickets are sealed with, the same on every gateway of a group:
    the first seals, every one opens (the ones before a rotation still open older tickets)."""

    name: str
    keys: tuple[PrivateBytes, ...] = field(repr=False)


@dataclass(frozen=True)
class TlsRoute:
    """A VirtualService `tls` rule on a passthrough server: connections whose SNI is one of
    `sni` are forwarded, still encrypted, to the backends (which terminate TLS themselves)."""

    sni: tuple[str, ...]
    backends: tuple[WeightedBackend, ...]
    source: ObjectRef


@dataclass(frozen=True)
class ServerKey:
    """What identifies a server: a TLS-terminating server by its Gateway and port; the
    plain-HTTP servers of one port are one server (`port_name` and gateway empty), since they
    share the port without SNI. A data plane keys each server's routes by it."""

    protocol: str  # "http", "https" (TLS terminated here) or "tls" (passed through)
    port: int
    port_name: str = ""
    gateway: str = ""
    namespace: str = ""


@dataclass(frozen=True)
class Server:
    """One SNI filter chain (HTTPS), the plain-HTTP handler of a port, or a TLS passthrough
    server (`passthrough` routes, no TLS policy, no virtual hosts)."""

    key: ServerKey
    sni: tuple[str, ...]  # empty: matches any SNI, including none
    tls: TlsPolicy | None
    virtual_hosts: tuple[VirtualHost, ...]
    sources: tuple[ObjectRef, ...]
    name: str = ""  # the Gateway server's `name`, for statistics
    # Hosts other servers of the same port serve ("*": any host). A request for one of them
    # on this server's connections was sent on a coalesced connection: it is misdirected.
    misdirected_hosts: tuple[str, ...] = ()
    passthrough: tuple[TlsRoute, ...] = ()
    # The UDP port this server also answers HTTP/3 on (advertised with Alt-Svc); 0: none.
    http3_port: int = 0


@dataclass(frozen=True)
class Listener:
    port: int  # the Gateway server port, e.g. 443
    bind_address: str
    bind_port: int  # where Envoy listens, after --port-map
    servers: tuple[Server, ...]

    @property
    def is_tls(self) -> bool:
        """Whether connections are told apart by SNI (TLS terminated or passed through)."""
        return any(s.tls is not None or s.key.protocol == "tls" for s in self.servers)


@dataclass(frozen=True)
class Endpoint:
    address: str
    port: int
    labels: tuple[tuple[str, str], ...] = ()  # the pod's (or ServiceEntry endpoint's)
    weight: int = 0  # a ServiceEntry endpoint's share among its locality; 0: equal shares


class Balance(StrEnum):
    ROUND_ROBIN = "ROUND_ROBIN"
    LEAST_REQUEST = "LEAST_REQUEST"
    RANDOM = "RANDOM"
    HASH = "HASH"  # consistent hashing on the route's hash keys (a ring)


@dataclass(frozen=True)
class HashKey:
    """What a request is hashed on to pick an endpoint: a header, a cookie (made with `ttl_ms`
    when absent, if set), a query parameter, or the client's address."""

    header: str | None = None
    cookie: str | None = None
    cookie_path: str | None = None
    cookie_ttl_ms: int | None = None
    query: str | None = None
    source_ip: bool = False


@dataclass(frozen=True)
class ConnectionLimits:
    max_connections: int | None = None
    connect_timeout_ms: int | None = None
    max_pending_requests: int | None = None
    max_requests: int | None = None
    max_requests_per_connection: int | None = None
    max_retries: int | None = None
    idle_timeout_ms: int | None = None


@dataclass(frozen=True)
class Ejection:
    """Outlier detection: endpoints that fail in a row are ejected for a while."""

    consecutive_5xx: int | None = None
    consecutive_gateway_errors: int | None = None
    interval_ms: int | None = None
    base_ejection_ms: int | None = None
    max_ejection_percent: int | None = None
    min_health_percent: int | None = None


@dataclass(frozen=True)
class UpstreamTls:
    """TLS from the gateway to the backend: verified against `ca`, presenting `certificate`
    (MUTUAL), both credentials delivered like the gateway's own."""

    certificate: str | None = None  # credential name (MUTUAL)
    ca: str | None = None  # CA credential name; None: the system's trust store
    sni: str | None = None
    subject_alt_names: tuple[str, ...] = ()
    skip_verify: bool = False


@dataclass(frozen=True)
class BackendPolicy:
    """A DestinationRule's traffic policy for one backend port."""

    balance: Balance = Balance.ROUND_ROBIN
    hash_key: HashKey | None = None
    limits: ConnectionLimits | None = None
    ejection: Ejection | None = None
    tls: UpstreamTls | None = None
    source: ObjectRef | None = None


@dataclass(frozen=True)
class Backend:
    ref: BackendRef
    endpoints: tuple[Endpoint, ...]
    source: ObjectRef
    http2: bool = False
    dns: bool = False  # endpoints are host names to resolve, not addresses
    policy: BackendPolicy | None = None


@dataclass(frozen=True)
class TlsCredential:
    name: str
    certificate_chain: bytes
    private_key: PrivateBytes = field(repr=False)
    source: ObjectRef | None = None
    summary: CertificateSummary | None = None
    ocsp_staple: bytes | None = None
    # When the staple stops being valid (ISO 8601, UTC; None: no staple, or no end given): a
    # data plane stops stapling it then.
    ocsp_next_update: str | None = None
    ocsp_problem: str = ""  # why a staple given was not kept


@dataclass(frozen=True)
class CaCredential:
    name: str
    trusted_ca: bytes
    crl: bytes | None
    source: ObjectRef | None = None
    summaries: tuple[CertificateSummary, ...] = ()


@dataclass(frozen=True)
class GatewayConfig:
    """Credentials are sorted by name, so one is found (and replaced) without a scan."""

    listeners: tuple[Listener, ...] = ()
    backends: tuple[Backend, ...] = ()
    tls_credentials: tuple[TlsCredential, ...] = ()
    ca_credentials: tuple[CaCredential, ...] = ()
    ticket_keys: TicketKeys | None = None

    def credential(self, name: str) -> TlsCredential | None:
        return _find(self.tls_credentials, name)

    def ca_credential(self, name: str) -> CaCredential | None:
        return _find(self.ca_credentials, name)


Named = TypeVar("Named", TlsCredential, CaCredential)


def _find(items: tuple[Named, ...], name: str) -> Named | None:
    index = bisect.bisect_left(items, name, key=lambda c: c.name)
    if index < len(items) and items[index].name == name:
        return items[index]
    return None


def with_named(items: tuple[Named, ...], name: str, item: Named | None) -> tuple[Named, ...]:
    """`items` (sorted by name) with the one named `name` replaced by `item`, added, or
    (`item` None) removed."""
    index = bisect.bisect_left(items, name, key=lambda c: c.name)
    present = index < len(items) and items[index].name == name
    tail = items[index + 1:] if present else items[index:]
    return items[:index] + ((item,) if item is not None else ()) + tail
