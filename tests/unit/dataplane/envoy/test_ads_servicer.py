"""The real ADS servicer over a real in-process gRPC channel, without Envoy: gateways of two
groups each receive their own group's snapshots, and a stream starts on the snapshot that was
there before it connected."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
from envoy.config.cluster.v3 import cluster_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import struct_pb2

from bastion.dataplane.envoy.ads import AggregatedDiscovery, node_group
from bastion.dataplane.envoy.cache import SnapshotCache
from bastion.dataplane.envoy.connections import Connections
from bastion.dataplane.envoy.resources import CLUSTER, PUSH_ORDER, XdsResources
from bastion.dataplane.envoy.snapshot import build_snapshot
from bastion.ir.workload import Workload

A = Workload.of({"app": "a"}, "edge")
B = Workload.of({"app": "b"}, "edge")


def snapshot(generation: int, cluster: str):  # type: ignore[no-untyped-def]
    by_type = {t: {} for t in PUSH_ORDER}
    by_type[CLUSTER][cluster] = cluster_pb2.Cluster(name=cluster)
    return build_snapshot(XdsResources(by_type), generation)


def request(group: Workload, type_url: str, nonce: str = "") -> discovery_pb2.DiscoveryRequest:
    req = discovery_pb2.DiscoveryRequest(type_url=type_url, response_nonce=nonce)
    req.node.id = f"gw-{group.label_map['app']}"
    labels = struct_pb2.Struct()
    labels.update(group.label_map)
    req.node.metadata.fields["LABELS"].struct_value.CopyFrom(labels)
    req.node.metadata.fields["NAMESPACE"].string_value = group.namespace
    return req


def cluster_names(response: discovery_pb2.DiscoveryResponse) -> list[str]:
    out = []
    for packed in response.resources:
        cluster = cluster_pb2.Cluster()
        packed.Unpack(cluster)
        out.append(cluster.name)
    return out


def test_node_metadata_names_the_group() -> None:
    req = request(A, CLUSTER)
    assert node_group(req.node) == A
    assert node_group(discovery_pb2.DiscoveryRequest().node) == Workload.of({}, "istio-system")


def test_each_group_receives_its_own_snapshots(tmp_path: Path) -> None:
    async def scenario() -> None:
        cache, connections = SnapshotCache(), Connections()
        cache.set(A, snapshot(1, "only-a"))
        server = grpc.aio.server()
        ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(
            AggregatedDiscovery(cache, connections), server)
        address = f"unix:{tmp_path / 'xds.sock'}"
        server.add_insecure_port(address)
        await server.start()
        try:
            async with grpc.aio.insecure_channel(address) as channel:
                stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
                a_requests: asyncio.Queue[discovery_pb2.DiscoveryRequest] = asyncio.Queue()
                b_requests: asyncio.Queue[discovery_pb2.DiscoveryRequest] = asyncio.Queue()

                async def feed(queue):  # type: ignore[no-untyped-def]
                    while True:
                        yield await queue.get()

                a_stream = stub.StreamAggregatedResources(feed(a_requests))
                b_stream = stub.StreamAggregatedResources(feed(b_requests))
                a_requests.put_nowait(request(A, CLUSTER))
                first = await asyncio.wait_for(a_stream.read(), 5)
                assert cluster_names(first) == ["only-a"]
                # B's group has no snapshot yet: B waits, and gets B's when it is set.
                b_requests.put_nowait(request(B, CLUSTER))
                await asyncio.sleep(0.2)
                cache.set(B, snapshot(2, "only-b"))
                second = await asyncio.wait_for(b_stream.read(), 5)
                assert cluster_names(second) == ["only-b"]
                # A's next snapshot reaches A and not B.
                a_requests.put_nowait(request(A, CLUSTER, first.nonce))
                b_requests.put_nowait(request(B, CLUSTER, second.nonce))
                cache.set(A, snapshot(3, "a-two"))
                third = await asyncio.wait_for(a_stream.read(), 5)
                assert cluster_names(third) == ["a-two"]
                await asyncio.sleep(0.2)
                assert {c.group for c in connections.all} == {A, B}
                b_synced = next(c for c in connections.all if c.group == B)
                assert b_synced.session.synced_generation == 2
                a_stream.cancel()
                b_stream.cancel()
        finally:
            await server.stop(0)

    asyncio.run(scenario())
