"""VirtualService HTTP rules to IR routes, for one gateway server."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from bastion.api import istio, validation
from bastion.diag import Diagnostic, ObjectRef, Severity
from bastion.ir.model import (
    Action,
    BackendRef,
    Cors,
    DirectResponse,
    Fault,
    Forward,
    HashKey,
    HeaderMatch,
    HeaderOps,
    Mirror,
    PathKind,
    Redirect,
    RetryCondition,
    Route,
    RouteMatch,
    StringMatch,
    WeightedBackend,
)
from bastion.translate.gatewayapi.convert import GENERATED
from bastion.translate.istio import delegation, policies
from bastion.translate.istio.backends import default_port
from bastion.translate.istio.hosts import qualify
from bastion.translate.istio.refs import gateway_refs
from bastion.translate.istio.resources import Resources


def duration_ms(value: str | None) -> int:
    """Admission has checked the value; 0 stands for none."""
    ns = validation.duration_ns(value) if value else None
    return ns // 1_000_000 if ns else 0


def binds(vs: istio.VirtualService, gateways: list[str], gw_namespace: str, gw_name: str) -> bool:
    return (gw_namespace, gw_name) in gateway_refs(vs, gateways)


class Destined(Protocol):
    """A rule's destination with its weight (`route` entries of http, tls and tcp rules)."""

    @property
    def destination(self) -> istio.Destination: ...

    @property
    def weight(self) -> int | None: ...


@dataclass(frozen=True)
class _Target:
    """A mirror's destination, as a route entry of its own."""

    destination: istio.Destination
    weight: int | None = None


