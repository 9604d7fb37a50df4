"""IR listeners to Envoy Listeners: one per bound port, one filter chain per server."""

from __future__ import annotations

from functools import partial

from envoy.config.core.v3 import address_pb2, base_pb2, protocol_pb2
from envoy.config.listener.v3 import (
    listener_components_pb2,
    listener_pb2,
    quic_config_pb2,
    udp_listener_config_pb2,
)
from envoy.extensions.filters.http.cors.v3 import cors_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2 as http_fault_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from envoy.extensions.transport_sockets.quic.v3 import quic_transport_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2
from envoy.type.matcher.v3 import string_pb2
from google.protobuf import wrappers_pb2

from bastion.api import validation
from bastion.dataplane.envoy import naming
from bastion.dataplane.envoy.builders import (
    ads_config_source,
    sds_secret_config,
    seconds,
    socket_address,
    typed,
    u32,
)
from bastion.ir.model import Listener, Server, ServerKey, TlsMode, TlsPolicy
from bastion.memo import Memo

EDGE_BUFFER_LIMIT = 32 * 1024
HANDSHAKE_TIMEOUT_S = 15
TCP_IDLE_TIMEOUT_S = 3600  # Envoy's default for a passed-through connection is 1 h too
ALPN = ("h2", "http/1.1")
TLS_VERSION = {
    "1.0": common_pb2.TlsParameters.TLSv1_0,
    "1.1": common_pb2.TlsParameters.TLSv1_1,
    "1.2": common_pb2.TlsParameters.TLSv1_2,
    "1.3": common_pb2.TlsParameters.TLSv1_3,
}
DEFAULT_MIN_TLS = "1.2"
# What Envoy's BoringSSL accepts (checked by `envoy --mode validate` in
# tests/golden/test_envoy_accepts.py): Istio's cipher suites, and its curves but P-224 and
# X25519Kyber768Draft00, which Envoy 1.40 refuses. Names outside these are left out here, so
# that one unknown name never makes Envoy reject the whole listener.
SUPPORTED_CIPHER_SUITES = validation.ISTIO_CIPHER_SUITES
SUPPORTED_ECDH_CURVES = frozenset({"X25519", "P-256", "P-384", "P-521", "X25519MLKEM768"})


HCM = hcm_pb2.HttpConnectionManager


def _supported(names: tuple[str, ...], supported: frozenset[str]) -> list[str]:
    """`[a|b]` groups (BoringSSL's equal-preference syntax) are kept when all members are."""
    return [n for n in names
            if all(m in supported for m in n.removeprefix("[").removesuffix("]").split("|"))]


def route_filters(group: tuple[Server, ...]) -> tuple[str, ...]:
    """The HTTP filters a chain's routes need besides the router: CORS and fault injection
    cost every request a little (HTTP/1.1 keep-alive about 7 %), so a chain has them only when
    one of its routes configures them."""
    routes = [r for s in group for v in s.virtual_hosts for r in v.routes]
    return tuple(name for name, used in (("cors", any(r.cors for r in routes)),
                                         ("fault", any(r.fault for r in routes))) if used)


def _chain_key(server: Server) -> tuple[object, ...]:
    """What a filter chain is made of (HTTP routes live in RDS, so they are not part of it;
    passthrough routes, and which HTTP filters the routes need, are)."""
    return (server.key, server.sni, server.tls, server.name, server.passthrough,
            server.http3_port, route_filters((server,)))


def chain_groups(servers: tuple[Server, ...]) -> list[tuple[Server, ...]]:
    """The servers of a listener, grouped into filter chains. TLS servers with the same TLS
    policy (so the same certificates) and only exact host names share one chain and one route
    table: a browser that reuses a connection for another host its certificate covers (HTTP/2
    coalescing) is then routed, not refused. The first server of a group names it."""
    groups: dict[object, list[Server]] = {}
    for server in servers:
        shareable = server.tls is not None and server.sni and not any(
            "*" in host for host in server.sni)
        key: object = ("shared", server.tls) if shareable else ("own", server.key)
        groups.setdefault(key, []).append(server)
    return [tuple(group) for group in groups.values()]


