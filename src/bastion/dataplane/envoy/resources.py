"""The entry point of the second seam: a whole gateway configuration to Envoy resources by type."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

from google.protobuf.message import Message

from bastion.clock import utc_now
from bastion.dataplane.envoy.cluster import build_cluster, build_load_assignment
from bastion.dataplane.envoy.listener import (
    build_listener,
    build_quic_listener,
    listener_groups,
)
from bastion.dataplane.envoy.route import build_route_configuration
from bastion.dataplane.envoy.secret import (
    build_ca_secret,
    build_ticket_keys_secret,
    build_tls_secret,
    staple_fresh,
)
from bastion.ir.model import GatewayConfig
from bastion.memo import Memo

PREFIX = "type.googleapis.com/"
LISTENER = PREFIX + "envoy.config.listener.v3.Listener"
ROUTE = PREFIX + "envoy.config.route.v3.RouteConfiguration"
CLUSTER = PREFIX + "envoy.config.cluster.v3.Cluster"
ENDPOINT = PREFIX + "envoy.config.endpoint.v3.ClusterLoadAssignment"
SECRET = PREFIX + "envoy.extensions.transport_sockets.tls.v3.Secret"
# Make-before-break: what a resource refers to is sent before the resource itself.
PUSH_ORDER = (CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET)
SHORT_NAMES = {CLUSTER: "CDS", ENDPOINT: "EDS", LISTENER: "LDS", ROUTE: "RDS", SECRET: "SDS"}
WILDCARD_TYPES = (LISTENER, CLUSTER)


@dataclass(frozen=True)
class XdsResources:
    by_type: dict[str, dict[str, Message]] = field(default_factory=dict)

    def of(self, type_url: str) -> dict[str, Message]:
        return self.by_type.get(type_url, {})


def to_xds(config: GatewayConfig, memo: Memo | None = None, now: str | None = None
           ) -> XdsResources:
    """Envoy resources for a configuration. With a memo from the previous translation, every
    resource whose IR did not change is the same message object as before (and is not built
    again); messages are never modified after they are built. `now` (ISO 8601, UTC; default:
    the clock) decides which OCSP staples are still served."""
    now = now or utc_now()
    memo = memo or Memo()
    out: dict[str, dict[str, Message]] = {t: {} for t in PUSH_ORDER}
    for listener in config.listeners:
        built = build_listener(listener, memo)
        out[LISTENER][built.name] = built
        quic = build_quic_listener(listener, memo)
        if quic is not None:
            out[LISTENER][quic.name] = quic
        for group in listener_groups(listener, memo):
            if group[0].key.protocol in ("tls", "tcp"):
                continue  # TCP forwarded: no HTTP, no route table
            routes = memo.get(("rds", group), partial(build_route_configuration, group))
            out[ROUTE][routes.name] = routes
    for backend in config.backends:
        cluster = memo.get(("cds", backend), partial(build_cluster, backend))
        out[CLUSTER][cluster.name] = cluster
        if cluster.HasField("eds_cluster_config"):
            out[ENDPOINT][cluster.name] = memo.get(
                ("eds", backend), partial(build_load_assignment, backend))
    for credential in config.tls_credentials:
        # By identity: a credential holds key material, and no cache is keyed by that.
        fresh = staple_fresh(credential, now)
        secret = memo.get(("sds", id(credential), fresh),
                          partial(build_tls_secret, credential, now), pins=credential)
        out[SECRET][secret.name] = secret
    for ca in config.ca_credentials:
        secret = memo.get(("sds", id(ca)), partial(build_ca_secret, ca), pins=ca)
        out[SECRET][secret.name] = secret
    if config.ticket_keys is not None:
        secret = build_ticket_keys_secret(config.ticket_keys)
        out[SECRET][secret.name] = secret
    return XdsResources(out)