@dataclass
class RouteBuilder:
    res: Resources
    diagnostics: list[Diagnostic]
    proxy_namespace: str = "istio-system"  # the gateway's own: which DestinationRules it sees
    # The routes depend on objects other than the VirtualService (a Service's default port, a
    # DestinationRule's hash key): they are made again on every translation.
    depends_on_others: bool = False
    # Where clients reach a gateway port (`--port-map`), for redirects that keep the port.
    client_port: Callable[[int], int] = lambda port: port

    def routes(self, vs: istio.VirtualService, gw_namespace: str, gw_name: str,
               port: int) -> list[Route]:
        """The rules of `vs` for one Gateway's server on `port` (a match naming other gateways
        or another port is left out)."""
        out: list[Route] = []
        # An HTTPRoute's rules are ordered by the Gateway API's precedence later, across
        # routes: none is unreachable here.
        generated = (vs.metadata.name or "").endswith(GENERATED)
        for owner, ref, at, rule in self._rules(vs):
            self._warn_unimplemented(ref, at, rule)
            if not validation.redirect_served(rule):
                self._problem(ref, f"{at}.redirect.redirectCode",
                              "not a redirect code Envoy has; rule skipped")
                continue
            action = self._action(owner, ref, at, rule, port)
            fault = _fault(rule.fault) if rule.fault is not None else None
            cors = _cors(rule.cors_policy) if rule.cors_policy is not None else None
            matches = rule.match or [istio.HTTPMatchRequest()]
            for j, match in enumerate(matches):
                if match.gateways and not binds(owner, match.gateways, gw_namespace, gw_name):
                    continue
                if match.port and match.port != port:
                    continue
                route_match = self._match(ref, f"{at}.match[{j}]", match)
                if route_match is None:
                    continue
                out.append(Route(
                    match=route_match,
                    action=action,
                    source=ref,
                    request_headers=_ops(rule.headers.request if rule.headers else None),
                    response_headers=_ops(rule.headers.response if rule.headers else None),
                    fault=fault,
                    cors=cors,
                ))
            if not generated and any(is_catch_all(r) for r in out):
                break  # Istio drops rules after a catch-all: they could never match
        return out

    def _rules(self, vs: istio.VirtualService
               ) -> Iterator[tuple[istio.VirtualService, ObjectRef, str, istio.HTTPRoute]]:
        """(the VirtualService a rule comes from, its reference, the rule's field, the rule):
        the rules of `vs`, a `delegate` replaced by the delegate's rules merged under it."""
        ref = ObjectRef("VirtualService", vs.metadata.namespace or "", vs.metadata.name)
        for i, rule in enumerate(vs.spec.http):
            at = f"spec.http[{i}]"
            if rule.delegate is None:
                yield vs, ref, at, rule
                continue
            self.depends_on_others = True  # the delegate may change on its own
            target = delegation.delegate_of(self.res.virtual_services, vs, rule)
            if target is None or target.spec.hosts:
                what = "not found" if target is None else "not a delegate (it has hosts)"
                self._problem(ref, f"{at}.delegate", f"VirtualService {what}; rule skipped")
                continue
            target_ref = ObjectRef("VirtualService", target.metadata.namespace or "",
                                   target.metadata.name)
            for j, sub in enumerate(target.spec.http):
                merged = delegation.merge(rule, sub) if sub.delegate is None else None
                if merged is None:
                    self._problem(target_ref, f"spec.http[{j}].match",
                                  f"conflicts with every match of {ref} {at} (or delegates "
                                  "again); rule skipped")
                    continue
                yield target, target_ref, f"spec.http[{j}]", merged

    def _problem(self, ref: ObjectRef, field: str, message: str,
                 severity: Severity = Severity.WARNING) -> None:
        self.diagnostics.append(Diagnostic(ref, field, "NotImplemented", message, severity))

    def _warn_unimplemented(self, ref: ObjectRef, at: str, rule: istio.HTTPRoute) -> None:
        for j, match in enumerate(rule.match):
            if match.stat_prefix:
                self._problem(ref, f"{at}.match[{j}].statPrefix",
                              "not implemented by bastion; ignored")

    def _match(self, ref: ObjectRef, at: str, match: istio.HTTPMatchRequest) -> RouteMatch | None:
        path = StringMatch(PathKind.PREFIX, "/")
        if match.uri is not None:
            path = _string_match(match.uri, match.ignore_uri_case) or path
        headers: list[HeaderMatch] = []
        # Header names are case-insensitive: Envoy keeps them lower-case.
        for name, value in sorted(match.headers.items()):
            headers.append(HeaderMatch(name.lower(), _string_match(value)))
        for name, value in sorted(match.without_headers.items()):
            present = value.regex == "*"  # Istio's spelling of "the header is present"
            headers.append(HeaderMatch(name.lower(), None if present else _string_match(value),
                                       invert=True))
        for pseudo, pseudo_value in ((":method", match.method), (":authority", match.authority),
                                     (":scheme", match.scheme)):
            if pseudo_value is not None:
                headers.append(HeaderMatch(pseudo, _string_match(pseudo_value)))
        query = tuple(HeaderMatch(n, _string_match(v)) for n, v in sorted(match.query_params.items()))
        if match.source_labels or match.source_namespace:
            self._problem(ref, at, "sourceLabels/sourceNamespace never match at a gateway; "
                          "match skipped")
            return None
        return RouteMatch(path=path, headers=tuple(headers), query=query)

    def _retry_on(self, ref: ObjectRef, at: str, value: str
                  ) -> tuple[tuple[RetryCondition, ...], tuple[int, ...]]:
        """Istio's `retryOn`: retry conditions and status codes, comma-separated; a status code
        implies retrying on the policy's status codes."""
        known = _retry_conditions()
        conditions: list[RetryCondition] = []
        codes: list[int] = []
        for word in (w.strip() for w in value.split(",")):
            if word.isdigit():
                codes.append(int(word))
                word = RetryCondition.RETRIABLE_STATUS.value
            condition = known.get(word)
            if condition is None:
                if word:
                    self._problem(ref, at, f"unknown retry condition {word!r} ignored")
            elif condition not in conditions:
                conditions.append(condition)
        return tuple(conditions), tuple(codes)

    def _action(self, vs: istio.VirtualService, ref: ObjectRef, at: str,
                rule: istio.HTTPRoute, port: int) -> Action:
        if rule.redirect is not None:
            r = rule.redirect
            # Istio's FROM_REQUEST_PORT: the port the request came to (the routes are made per
            # server port); FROM_PROTOCOL_DEFAULT: none, the scheme's default.
            derived = self.client_port(port) if r.derive_port == "FROM_REQUEST_PORT" else None
            return Redirect(path=r.uri, authority=r.authority, scheme=r.scheme,
                            port=r.port or derived, code=r.redirect_code or 301,
                            prefix=r.prefix_rewrite)
        if rule.direct_response is not None:
            body = rule.direct_response.body
            content: str | bytes | None = None
            if body is not None and body.bytes is not None:
                content = validation.direct_response_bytes(rule)
            elif body is not None:
                content = body.string
            return DirectResponse(rule.direct_response.status, content)
        backends = self.backends(vs, ref, at, rule.route)
        forward = Forward(backends=tuple(b for b in backends if b.weight > 0),
                          timeout_ms=duration_ms(rule.timeout),
                          hash_key=self._hash_key(backends))
        if rule.retries is not None:
            forward = replace(forward, retry_attempts=rule.retries.attempts,
                              per_try_timeout_ms=duration_ms(rule.retries.per_try_timeout),
                              retry_backoff_ms=duration_ms(rule.retries.backoff),
                              retry_other_hosts=rule.retries.retry_ignore_previous_hosts
                              is not False,
                              retry_other_localities=bool(rule.retries.retry_remote_localities))
            if rule.retries.retry_on:
                conditions, codes = self._retry_on(ref, f"{at}.retries.retryOn",
                                                   rule.retries.retry_on)
                forward = replace(forward, retry_on=conditions, retry_status_codes=codes)
        mirrors = self._mirrors(vs, ref, at, rule)
        if mirrors:
            forward = replace(forward, mirrors=mirrors)
        authority = _authority(rule.headers.request if rule.headers else None)
        if rule.rewrite is not None:
            regex = rule.rewrite.uri_regex_rewrite
            forward = replace(forward, rewrite_prefix=rule.rewrite.uri,
                              rewrite_authority=rule.rewrite.authority or authority,
                              rewrite_regex=(regex.match or "", regex.rewrite or "")
                              if regex is not None else None)
        elif authority:
            forward = replace(forward, rewrite_authority=authority)
        return forward

    def _hash_key(self, backends: list[WeightedBackend]) -> HashKey | None:
        """The consistent-hash key of the DestinationRule of the route's first destination
        (Envoy hashes in the route, the cluster keeps the ring)."""
        if not backends or not self.res.destination_rules:
            return None
        self.depends_on_others = True
        first = backends[0].backend
        rule = policies.rule_for(self.res.rules_for_host(first.host), first.host,
                                 self.proxy_namespace)
        return policies.policy(rule, first.port, first.subset)[0].hash_key if rule else None

    def _mirrors(self, vs: istio.VirtualService, ref: ObjectRef, at: str,
                 rule: istio.HTTPRoute) -> tuple[Mirror, ...]:
        """`mirror` (with `mirrorPercentage`, or the deprecated `mirrorPercent`) and `mirrors`,
        each 100 % unless a percentage says otherwise."""
        wanted: list[tuple[istio.Destination, float]] = []
        if rule.mirror is not None:
            percent = 100.0
            if rule.mirror_percentage is not None:
                percent = rule.mirror_percentage.value
            elif rule.mirror_percent is not None:
                percent = float(rule.mirror_percent)
            wanted.append((rule.mirror, percent))
        wanted.extend((m.destination, m.percentage.value if m.percentage else 100.0)
                      for m in rule.mirrors)
        out = []
        for k, (destination, percent) in enumerate(wanted):
            (weighted,) = self.backends(vs, ref, f"{at}.mirrors[{k}]",
                                        [_Target(destination)])
            out.append(Mirror(weighted.backend, percent))
        return tuple(out)

    def backends(self, vs: istio.VirtualService, ref: ObjectRef, at: str,
                 destinations: Sequence[Destined]) -> list[WeightedBackend]:
        """A rule's destinations (of an `http`, `tls` or `tcp` rule), weighted."""
        namespace = vs.metadata.namespace or "default"
        backends = []
        for k, dest in enumerate(destinations):
            host = qualify(dest.destination.host, namespace)
            port: int | None
            if dest.destination.port:
                port = dest.destination.port.number
            else:
                self.depends_on_others = True
                port = default_port(self.res, host)
            if port is None:
                self._problem(ref, f"{at}.route[{k}].destination.port",
                              f"required: {dest.destination.host} does not have exactly one port",
                              Severity.ERROR)
                port = 0
            weight = dest.weight if dest.weight is not None else (
                100 if len(destinations) == 1 else 0)
            headers = getattr(dest, "headers", None)
            backends.append(WeightedBackend(
                backend=BackendRef(host, port, dest.destination.subset or ""),
                weight=weight,
                request_headers=_ops(headers.request if headers else None),
                response_headers=_ops(headers.response if headers else None),
            ))
        return backends


