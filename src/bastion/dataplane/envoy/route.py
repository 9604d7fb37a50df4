"""IR route tables to Envoy RouteConfigurations."""

from __future__ import annotations

from envoy.config.core.v3 import base_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.http.cors.v3 import cors_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2 as http_fault_pb2
from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2
from envoy.extensions.retry.priority.previous_priorities.v3 import (
    previous_priorities_config_pb2,
)
from envoy.type.matcher.v3 import regex_pb2, string_pb2
from envoy.type.v3 import percent_pb2
from google.protobuf import wrappers_pb2

from bastion.dataplane.envoy import naming
from bastion.dataplane.envoy.builders import ms, typed, u32
from bastion.ir.model import (
    Cors,
    DirectResponse,
    Fault,
    Forward,
    HashKey,
    HeaderMatch,
    HeaderOps,
    PathKind,
    Redirect,
    RetryCondition,
    Route,
    RouteMatch,
    Server,
    StringMatch,
    VirtualHost,
)

APPEND = base_pb2.HeaderValueOption.APPEND_IF_EXISTS_OR_ADD
OVERWRITE = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD
REDIRECT_CODES = {
    301: rc.RedirectAction.MOVED_PERMANENTLY,
    302: rc.RedirectAction.FOUND,
    303: rc.RedirectAction.SEE_OTHER,
    307: rc.RedirectAction.TEMPORARY_REDIRECT,
    308: rc.RedirectAction.PERMANENT_REDIRECT,
}


# Envoy's x-envoy-retry-on / x-envoy-retry-grpc-on words for each retry condition.
RETRY_ON = {
    RetryCondition.CONNECT_FAILURE: "connect-failure",
    RetryCondition.REFUSED_STREAM: "refused-stream",
    RetryCondition.RESET: "reset",
    RetryCondition.SERVER_ERROR: "5xx",
    RetryCondition.GATEWAY_ERROR: "gateway-error",
    RetryCondition.RETRIABLE_4XX: "retriable-4xx",
    RetryCondition.RETRIABLE_STATUS: "retriable-status-codes",
    RetryCondition.GRPC_CANCELLED: "cancelled",
    RetryCondition.GRPC_DEADLINE_EXCEEDED: "deadline-exceeded",
    RetryCondition.GRPC_INTERNAL: "internal",
    RetryCondition.GRPC_RESOURCE_EXHAUSTED: "resource-exhausted",
    RetryCondition.GRPC_UNAVAILABLE: "unavailable",
}


MISDIRECTED = 421  # RFC 9110, 15.5.20: the client should retry on a connection of its own
ENVOY_DIRECT_BODY_LIMIT = 4096
FAULT_FILTER = "envoy.filters.http.fault"
CORS_FILTER = "envoy.filters.http.cors"  # Envoy's default cap on a route table's direct-response bodies


def build_route_configuration(group: tuple[Server, ...]) -> route_pb2.RouteConfiguration:
    """The route table of one filter chain: its servers' virtual hosts, and 421 for the hosts
    the other servers of the port serve."""
    config = route_pb2.RouteConfiguration(
        name=naming.route_table(group[0].key),
        virtual_hosts=[_virtual_host(v) for v in _distinct(group)],
        validate_clusters=wrappers_pb2.BoolValue(value=False),
        ignore_port_in_host_matching=True,
    )
    if group[0].http3_port:
        # RFC 9114 3.1.1: where the same service is offered over HTTP/3.
        config.response_headers_to_add.append(base_pb2.HeaderValueOption(
            header=base_pb2.HeaderValue(key="alt-svc",
                                        value=f'h3=":{group[0].http3_port}"; ma=86400'),
            append_action=OVERWRITE))
    largest = max((len(r.action.body) for s in group for v in s.virtual_hosts for r in v.routes
                   if isinstance(r.action, DirectResponse) and r.action.body), default=0)
    if largest > ENVOY_DIRECT_BODY_LIMIT:
        config.max_direct_response_body_size_bytes.value = largest
    # A domain appears once in a route table: hosts this chain routes itself are left out.
    own = {d for s in group for v in s.virtual_hosts for d in v.domains}
    own |= {h for s in group for h in s.sni}
    misdirected = sorted({h for s in group for h in s.misdirected_hosts} - own)
    if misdirected:
        port = next((v.port for s in group for v in s.virtual_hosts), group[0].key.port)
        config.virtual_hosts.append(rc.VirtualHost(
            name=naming.virtual_host(naming.MISDIRECTED_VHOST, port), domains=misdirected,
            routes=[rc.Route(match=rc.RouteMatch(prefix="/"),
                             direct_response=rc.DirectResponseAction(status=MISDIRECTED))]))
    return config


