"""The agent's side of ADS against the control plane's, both without I/O: the agent follows what
the listeners and clusters name, acknowledges every response, and hands on only whole
configurations, equal to the control plane's."""

from __future__ import annotations

import asyncio

from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import discovery_pb2

from bastion.build import build
from bastion.dataplane.envoy.cache import SnapshotCache
from bastion.dataplane.envoy.driver import EnvoyDataPlane
from bastion.dataplane.envoy.protocol import Session
from bastion.dataplane.envoy.resources import CLUSTER, LISTENER, PUSH_ORDER, SECRET
from bastion.dataplane.envoy.snapshot import Snapshot, consistency_problems
from bastion.dataplane.envoy.upstream import UpstreamSession
from bastion.translate.istio import Options
from tests.unit.build.test_build import DEFAULT, EDGE, gateway, put, secret, world


def hashes(snapshot: Snapshot) -> dict[str, dict[str, str]]:
    return {t: {n: r.hash for n, r in snapshot.of(t).items()} for t in PUSH_ORDER}


def node() -> base_pb2.Node:
    return base_pb2.Node(id="router~gw1.istio-system~h", cluster="gw1")


class Wire:
    """Carries messages both ways until neither side has anything to say."""

    def __init__(self, server: Session, agent: UpstreamSession) -> None:
        self.server, self.agent = server, agent
        self.published: list[Snapshot] = []
        self.requests = 0

    def run(self, requests: list[discovery_pb2.DiscoveryRequest],
            responses: list[discovery_pb2.DiscoveryResponse] | None = None) -> None:
        responses = list(responses or [])
        for _ in range(1000):
            if requests:
                self.requests += 1
                responses += self.server.on_request(requests.pop(0))
            elif responses:
                more, snapshot = self.agent.on_response(responses.pop(0))
                requests += more
                if snapshot is not None:
                    self.published.append(snapshot)
            else:
                return
        raise AssertionError("the conversation never settled")


def snapshots() -> tuple[Snapshot, Snapshot, list[Snapshot]]:
    """The control plane's snapshot of DEFAULT, then after a rotation and a new Gateway."""
    async def made() -> tuple[Snapshot, Snapshot, list[Snapshot]]:
        inputs, first = world()
        cache = SnapshotCache()
        driver = EnvoyDataPlane(cache, drain_s=50)
        driver.publish(first)
        one = cache.get(DEFAULT)
        key = put(inputs, secret("a", 9, "a.example.com"), 8)
        keys = {key, put(inputs, secret("c", 3, "c.example.com"), 9),
                put(inputs, gateway("gc", {"istio": "ingressgateway"}, "c.example.com", "c"), 10)}
        second = build(first, inputs, 10, [DEFAULT, EDGE], Options(), keys)
        driver.publish(second)
        two = cache.get(DEFAULT)
        assert one is not None and two is not None
        return one, two, [cache.get(EDGE)]  # type: ignore[list-item]

    return asyncio.run(made())


def test_the_agent_receives_the_whole_configuration_and_follows_changes() -> None:
    one, two, _ = snapshots()
    server, agent = Session(), UpstreamSession(node())
    server.on_snapshot(one)
    wire = Wire(server, agent)
    wire.run(agent.start())
    assert len(wire.published) == 1  # nothing partial came out first
    assert hashes(wire.published[0]) == hashes(one)
    assert consistency_problems(wire.published[0]) == []
    assert server.in_sync()  # every response was acknowledged

    wire.run([], server.on_snapshot(two))  # a rotation, a new secret, listener and route
    assert hashes(wire.published[-1]) == hashes(two)
    assert consistency_problems(wire.published[-1]) == []
    assert server.in_sync()
    assert {"kubernetes://c"} <= set(wire.published[-1].of(SECRET))


def test_a_new_stream_from_what_is_known_asks_everything_at_once_and_repeats_nothing() -> None:
    one, _, _ = snapshots()
    server, agent = Session(), UpstreamSession(node(), known=one)
    server.on_snapshot(one)
    wire = Wire(server, agent)
    first = agent.start()
    asked = {(r.type_url, n) for r in first for n in r.resource_names}
    assert {LISTENER, CLUSTER, SECRET} <= {r.type_url for r in first}
    assert asked == set(one.wanted())  # every name, before any answer
    assert first[0].node.cluster == "gw1"
    wire.run(first)
    assert wire.published == []  # the same configuration: nothing to hand on
    assert server.in_sync()


def test_a_response_that_cannot_be_read_is_refused_with_the_reason() -> None:
    agent = UpstreamSession(node())
    agent.start()
    bad = discovery_pb2.DiscoveryResponse(type_url=SECRET, nonce="7", version_info="v")
    bad.resources.add().type_url = CLUSTER  # a cluster where secrets were promised
    replies, snapshot = agent.on_response(bad)
    assert snapshot is None and agent.nacks == 1
    assert replies[0].response_nonce == "7" and "Cluster" in replies[0].error_detail.message