def _authority(ops: istio.HeaderOperations | None) -> str | None:
    """A request's `:authority` (or Host) set by header operations: Istio rewrites the
    authority with it."""
    if ops is None:
        return None
    for name, value in (*ops.set.items(), *ops.add.items()):
        if validation.is_authority(name):
            return value
    return None


def _share(percentage: istio.Percent | None, percent: int | None = None) -> float:
    """A fault's share of requests: `percentage`, else the deprecated `percent`, else all."""
    if percentage is not None:
        return percentage.value
    return float(percent) if percent is not None else 100.0


def _fault(fault: istio.HTTPFaultInjection) -> Fault:
    out = Fault()
    if fault.delay is not None and fault.delay.fixed_delay:
        out = replace(out, delay_ms=duration_ms(fault.delay.fixed_delay),
                      delay_percent=_share(fault.delay.percentage, fault.delay.percent))
    abort = fault.abort
    if abort is not None and (abort.http_status is not None or abort.grpc_status is not None):
        grpc = validation.GRPC_STATUS.index(abort.grpc_status) if abort.grpc_status else None
        out = replace(out, abort_status=abort.http_status or 0, abort_grpc=grpc,
                      abort_percent=_share(abort.percentage))
    return out


def _cors(cors: istio.CorsPolicy) -> Cors:
    origins = [m for m in (_string_match(o) for o in cors.allow_origins) if m is not None]
    origins += [StringMatch(PathKind.EXACT, o) for o in cors.allow_origin]
    ns = validation.duration_ns(cors.max_age) if cors.max_age else None
    return Cors(
        allow_origins=tuple(origins),
        allow_methods=tuple(cors.allow_methods),
        allow_headers=tuple(cors.allow_headers),
        expose_headers=tuple(cors.expose_headers),
        max_age_s=ns // 1_000_000_000 if ns is not None else None,
        allow_credentials=cors.allow_credentials,
        forward_unmatched_preflights=cors.unmatched_preflights != "IGNORE",
    )


