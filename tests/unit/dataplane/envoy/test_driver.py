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
