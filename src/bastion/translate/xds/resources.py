"""The entry point of the second seam: a whole gateway configuration to Envoy resources by type."""

from __future__ import annotations

from dataclasses import dataclass, field

from google.protobuf.message import Message

from bastion.ir.model import GatewayConfig
from bastion.translate.xds.cluster import build_cluster, build_load_assignment
from bastion.translate.xds.listener import build_listener
from bastion.translate.xds.route import build_route_configuration
from bastion.translate.xds.secret import build_ca_secret, build_tls_secret

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


def to_xds(config: GatewayConfig) -> XdsResources:
    out: dict[str, dict[str, Message]] = {t: {} for t in PUSH_ORDER}
    for listener in config.listeners:
        built = build_listener(listener)
        out[LISTENER][built.name] = built
        for server in listener.servers:
            routes = build_route_configuration(server)
            out[ROUTE][routes.name] = routes
    for backend in config.backends:
        cluster = build_cluster(backend)
        out[CLUSTER][cluster.name] = cluster
        if cluster.HasField("eds_cluster_config"):
            out[ENDPOINT][cluster.name] = build_load_assignment(backend)
    for credential in config.tls_credentials:
        secret = build_tls_secret(credential)
        out[SECRET][secret.name] = secret
    for ca in config.ca_credentials:
        secret = build_ca_secret(ca)
        out[SECRET][secret.name] = secret
    return XdsResources(out)