def listener_groups(listener: Listener, memo: Memo) -> list[tuple[Server, ...]]:
    """`chain_groups` of a listener, once per listener object and build."""
    return memo.get(("groups", id(listener)), partial(chain_groups, listener.servers),
                    pins=listener)


def shared_servers(groups: list[tuple[Server, ...]]) -> dict[ServerKey, ServerKey]:
    """Server -> the server whose chain and route table it shares, for groups of two or more."""
    return {member.key: group[0].key for group in groups if len(group) > 1 for member in group}


def build_listener(listener: Listener, memo: Memo | None = None) -> listener_pb2.Listener:
    memo = memo or Memo()
    keys = tuple(_chain_key(s) for s in listener.servers)
    return memo.get(("lds", listener.port, listener.bind_address, listener.bind_port, keys),
                    lambda: _build_listener(listener, memo))


def _build_listener(listener: Listener, memo: Memo) -> listener_pb2.Listener:
    out = listener_pb2.Listener(
        name=naming.listener(listener),
        address=socket_address(listener.bind_address, listener.bind_port),
        traffic_direction=base_pb2.OUTBOUND,
        per_connection_buffer_limit_bytes=u32(EDGE_BUFFER_LIMIT),
    )
    if listener.is_tls:
        out.listener_filters.append(listener_components_pb2.ListenerFilter(
            name="envoy.filters.listener.tls_inspector",
            typed_config=typed(tls_inspector_pb2.TlsInspector()),
        ))
    for group in listener_groups(listener, memo):
        if group[0].key.protocol in ("tls", "tcp"):
            out.filter_chains.extend(passthrough_chains(group[0]))
        else:
            out.filter_chains.append(memo.get(("chain", tuple(_chain_key(s) for s in group)),
                                              partial(_filter_chain, group)))
    return out


def build_quic_listener(listener: Listener, memo: Memo) -> listener_pb2.Listener | None:
    """The HTTP/3 twin of a TLS listener: UDP on the same port, one QUIC chain per group of
    servers that terminate TLS and serve HTTP/3, using the same certificates (SDS) and route
    tables (RDS)."""
    if not any(s.http3_port for s in listener.servers):
        return None
    keys = tuple(_chain_key(s) for s in listener.servers)
    return memo.get(("lds-quic", listener.port, listener.bind_address, listener.bind_port, keys),
                    lambda: _build_quic_listener(listener, memo))


def _build_quic_listener(listener: Listener, memo: Memo) -> listener_pb2.Listener | None:
    groups = [g for g in listener_groups(listener, memo)
              if g[0].tls is not None and g[0].http3_port]
    if not groups:
        return None
    out = listener_pb2.Listener(
        name=naming.listener(listener) + "_quic",
        address=socket_address(listener.bind_address, listener.bind_port),
        traffic_direction=base_pb2.OUTBOUND,
        per_connection_buffer_limit_bytes=u32(EDGE_BUFFER_LIMIT),
        udp_listener_config=udp_listener_config_pb2.UdpListenerConfig(
            quic_options=quic_config_pb2.QuicProtocolOptions()),
    )
    out.address.socket_address.protocol = address_pb2.SocketAddress.UDP
    out.filter_chains.extend(memo.get(("quic", tuple(_chain_key(s) for s in g)),
                                      partial(_quic_chain, g)) for g in groups)
    return out


def _quic_chain(group: tuple[Server, ...]) -> listener_components_pb2.FilterChain:
    server = group[0]
    assert server.tls is not None
    route_name = naming.route_table(server.key)
    hcm = http_connection_manager(server, route_name, route_filters(group))
    hcm.codec_type = HCM.HTTP3
    hcm.http3_protocol_options.SetInParent()
    chain = listener_components_pb2.FilterChain(
        name=route_name + ".quic",
        filters=[listener_components_pb2.Filter(
            name="envoy.filters.network.http_connection_manager", typed_config=typed(hcm))],
    )
    names = sorted({host for member in group for host in member.sni})
    if names:
        chain.filter_chain_match.server_names.extend(names)
    tls = downstream_tls_context(server.tls)
    # Shared ticket keys are for TCP TLS; QUIC's resumption is kept per process.
    tls.ClearField("session_ticket_keys_sds_secret_config")
    del tls.common_tls_context.alpn_protocols[:]
    tls.common_tls_context.alpn_protocols.append("h3")
    chain.transport_socket.name = "envoy.transport_sockets.quic"
    chain.transport_socket.typed_config.CopyFrom(typed(
        quic_transport_pb2.QuicDownstreamTransport(downstream_tls_context=tls)))
    return chain