def _retry_conditions() -> dict[str, RetryCondition]:
    return {c.value: c for c in RetryCondition}


def _string_match(match: istio.StringMatch, ignore_case: bool = False) -> StringMatch | None:
    if match.exact is not None:
        return StringMatch(PathKind.EXACT, match.exact, ignore_case)
    if match.prefix is not None:
        return StringMatch(PathKind.PREFIX, match.prefix, ignore_case)
    if match.regex is not None:
        return StringMatch(PathKind.REGEX, match.regex)
    return None


def _ops(ops: istio.HeaderOperations | None) -> HeaderOps:
    if ops is None:
        return HeaderOps()
    # The authority is rewritten, not set as a header; a name Envoy refuses is left out
    # (admission warned).
    def kept(name: str) -> bool:
        return validation.operable(name) and not validation.is_authority(name)

    return HeaderOps(
        set=tuple(sorted((k, v) for k, v in ops.set.items() if kept(k))),
        add=tuple(sorted((k, v) for k, v in ops.add.items() if kept(k))),
        remove=tuple(n for n in ops.remove if validation.operable(n)),
    )


def is_catch_all(route: Route) -> bool:
    path = route.match.path
    catch_all_path = (path.kind == PathKind.PREFIX and path.value == "/") or (
        path.kind == PathKind.REGEX and path.value in (".*", "/.*"))
    return catch_all_path and not route.match.headers and not route.match.query
