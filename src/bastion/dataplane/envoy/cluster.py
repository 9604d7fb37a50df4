"""IR backends to Envoy Clusters and ClusterLoadAssignments."""

from __future__ import annotations

from envoy.config.cluster.v3 import circuit_breaker_pb2, cluster_pb2
from envoy.config.core.v3 import protocol_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2 as hpo

from bastion.dataplane.envoy import naming
from bastion.dataplane.envoy.builders import ads_config_source, seconds, socket_address, typed, u32
from bastion.ir.model import Backend

UNLIMITED = 4294967295  # Istio lifts Envoy's 1024 defaults: a gateway fans in many clients
CONNECT_TIMEOUT_S = 10
HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


def build_cluster(backend: Backend) -> cluster_pb2.Cluster:
    name = naming.cluster(backend.ref)
    cluster = cluster_pb2.Cluster(
        name=name,
        connect_timeout=seconds(CONNECT_TIMEOUT_S),
        lb_policy=cluster_pb2.Cluster.ROUND_ROBIN,
        per_connection_buffer_limit_bytes=u32(32 * 1024),
        circuit_breakers=circuit_breaker_pb2.CircuitBreakers(thresholds=[
            circuit_breaker_pb2.CircuitBreakers.Thresholds(
                max_connections=u32(UNLIMITED), max_pending_requests=u32(UNLIMITED),
                max_requests=u32(UNLIMITED), max_retries=u32(UNLIMITED))]),
    )
    if backend.dns:
        cluster.type = cluster_pb2.Cluster.STRICT_DNS
        cluster.load_assignment.CopyFrom(build_load_assignment(backend))
    else:
        cluster.type = cluster_pb2.Cluster.EDS
        cluster.eds_cluster_config.eds_config.CopyFrom(ads_config_source())
        cluster.eds_cluster_config.service_name = name
    if backend.http2:
        options = hpo.HttpProtocolOptions(
            explicit_http_config=hpo.HttpProtocolOptions.ExplicitHttpConfig(
                http2_protocol_options=protocol_pb2.Http2ProtocolOptions()))
        cluster.typed_extension_protocol_options[HTTP_OPTIONS].CopyFrom(typed(options))
    return cluster


def build_load_assignment(backend: Backend) -> endpoint_pb2.ClusterLoadAssignment:
    return endpoint_pb2.ClusterLoadAssignment(
        cluster_name=naming.cluster(backend.ref),
        endpoints=[endpoint_components_pb2.LocalityLbEndpoints(lb_endpoints=[
            endpoint_components_pb2.LbEndpoint(endpoint=endpoint_components_pb2.Endpoint(
                address=socket_address(e.address, e.port)))
            for e in backend.endpoints])] if backend.endpoints else [],
    )
