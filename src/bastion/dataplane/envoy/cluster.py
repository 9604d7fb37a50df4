"""IR backends to Envoy Clusters and ClusterLoadAssignments."""

from __future__ import annotations

from envoy.config.cluster.v3 import circuit_breaker_pb2, cluster_pb2, outlier_detection_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2 as hpo
from envoy.type.matcher.v3 import string_pb2
from google.protobuf import wrappers_pb2

from bastion.dataplane.envoy import naming
from bastion.dataplane.envoy.builders import (
    ads_config_source,
    ms,
    sds_secret_config,
    seconds,
    socket_address,
    typed,
    u32,
)
from bastion.ir.model import (
    Backend,
    BackendPolicy,
    Balance,
    ConnectionLimits,
    Ejection,
    UpstreamTls,
)

UNLIMITED = 4294967295  # Istio lifts Envoy's 1024 defaults: a gateway fans in many clients
CONNECT_TIMEOUT_S = 10
HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


LB_POLICY = {
    Balance.ROUND_ROBIN: cluster_pb2.Cluster.ROUND_ROBIN,
    Balance.LEAST_REQUEST: cluster_pb2.Cluster.LEAST_REQUEST,
    Balance.RANDOM: cluster_pb2.Cluster.RANDOM,
    Balance.HASH: cluster_pb2.Cluster.RING_HASH,
}
# Where a backend's certificate is verified when its DestinationRule names no CA.
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def _limit(value: int | None) -> wrappers_pb2.UInt32Value:
    return u32(UNLIMITED if value is None else value)


def build_cluster(backend: Backend) -> cluster_pb2.Cluster:
    name = naming.cluster(backend.ref)
    policy = backend.policy or BackendPolicy()
    limits = policy.limits or ConnectionLimits()
    cluster = cluster_pb2.Cluster(
        name=name,
        connect_timeout=ms(limits.connect_timeout_ms) if limits.connect_timeout_ms else seconds(
            CONNECT_TIMEOUT_S),
        lb_policy=LB_POLICY[policy.balance],
        per_connection_buffer_limit_bytes=u32(32 * 1024),
        circuit_breakers=circuit_breaker_pb2.CircuitBreakers(thresholds=[
            circuit_breaker_pb2.CircuitBreakers.Thresholds(
                max_connections=_limit(limits.max_connections),
                max_pending_requests=_limit(limits.max_pending_requests),
                max_requests=_limit(limits.max_requests),
                max_retries=_limit(limits.max_retries))]),
    )
    if policy.ejection is not None:
        cluster.outlier_detection.CopyFrom(_outlier(policy.ejection))
        if policy.ejection.min_health_percent is not None:
            cluster.common_lb_config.healthy_panic_threshold.value = float(
                policy.ejection.min_health_percent)
    if policy.tls is not None:
        cluster.transport_socket.name = "envoy.transport_sockets.tls"
        cluster.transport_socket.typed_config.CopyFrom(typed(_upstream_tls(policy.tls)))
    if backend.dns:
        cluster.type = cluster_pb2.Cluster.STRICT_DNS
        cluster.load_assignment.CopyFrom(build_load_assignment(backend))
    else:
        cluster.type = cluster_pb2.Cluster.EDS
        cluster.eds_cluster_config.eds_config.CopyFrom(ads_config_source())
        cluster.eds_cluster_config.service_name = name
    if backend.http2 or limits.max_requests_per_connection or limits.idle_timeout_ms:
        explicit = hpo.HttpProtocolOptions.ExplicitHttpConfig()
        if backend.http2:
            explicit.http2_protocol_options.SetInParent()
        else:
            explicit.http_protocol_options.SetInParent()
        options = hpo.HttpProtocolOptions(explicit_http_config=explicit)
        if limits.max_requests_per_connection:
            options.common_http_protocol_options.max_requests_per_connection.value = (
                limits.max_requests_per_connection)
        if limits.idle_timeout_ms:
            options.common_http_protocol_options.idle_timeout.CopyFrom(
                ms(limits.idle_timeout_ms))
        cluster.typed_extension_protocol_options[HTTP_OPTIONS].CopyFrom(typed(options))
    return cluster


def _outlier(ejection: Ejection) -> outlier_detection_pb2.OutlierDetection:
    """Istio's translation: only the consecutive-error detectors, success-rate off."""
    out = outlier_detection_pb2.OutlierDetection(
        enforcing_success_rate=u32(0),
        consecutive_5xx=u32(ejection.consecutive_5xx if ejection.consecutive_5xx is not None
                            else 5),
    )
    if ejection.consecutive_5xx == 0:
        out.enforcing_consecutive_5xx.value = 0
    if ejection.consecutive_gateway_errors:
        out.consecutive_gateway_failure.value = ejection.consecutive_gateway_errors
        out.enforcing_consecutive_gateway_failure.value = 100
    if ejection.interval_ms:
        out.interval.CopyFrom(ms(ejection.interval_ms))
    if ejection.base_ejection_ms:
        out.base_ejection_time.CopyFrom(ms(ejection.base_ejection_ms))
    if ejection.max_ejection_percent is not None:
        out.max_ejection_percent.value = ejection.max_ejection_percent
    return out


def _upstream_tls(tls: UpstreamTls) -> tls_pb2.UpstreamTlsContext:
    common = tls_pb2.CommonTlsContext()
    if tls.certificate is not None:
        common.tls_certificate_sds_secret_configs.append(
            sds_secret_config(naming.secret(tls.certificate)))
    if not tls.skip_verify:
        default = common_pb2.CertificateValidationContext(
            match_typed_subject_alt_names=[
                common_pb2.SubjectAltNameMatcher(
                    san_type=san_type, matcher=string_pb2.StringMatcher(exact=name))
                for name in tls.subject_alt_names
                for san_type in (common_pb2.SubjectAltNameMatcher.DNS,
                                 common_pb2.SubjectAltNameMatcher.URI)])
        if tls.ca is not None:
            common.combined_validation_context.CopyFrom(
                tls_pb2.CommonTlsContext.CombinedCertificateValidationContext(
                    default_validation_context=default,
                    validation_context_sds_secret_config=sds_secret_config(
                        naming.secret(tls.ca))))
        else:
            default.trusted_ca.filename = SYSTEM_CA_BUNDLE
            common.validation_context.CopyFrom(default)
    out = tls_pb2.UpstreamTlsContext(common_tls_context=common)
    if tls.sni:
        out.sni = tls.sni
    return out


def build_load_assignment(backend: Backend) -> endpoint_pb2.ClusterLoadAssignment:
    return endpoint_pb2.ClusterLoadAssignment(
        cluster_name=naming.cluster(backend.ref),
        endpoints=[endpoint_components_pb2.LocalityLbEndpoints(lb_endpoints=[
            _lb_endpoint(e.address, e.port, e.weight) for e in backend.endpoints])]
        if backend.endpoints else [],
    )


def _lb_endpoint(address: str, port: int, weight: int) -> endpoint_components_pb2.LbEndpoint:
    out = endpoint_components_pb2.LbEndpoint(endpoint=endpoint_components_pb2.Endpoint(
        address=socket_address(address, port)))
    if weight:
        out.load_balancing_weight.value = weight
    return out