def passthrough_chains(server: Server) -> list[listener_components_pb2.FilterChain]:
    """Chains forwarding TCP: one per passthrough route (the TLS stream, untouched, to its
    backends, by SNI); for a TLS server that ends TLS here, one chain of its hosts forwarding
    what is inside; for a plain TCP server, the port's one chain."""
    chains = []
    routes = server.passthrough[:1] if server.tls is not None else server.passthrough
    for index, route in enumerate(routes):
        proxy = tcp_proxy_pb2.TcpProxy(stat_prefix=naming.stat_prefix(server.key, server.name),
                                       idle_timeout=seconds(TCP_IDLE_TIMEOUT_S))
        if len(route.backends) == 1:
            proxy.cluster = naming.cluster(route.backends[0].backend)
        elif route.backends:
            proxy.weighted_clusters.clusters.extend(
                tcp_proxy_pb2.TcpProxy.WeightedCluster.ClusterWeight(
                    name=naming.cluster(b.backend), weight=b.weight) for b in route.backends)
        else:
            proxy.cluster = naming.BLACKHOLE_CLUSTER
        chain = listener_components_pb2.FilterChain(
            name=f"{naming.route_table(server.key)}.{index}",
            filters=[listener_components_pb2.Filter(name="envoy.filters.network.tcp_proxy",
                                                    typed_config=typed(proxy))])
        if server.key.protocol == "tcp":
            chains.append(chain)
            continue
        names = [n for n in (server.sni if server.tls is not None else route.sni) if n != "*"]
        if names:
            chain.filter_chain_match.server_names.extend(names)
        chain.filter_chain_match.transport_protocol = "tls"
        if server.tls is not None:
            context = downstream_tls_context(server.tls)
            del context.common_tls_context.alpn_protocols[:]  # TCP inside: no HTTP to offer
            chain.transport_socket.name = "envoy.transport_sockets.tls"
            chain.transport_socket.typed_config.CopyFrom(typed(context))
            chain.transport_socket_connect_timeout.CopyFrom(seconds(HANDSHAKE_TIMEOUT_S))
        chains.append(chain)
    return chains


def _filter_chain(group: tuple[Server, ...]) -> listener_components_pb2.FilterChain:
    server = group[0]
    route_name = naming.route_table(server.key)
    chain = listener_components_pb2.FilterChain(
        name=route_name,
        filters=[listener_components_pb2.Filter(
            name="envoy.filters.network.http_connection_manager",
            typed_config=typed(http_connection_manager(server, route_name,
                                                       route_filters(group))),
        )],
    )
    if server.tls is not None:
        names = sorted({host for member in group for host in member.sni})
        if names:
            chain.filter_chain_match.server_names.extend(names)
        chain.transport_socket.name = "envoy.transport_sockets.tls"
        chain.transport_socket.typed_config.CopyFrom(typed(downstream_tls_context(server.tls)))
        chain.transport_socket_connect_timeout.CopyFrom(seconds(HANDSHAKE_TIMEOUT_S))
    return chain