def _distinct(group: tuple[Server, ...]) -> list[VirtualHost]:
    """The virtual hosts of a group's servers, a domain once: servers sharing a chain have
    distinct hosts, but each one without routes brings a catch-all `*` (404), and Envoy allows
    one per table."""
    seen: set[str] = set()
    out = []
    for server in group:
        for vhost in server.virtual_hosts:
            if not seen.intersection(vhost.domains):
                seen.update(vhost.domains)
                out.append(vhost)
    return out


def _virtual_host(vhost: VirtualHost) -> rc.VirtualHost:
    out = rc.VirtualHost(
        name=naming.virtual_host(vhost.host, vhost.port),
        domains=list(vhost.domains),
        routes=[_route(r) for r in vhost.routes],
    )
    if vhost.require_tls:
        out.require_tls = rc.VirtualHost.ALL
    return out


def _string_matcher(match: StringMatch) -> string_pb2.StringMatcher:
    if match.kind == PathKind.EXACT:
        return string_pb2.StringMatcher(exact=match.value, ignore_case=match.ignore_case)
    if match.kind == PathKind.PREFIX:
        return string_pb2.StringMatcher(prefix=match.value, ignore_case=match.ignore_case)
    return string_pb2.StringMatcher(safe_regex=regex_pb2.RegexMatcher(regex=match.value))


def _route_match(match: RouteMatch) -> rc.RouteMatch:
    out = rc.RouteMatch()
    path = match.path
    if path.kind == PathKind.EXACT:
        out.path = path.value
    elif path.kind == PathKind.PREFIX:
        out.prefix = path.value
    else:
        out.safe_regex.CopyFrom(regex_pb2.RegexMatcher(regex=path.value))
    if path.ignore_case:
        out.case_sensitive.value = False
    out.headers.extend(_header_matcher(h) for h in match.headers)
    for q in match.query:
        param = rc.QueryParameterMatcher(name=q.name)
        if q.match is None:
            param.present_match = True
        else:
            param.string_match.CopyFrom(_string_matcher(q.match))
        out.query_parameters.append(param)
    return out


def _header_matcher(header: HeaderMatch) -> rc.HeaderMatcher:
    out = rc.HeaderMatcher(name=header.name, invert_match=header.invert)
    if header.match is None:
        out.present_match = True
    else:
        out.string_match.CopyFrom(_string_matcher(header.match))
    return out


def _header_options(ops: HeaderOps) -> list[base_pb2.HeaderValueOption]:
    out = [base_pb2.HeaderValueOption(header=base_pb2.HeaderValue(key=k, value=v),
                                      append_action=OVERWRITE) for k, v in ops.set]
    out += [base_pb2.HeaderValueOption(header=base_pb2.HeaderValue(key=k, value=v),
                                       append_action=APPEND) for k, v in ops.add]
    return out


def _route(route: Route) -> rc.Route:
    out = rc.Route(match=_route_match(route.match))
    action = route.action
    if isinstance(action, Forward):
        out.route.CopyFrom(_route_action(action))
    elif isinstance(action, Redirect):
        redirect = rc.RedirectAction(response_code=REDIRECT_CODES[action.code])
        if action.path:
            redirect.path_redirect = action.path
        if action.prefix:
            redirect.prefix_rewrite = action.prefix
        if action.authority:
            redirect.host_redirect = action.authority
        if action.scheme:
            redirect.scheme_redirect = action.scheme
        if action.port:
            redirect.port_redirect = action.port
        out.redirect.CopyFrom(redirect)
    elif isinstance(action, DirectResponse):
        out.direct_response.status = action.status
        if isinstance(action.body, bytes):
            out.direct_response.body.inline_bytes = action.body
        elif action.body is not None:
            out.direct_response.body.inline_string = action.body
    if route.fault is not None:
        out.typed_per_filter_config[FAULT_FILTER].CopyFrom(typed(_fault(route.fault)))
    if route.cors is not None:
        out.typed_per_filter_config[CORS_FILTER].CopyFrom(typed(_cors(route.cors)))
    out.request_headers_to_add.extend(_header_options(route.request_headers))
    out.request_headers_to_remove.extend(route.request_headers.remove)
    out.response_headers_to_add.extend(_header_options(route.response_headers))
    out.response_headers_to_remove.extend(route.response_headers.remove)
    return out


