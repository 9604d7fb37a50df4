"""Route tables: direct-response bodies over Envoy's default 4 KB cap raise the table's cap (Istio
accepts bodies up to 1 MB), and tables without large bodies keep Envoy's default."""

from __future__ import annotations

from bastion.dataplane.envoy.route import ENVOY_DIRECT_BODY_LIMIT, build_route_configuration
from bastion.diag import ObjectRef
from bastion.ir.model import (
    DirectResponse,
    PathKind,
    Route,
    RouteMatch,
    Server,
    ServerKey,
    StringMatch,
    VirtualHost,
)


def server(body: str | bytes) -> Server:
    route = Route(RouteMatch(StringMatch(PathKind.PREFIX, "/")), DirectResponse(200, body),
                  ObjectRef("VirtualService", "default", "vs"))
    vhost = VirtualHost("a.example.com", 80, ("a.example.com",), (route,))
    return Server(ServerKey("http", 80), (), None, (vhost,), ())


def test_large_body_raises_the_cap() -> None:
    body = "x" * (ENVOY_DIRECT_BODY_LIMIT * 10)
    config = build_route_configuration((server(body),))
    assert config.max_direct_response_body_size_bytes.value == len(body)
    assert config.virtual_hosts[0].routes[0].direct_response.body.inline_string == body


def test_small_body_keeps_envoys_default() -> None:
    config = build_route_configuration((server(b"\x00\x01"),))
    assert not config.HasField("max_direct_response_body_size_bytes")
    assert config.virtual_hosts[0].routes[0].direct_response.body.inline_bytes == b"\x00\x01"


def test_servers_sharing_a_table_bring_one_catch_all() -> None:
    """Two servers sharing a chain, neither with routes: each has the 404 catch-all `*`, and
    Envoy takes one per table (found by tests/fuzz)."""
    blackhole = VirtualHost("blackhole", 443, ("*",), ())
    first = Server(ServerKey("https", 443, "a"), ("a.example.com",), None, (blackhole,), ())
    second = Server(ServerKey("https", 443, "b"), ("b.example.com",), None, (blackhole,), ())
    config = build_route_configuration((first, second))
    assert [list(v.domains) for v in config.virtual_hosts] == [["*"]]
