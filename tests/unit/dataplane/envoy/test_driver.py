"""The Envoy driver: each group's build becomes that group's snapshot; a build that could not be
delivered makes the next one render whole, since the next one's delta is relative to it."""

from __future__ import annotations

import asyncio

import pytest

from bastion.build import build
from bastion.dataplane.envoy.cache import SnapshotCache
from bastion.dataplane.envoy.driver import EnvoyDataPlane
from bastion.dataplane.envoy.resources import SECRET
from bastion.translate.istio import Options
from tests.unit.build.test_build import DEFAULT, EDGE, put, secret, world


def served_serial(cache: SnapshotCache, name: str) -> bytes:
    snapshot = cache.get(DEFAULT)
    assert snapshot is not None
    message = snapshot.of(SECRET)[name].message
    return bytes(message.tls_certificate.certificate_chain.inline_bytes)  # type: ignore[attr-defined]


def test_each_group_gets_its_own_snapshot_and_a_lost_build_is_made_good(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        inputs, first = world()
        cache = SnapshotCache()
        driver = EnvoyDataPlane(cache, drain_s=50)
        assert driver.publish(first) == []
        assert set(cache.get(DEFAULT).of(SECRET)) == {"kubernetes://a"}  # type: ignore[union-attr]
        assert set(cache.get(EDGE).of(SECRET)) == {"kubernetes://b"}  # type: ignore[union-attr]
        before = served_serial(cache, "kubernetes://a")

        key = put(inputs, secret("a", 9, "a.example.com"), 8)
        second = build(first, inputs, 8, [DEFAULT, EDGE], Options(), {key})
        real_set = cache.set

        def refuse(*args, **kwargs):  # type: ignore[no-untyped-def]
            raise RuntimeError("lost")

        monkeypatch.setattr(cache, "set", refuse)
        assert driver.publish(second) != []
        monkeypatch.setattr(cache, "set", real_set)
        assert served_serial(cache, "kubernetes://a") == before  # the last good one stays

        # Nothing changes in the next build: its delta is empty, relative to the lost one.
        third = build(second, inputs, 9, [DEFAULT, EDGE], Options(), set())
        assert third.gateways[DEFAULT].delta is not None
        assert driver.publish(third) == []
        assert served_serial(cache, "kubernetes://a") != before
        assert cache.get(DEFAULT).generation == 9  # type: ignore[union-attr]

    asyncio.run(scenario())


def test_route_edit_of_servers_sharing_a_chain_renders_their_table_whole() -> None:
    from bastion.build import Inputs
    from bastion.dataplane.envoy.driver import render
    from bastion.dataplane.envoy.resources import LISTENER, ROUTE
    from bastion.memo import Memo
    from tests.unit.build.test_build import gateway, hashes, routes

    inputs = Inputs()
    for i, raw in enumerate([
            secret("shared", 1, "a.example.com"),
            gateway("gw-a", {"istio": "ingressgateway"}, "a.example.com", "shared"),
            gateway("gw-b", {"istio": "ingressgateway"}, "b.example.com", "shared"),
            routes("a", "a.example.com", "gw-a", "A"), routes("b", "b.example.com", "gw-b", "B")]):
        put(inputs, raw, i + 1)
    before = build(None, inputs, 5, [DEFAULT], Options())
    first = render(None, before.gateways[DEFAULT], 5, Memo())
    # One filter chain (both hosts) and one route table for the two servers.
    (listener,) = first.of(LISTENER).values()
    assert [list(c.filter_chain_match.server_names)
            for c in listener.message.filter_chains] == [["a.example.com", "b.example.com"]]
    assert len(first.of(ROUTE)) == 1
    key = put(inputs, routes("b", "b.example.com", "gw-b", "B2"), 6)
    fast = build(before, inputs, 6, [DEFAULT], Options(), {key})
    assert fast.gateways[DEFAULT].delta is not None and fast.gateways[DEFAULT].delta.servers
    whole = build(None, inputs, 6, [DEFAULT], Options())
    assert hashes(render(first, fast.gateways[DEFAULT], 6, Memo())) == hashes(
        render(None, whole.gateways[DEFAULT], 6, Memo()))


def test_a_route_that_starts_using_cors_renders_its_chain_with_the_filter() -> None:
    """A chain carries the CORS (and fault) filter only while one of its routes needs it: a
    route edit that adds a CORS policy is rendered whole, so the listener gains the filter."""
    from envoy.extensions.filters.network.http_connection_manager.v3 import (
        http_connection_manager_pb2 as hcm_pb2,
    )

    from bastion.build import Inputs
    from bastion.dataplane.envoy.driver import render
    from bastion.dataplane.envoy.resources import LISTENER
    from bastion.memo import Memo
    from tests.unit.build.test_build import gateway, hashes, routes

    def filters(snapshot) -> list[str]:  # type: ignore[no-untyped-def]
        (listener,) = snapshot.of(LISTENER).values()
        hcm = hcm_pb2.HttpConnectionManager()
        listener.message.filter_chains[0].filters[0].typed_config.Unpack(hcm)
        return [f.name for f in hcm.http_filters]

    inputs = Inputs()
    for i, raw in enumerate([secret("a", 1, "a.example.com"),
                             gateway("gw-a", {"istio": "ingressgateway"}, "a.example.com", "a"),
                             routes("a", "a.example.com", "gw-a", "A")]):
        put(inputs, raw, i + 1)
    before = build(None, inputs, 4, [DEFAULT], Options())
    first = render(None, before.gateways[DEFAULT], 4, Memo())
    assert filters(first) == ["envoy.filters.http.router"]
    with_cors = routes("a", "a.example.com", "gw-a", "A")
    with_cors["spec"]["http"][0]["corsPolicy"] = {"allowOrigins": [{"exact": "https://x.y"}]}
    key = put(inputs, with_cors, 5)
    fast = build(before, inputs, 5, [DEFAULT], Options(), {key})
    assert fast.gateways[DEFAULT].delta is not None and fast.gateways[DEFAULT].delta.servers
    rendered = render(first, fast.gateways[DEFAULT], 5, Memo())
    assert filters(rendered) == ["envoy.filters.http.cors", "envoy.filters.http.router"]
    whole = build(None, inputs, 5, [DEFAULT], Options())
    assert hashes(rendered) == hashes(render(None, whole.gateways[DEFAULT], 5, Memo()))