def _route_action(forward: Forward) -> rc.RouteAction:
    action = rc.RouteAction(timeout=ms(forward.timeout_ms))
    if len(forward.backends) == 1 and not (forward.backends[0].request_headers
                                           or forward.backends[0].response_headers):
        action.cluster = naming.cluster(forward.backends[0].backend)
    elif not forward.backends:
        action.cluster_not_found_response_code = rc.RouteAction.SERVICE_UNAVAILABLE
        action.cluster = naming.BLACKHOLE_CLUSTER
    else:
        for b in forward.backends:
            weighted = rc.WeightedCluster.ClusterWeight(
                name=naming.cluster(b.backend), weight=u32(b.weight))
            weighted.request_headers_to_add.extend(_header_options(b.request_headers))
            weighted.request_headers_to_remove.extend(b.request_headers.remove)
            weighted.response_headers_to_add.extend(_header_options(b.response_headers))
            weighted.response_headers_to_remove.extend(b.response_headers.remove)
            action.weighted_clusters.clusters.append(weighted)
    if forward.hash_key is not None:
        action.hash_policy.extend(_hash_policy(forward.hash_key))
    if forward.retry_attempts > 0:
        policy = rc.RetryPolicy(
            retry_on=",".join(RETRY_ON[c] for c in forward.retry_on),
            num_retries=u32(forward.retry_attempts),
            host_selection_retry_max_attempts=5,
            retriable_status_codes=list(forward.retry_status_codes),
        )
        if forward.retry_other_hosts:
            policy.retry_host_predicate.append(rc.RetryPolicy.RetryHostPredicate(
                name="envoy.retry_host_predicates.previous_hosts",
                typed_config=typed(previous_hosts_pb2.PreviousHostsPredicate())))
        if forward.retry_other_localities:
            # Istio's choice: the priority load is recomputed every second attempt.
            policy.retry_priority.name = "envoy.retry_priorities.previous_priorities"
            policy.retry_priority.typed_config.CopyFrom(typed(
                previous_priorities_config_pb2.PreviousPrioritiesConfig(update_frequency=2)))
        if forward.per_try_timeout_ms:
            policy.per_try_timeout.CopyFrom(ms(forward.per_try_timeout_ms))
        if forward.retry_backoff_ms:
            policy.retry_back_off.base_interval.CopyFrom(ms(forward.retry_backoff_ms))
        action.retry_policy.CopyFrom(policy)
    else:
        action.retry_policy.num_retries.value = 0
    if forward.rewrite_prefix is not None:
        action.prefix_rewrite = forward.rewrite_prefix
    if forward.rewrite_regex is not None:
        pattern, substitution = forward.rewrite_regex
        action.regex_rewrite.pattern.regex = pattern
        action.regex_rewrite.substitution = substitution
    if forward.rewrite_authority:
        action.host_rewrite_literal = forward.rewrite_authority
    action.request_mirror_policies.extend(
        rc.RouteAction.RequestMirrorPolicy(
            cluster=naming.cluster(m.backend),
            runtime_fraction=base_pb2.RuntimeFractionalPercent(default_value=_percent(m.percent)))
        for m in forward.mirrors)
    return action


def _hash_policy(key: HashKey) -> list[rc.RouteAction.HashPolicy]:
    out = []
    if key.header:
        out.append(rc.RouteAction.HashPolicy(
            header=rc.RouteAction.HashPolicy.Header(header_name=key.header)))
    if key.cookie:
        cookie = rc.RouteAction.HashPolicy.Cookie(name=key.cookie, path=key.cookie_path or "")
        if key.cookie_ttl_ms is not None:
            cookie.ttl.CopyFrom(ms(key.cookie_ttl_ms))
        out.append(rc.RouteAction.HashPolicy(cookie=cookie))
    if key.query:
        out.append(rc.RouteAction.HashPolicy(
            query_parameter=rc.RouteAction.HashPolicy.QueryParameter(name=key.query)))
    if key.source_ip:
        out.append(rc.RouteAction.HashPolicy(
            connection_properties=rc.RouteAction.HashPolicy.ConnectionProperties(
                source_ip=True)))
    return out


def _percent(value: float) -> percent_pb2.FractionalPercent:
    """A share in per million, as Istio gives Envoy a percentage with decimals."""
    return percent_pb2.FractionalPercent(numerator=round(value * 10_000),
                                         denominator=percent_pb2.FractionalPercent.MILLION)


def _fault(fault: Fault) -> http_fault_pb2.HTTPFault:
    out = http_fault_pb2.HTTPFault()
    if fault.delay_ms:
        out.delay.fixed_delay.CopyFrom(ms(fault.delay_ms))
        out.delay.percentage.CopyFrom(_percent(fault.delay_percent))
    if fault.abort_grpc is not None:
        out.abort.grpc_status = fault.abort_grpc
        out.abort.percentage.CopyFrom(_percent(fault.abort_percent))
    elif fault.abort_status:
        out.abort.http_status = fault.abort_status
        out.abort.percentage.CopyFrom(_percent(fault.abort_percent))
    return out


def _cors(cors: Cors) -> cors_pb2.CorsPolicy:
    out = cors_pb2.CorsPolicy(
        allow_origin_string_match=[_string_matcher(o) for o in cors.allow_origins],
        allow_methods=",".join(cors.allow_methods),
        allow_headers=",".join(cors.allow_headers),
        expose_headers=",".join(cors.expose_headers),
        forward_not_matching_preflights=wrappers_pb2.BoolValue(
            value=cors.forward_unmatched_preflights),
    )
    if cors.max_age_s is not None:
        out.max_age = str(cors.max_age_s)
    if cors.allow_credentials is not None:
        out.allow_credentials.value = cors.allow_credentials
    return out
