"""The Envoy bootstrap: who the gateway is, where its control plane listens (a Unix socket, so key
material never crosses TCP), and the admin interface on loopback only."""

from __future__ import annotations

from typing import Any

from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.core.v3 import base_pb2
from envoy.extensions.resource_monitors.downstream_connections.v3 import (
    downstream_connections_pb2,
)
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from google.protobuf import json_format

from bastion.api.validation import RE2_MAX_PROGRAM_SIZE

# Imported for their descriptors: ParseDict resolves the typed configs below through them.
TYPED_CONFIGS = (downstream_connections_pb2, http_protocol_options_pb2)

XDS_CLUSTER = "xds-grpc"
MAX_DOWNSTREAM_CONNECTIONS = 50_000
# Istio's default statistics inclusion list: Envoy keeps the statistics of its own health and of
# its control-plane connection. Per-listener, per-route and per-cluster counters and histograms
# are left out, as Istio leaves them out: they are updated on every request and cost throughput.
DEFAULT_STATS_PREFIXES = ("cluster_manager", "listener_manager", "server", "cluster." + XDS_CLUSTER)


def runtime_layers() -> dict[str, Any]:
    """Runtime overrides: RE2's program-size limit raised to what admission allows (Envoy's
    default of 100 refuses ordinary regexes; Istio raises it the same way)."""
    return {"layers": [{"name": "bastion", "static_layer": {
        "re2.max_program_size.error_level": RE2_MAX_PROGRAM_SIZE,
        "re2.max_program_size.warn_level": RE2_MAX_PROGRAM_SIZE,
    }}]}


def stats_config(extra_prefixes: tuple[str, ...] = ()) -> dict[str, Any]:
    """Which statistics Envoy keeps: Istio's default list plus `extra_prefixes` (like Istio's
    proxyStatsMatcher.inclusionPrefixes); an empty prefix keeps them all."""
    if "" in extra_prefixes:
        return {}
    prefixes = dict.fromkeys(DEFAULT_STATS_PREFIXES + extra_prefixes)
    return {"stats_matcher": {"inclusion_list": {"patterns": [{"prefix": p} for p in prefixes]}}}


def build_bootstrap(node_id: str, cluster: str, namespace: str, labels: dict[str, str],
                    xds_socket: str, admin_address: str = "127.0.0.1",
                    stats_prefixes: tuple[str, ...] = ()) -> dict[str, Any]:
    ads = {"ads": {}, "resource_api_version": "V3"}
    bootstrap: dict[str, Any] = {
        "node": node_config(node_id, cluster, namespace, labels),
        "admin": {"address": {"socket_address": {"address": admin_address, "port_value": 0}}},
        "dynamic_resources": {
            "ads_config": {
                "api_type": "GRPC",
                "transport_api_version": "V3",
                "set_node_on_first_message_only": True,
                "grpc_services": [{"envoy_grpc": {
                    "cluster_name": XDS_CLUSTER,
                    # Reconnect quickly when the control plane comes back after a crash.
                    "retry_policy": {"retry_back_off": {"base_interval": "0.1s",
                                                        "max_interval": "1s"}},
                }}],
            },
            "lds_config": ads,
            "cds_config": ads,
        },
        "static_resources": {"clusters": [{
            "name": XDS_CLUSTER,
            "type": "STATIC",
            "connect_timeout": "1s",
            "load_assignment": {"cluster_name": XDS_CLUSTER, "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": {"pipe": {"path": xds_socket}}}}]}]},
            "typed_extension_protocol_options": {
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                    "@type": "type.googleapis.com/"
                             "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                    "explicit_http_config": {"http2_protocol_options": {
                        "connection_keepalive": {"interval": "30s", "timeout": "5s"}}},
                }},
        }]},
        "layered_runtime": runtime_layers(),
        "stats_config": stats_config(stats_prefixes),
        "overload_manager": {"resource_monitors": [{
            "name": "envoy.resource_monitors.global_downstream_max_connections",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.resource_monitors."
                         "downstream_connections.v3.DownstreamConnectionsConfig",
                "max_active_downstream_connections": MAX_DOWNSTREAM_CONNECTIONS,
            },
        }]},
    }
    # Fail here, not in Envoy, if a field name is wrong.
    json_format.ParseDict(bootstrap, bootstrap_pb2.Bootstrap())
    return bootstrap


def node_proto(node_id: str, cluster: str, namespace: str, labels: dict[str, str]
               ) -> base_pb2.Node:
    """The node a gateway declares, as the bootstrap's `node` says it."""
    return json_format.ParseDict(node_config(node_id, cluster, namespace, labels),
                                 base_pb2.Node())


def node_config(node_id: str, cluster: str, namespace: str, labels: dict[str, str]
                ) -> dict[str, Any]:
    """Who a gateway is (Istio's node id, its gateway name as cluster) and its group."""
    return {"id": node_id, "cluster": cluster,
            "metadata": {"NAMESPACE": namespace, "LABELS": labels}}