def http_connection_manager(server: Server, route_name: str, filters: tuple[str, ...] = ()
                            ) -> hcm_pb2.HttpConnectionManager:
    hcm = HCM(
        stat_prefix=naming.stat_prefix(server.key, server.name),
        codec_type=HCM.AUTO,
        rds=hcm_pb2.Rds(config_source=ads_config_source(), route_config_name=route_name),
        # Router dynamic stats (per-cluster response codes and timings kept by the router) cost
        # a few percent of throughput; the clusters' own statistics remain.
        # CORS answers preflights before faults are injected, as in Istio.
        http_filters=[
            *([hcm_pb2.HttpFilter(name="envoy.filters.http.cors",
                                  typed_config=typed(cors_pb2.Cors()))] if "cors" in filters
              else []),
            *([hcm_pb2.HttpFilter(name="envoy.filters.http.fault",
                                  typed_config=typed(http_fault_pb2.HTTPFault()))]
              if "fault" in filters else []),
            hcm_pb2.HttpFilter(name="envoy.filters.http.router",
                               typed_config=typed(router_pb2.Router(dynamic_stats=_bool(False))))],
        use_remote_address=_true(),
        server_name="istio-envoy",
        normalize_path=_true(),
        stream_idle_timeout=seconds(300),
        request_headers_timeout=seconds(10),
        common_http_protocol_options=protocol_pb2.HttpProtocolOptions(idle_timeout=seconds(3600)),
        http2_protocol_options=protocol_pb2.Http2ProtocolOptions(
            max_concurrent_streams=u32(100),
            initial_stream_window_size=u32(65536),
            initial_connection_window_size=u32(1048576),
        ),
        # Client-sent X-Forwarded-Client-Cert is never trusted; on TLS chains Envoy sets its own.
        forward_client_cert_details=HCM.SANITIZE_SET if server.tls else HCM.SANITIZE,
    )
    if server.tls is not None:
        details = hcm.set_current_client_cert_details
        details.subject.value = True
        details.cert = True
        details.dns = True
        details.uri = True
    return hcm


def downstream_tls_context(policy: TlsPolicy) -> tls_pb2.DownstreamTlsContext:
    common = tls_pb2.CommonTlsContext(
        alpn_protocols=list(ALPN),
        tls_certificate_sds_secret_configs=[
            sds_secret_config(naming.secret(name)) for name in policy.certificates],
        tls_params=common_pb2.TlsParameters(
            tls_minimum_protocol_version=TLS_VERSION[policy.min_version or DEFAULT_MIN_TLS],
            cipher_suites=_supported(policy.cipher_suites, SUPPORTED_CIPHER_SUITES),
            ecdh_curves=_supported(policy.ecdh_curves, SUPPORTED_ECDH_CURVES),
        ),
    )
    if policy.max_version:
        common.tls_params.tls_maximum_protocol_version = TLS_VERSION[policy.max_version]
    if policy.ca is not None:
        default = common_pb2.CertificateValidationContext(
            verify_certificate_spki=list(policy.verify_spki),
            verify_certificate_hash=list(policy.verify_hash),
            # Like Istio's untyped matcher: a name may be a DNS name or a URI (SPIFFE) SAN.
            match_typed_subject_alt_names=[
                common_pb2.SubjectAltNameMatcher(
                    san_type=san_type, matcher=string_pb2.StringMatcher(exact=name))
                for name in policy.subject_alt_names
                for san_type in (common_pb2.SubjectAltNameMatcher.DNS,
                                 common_pb2.SubjectAltNameMatcher.URI)],
        )
        if policy.skip_verify:
            default.trust_chain_verification = (
                common_pb2.CertificateValidationContext.ACCEPT_UNTRUSTED)
        common.combined_validation_context.CopyFrom(
            tls_pb2.CommonTlsContext.CombinedCertificateValidationContext(
                default_validation_context=default,
                validation_context_sds_secret_config=sds_secret_config(naming.secret(policy.ca)),
            ))
    context = tls_pb2.DownstreamTlsContext(
        common_tls_context=common,
        require_client_certificate=_bool(policy.mode == TlsMode.MUTUAL),
    )
    if policy.ticket_keys:
        context.session_ticket_keys_sds_secret_config.CopyFrom(
            sds_secret_config(naming.secret(policy.ticket_keys)))
    return context


def _bool(value: bool) -> wrappers_pb2.BoolValue:
    return wrappers_pb2.BoolValue(value=value)


def _true() -> wrappers_pb2.BoolValue:
    return _bool(True)
