"""The snapshot cache: one snapshot per gateway group, refused (keeping the previous one) when
it is not whole; a watch starts with the current snapshot and sees each new one; a group nobody
built for is announced when a gateway of it starts watching."""

from __future__ import annotations

import asyncio

import pytest
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2

from bastion.dataplane.envoy.cache import InconsistentSnapshot, SnapshotCache
from bastion.dataplane.envoy.resources import LISTENER, PUSH_ORDER, SECRET, XdsResources
from bastion.dataplane.envoy.snapshot import build_snapshot
from bastion.ir.workload import Workload

A = Workload.of({"app": "a"}, "edge")
B = Workload.of({"app": "b"}, "edge")


def snapshot(generation: int, orphan_secret: bool = False):  # type: ignore[no-untyped-def]
    by_type = {t: {} for t in PUSH_ORDER}
    by_type[LISTENER]["l"] = listener_pb2.Listener(name="l")
    if orphan_secret:
        by_type[SECRET]["kubernetes://nobody"] = secret_pb2.Secret(name="kubernetes://nobody")
    return build_snapshot(XdsResources(by_type), generation)


def test_inconsistent_snapshot_is_refused_and_the_last_good_one_stays() -> None:
    async def scenario() -> None:
        cache = SnapshotCache()
        good = snapshot(1)
        cache.set(A, good)
        with pytest.raises(InconsistentSnapshot, match="never referenced"):
            cache.set(A, snapshot(2, orphan_secret=True))
        assert cache.get(A) is good
        assert cache.get(B) is None

    asyncio.run(scenario())


def test_watch_follows_one_group_and_announces_new_groups() -> None:
    async def scenario() -> None:
        announced: list[Workload] = []
        cache = SnapshotCache(on_new_group=announced.append)
        cache.set(A, first := snapshot(1))
        seen_a = cache.watch(A)
        assert await asyncio.wait_for(anext(seen_a), 1) is first
        seen_b = cache.watch(B)
        waiting_b = asyncio.ensure_future(anext(seen_b))
        await asyncio.sleep(0.05)
        assert announced == [B] and not waiting_b.done()
        assert cache.groups() == {A, B} and cache.watched(B)
        cache.set(A, second := snapshot(2))
        assert await asyncio.wait_for(anext(seen_a), 1) is second
        assert not waiting_b.done()
        cache.set(B, for_b := snapshot(3))
        assert await asyncio.wait_for(waiting_b, 1) is for_b
        await seen_a.aclose()
        await seen_b.aclose()
        assert not cache.watched(B)

    asyncio.run(scenario())
