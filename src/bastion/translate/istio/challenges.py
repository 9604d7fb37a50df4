"""ACME HTTP-01 challenges answered by the gateway itself: while a certificate for a name is
being validated, port 80 answers `GET /.well-known/acme-challenge/TOKEN` for that name with
the key authorization, before any route of the user's, and even when the name's server
redirects to HTTPS. Other requests for the name go where they went before.

A challenge is served by the gateway groups whose Gateways name its host; a group with no
plain HTTP server on port 80 gets one for the validation alone."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from bastion.api import certmanager, istio
from bastion.diag import ObjectRef
from bastion.ir.model import (
    DirectResponse,
    Listener,
    PathKind,
    Redirect,
    Route,
    RouteMatch,
    Server,
    ServerKey,
    StringMatch,
    VirtualHost,
)
from bastion.translate.istio import hosts
from bastion.translate.istio.resources import Options

HTTP_PORT = 80
PATH_PREFIX = "/.well-known/acme-challenge/"


def wanted(challenges: Iterable[certmanager.Challenge], gateways: Iterable[istio.Gateway]
           ) -> list[certmanager.Challenge]:
    """The challenges for hosts these Gateways name (served or not: the certificate being
    issued is often what the server is waiting for)."""
    named = [hosts.split_namespace(h)[1] for g in gateways for s in g.spec.servers
             for h in s.hosts]
    return sorted((c for c in challenges
                   if c.spec.type == "HTTP-01" and any(hosts.matches(n, c.spec.dns_name)
                                                       for n in named)),
                  key=lambda c: (c.spec.dns_name, c.spec.token))


def with_challenges(listeners: list[Listener], challenges: list[certmanager.Challenge],
                    options: Options) -> list[Listener]:
    if not challenges:
        return listeners
    at = next((i for i, li in enumerate(listeners) if li.port == HTTP_PORT), None)
    if at is None:
        bind_port = options.bind_port(HTTP_PORT)
        server = Server(key=ServerKey("http", bind_port), sni=(), tls=None, virtual_hosts=(),
                        sources=())
        listeners = [*listeners, Listener(HTTP_PORT, options.bind_address, bind_port,
                                          (server,))]
        at = len(listeners) - 1
    listener = listeners[at]
    plain = next((i for i, s in enumerate(listener.servers) if s.key.protocol == "http"), None)
    if plain is None:
        return listeners  # port 80 is not plain HTTP here: nothing can answer
    servers = list(listener.servers)
    servers[plain] = _answering(servers[plain], challenges)
    out = list(listeners)
    out[at] = replace(listener, servers=tuple(servers))
    return out


def _answering(server: Server, challenges: list[certmanager.Challenge]) -> Server:
    by_host: dict[str, list[Route]] = {}
    for challenge in challenges:
        meta = challenge.metadata
        by_host.setdefault(challenge.spec.dns_name.lower(), []).append(Route(
            match=RouteMatch(StringMatch(PathKind.EXACT, PATH_PREFIX + challenge.spec.token)),
            action=DirectResponse(200, challenge.spec.key),
            source=ObjectRef("Challenge", meta.namespace or "", meta.name)))
    vhosts = list(server.virtual_hosts)
    for host, answers in sorted(by_host.items()):
        current = _covering(vhosts, host)
        if current is not None and host in current.domains:
            vhosts[vhosts.index(current)] = _prepended(current, answers)
        else:  # a vhost of its own, with the routes the host had through a wildcard
            base = current or VirtualHost(host=host, port=HTTP_PORT, domains=(host,), routes=())
            vhosts.insert(0, _prepended(replace(base, host=host, domains=(host,)), answers))
    ordered = sorted(vhosts, key=lambda v: hosts.specificity(v.host))
    return replace(server, virtual_hosts=tuple(ordered),
                   sources=tuple(sorted({*server.sources, *(r.source for rs in by_host.values()
                                                             for r in rs)})))


def _covering(vhosts: list[VirtualHost], host: str) -> VirtualHost | None:
    """The virtual host Envoy would pick for `host`: an exact domain, else the most specific
    wildcard."""
    exact = next((v for v in vhosts if host in v.domains), None)
    if exact is not None:
        return exact
    matching = [v for v in vhosts if any(hosts.matches(d, host) for d in v.domains)]
    return min(matching, key=lambda v: hosts.specificity(v.host), default=None)


def _prepended(vhost: VirtualHost, answers: list[Route]) -> VirtualHost:
    routes = vhost.routes
    if vhost.require_tls:  # the redirect to HTTPS, for everything but the answers
        source = answers[0].source
        routes = (Route(RouteMatch(StringMatch(PathKind.PREFIX, "/")),
                        Redirect(path=None, authority=None, scheme="https", port=None,
                                 code=301), source),)
    return replace(vhost, routes=(*answers, *routes), require_tls=False)
