"""The gRPC ADS servicer: it only moves messages between the stream, the protocol session and
the snapshot cache. The gateway's first request says which group it belongs to (its node
metadata); from then on the stream follows that group's snapshots."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from bastion.dataplane.envoy.cache import SnapshotCache
from bastion.dataplane.envoy.connections import Connections
from bastion.errors import ProtocolError
from bastion.identity import GatewayIdentity
from bastion.ir.workload import Workload
from bastion.memory import release_free_memory

log = logging.getLogger("bastion.ads")
END = object()
# After a push this large, the serialised responses just freed are handed back to the system.
LARGE_PUSH_BYTES = 4 << 20
# Where a gateway that declares no namespace is taken to run: Istio's ingress gateway's.
DEFAULT_NAMESPACE = "istio-system"


def node_group(node: base_pb2.Node) -> Workload:
    """The group a gateway declares in its node metadata, as Istio's gateways do: `LABELS` (a
    map) and `NAMESPACE`."""
    fields = node.metadata.fields
    labels: dict[str, str] = {}
    if "LABELS" in fields and fields["LABELS"].HasField("struct_value"):
        labels = {k: v.string_value
                  for k, v in fields["LABELS"].struct_value.fields.items()}
    namespace = DEFAULT_NAMESPACE
    if "NAMESPACE" in fields and fields["NAMESPACE"].string_value:
        namespace = fields["NAMESPACE"].string_value
    return Workload.of(labels, namespace)


def authorize(context: grpc.aio.ServicerContext, node: base_pb2.Node, group: Workload) -> str:
    """Why a stream may not have what it asks for ('' if it may). A gateway that connected
    with a client certificate (over TCP) may only be the gateway (the node's cluster) and
    read the namespace its certificate names, as Istio lets a proxy read only its own
    namespace's secrets. A local gateway (the Unix socket, open to the owner only) is
    trusted."""
    auth = context.auth_context() or {}
    certificates = auth.get("x509_pem_cert") or []
    if not certificates:
        secured = b"ssl" in (auth.get("transport_security_type") or [])
        return "a client certificate is required" if secured else ""
    identity = GatewayIdentity.of_certificate(certificates[0])
    if identity is None:
        return "the client certificate names no bastion gateway identity"
    if node.cluster != identity.name or group.namespace != identity.namespace:
        return (f"the certificate of {identity} may not connect as gateway "
                f"{node.cluster!r} in namespace {group.namespace!r}")
    return ""


class AggregatedDiscovery(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):
    def __init__(self, cache: SnapshotCache, connections: Connections) -> None:
        self.cache = cache
        self.connections = connections

    async def StreamAggregatedResources(
        self, request_iterator: AsyncIterator[discovery_pb2.DiscoveryRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[discovery_pb2.DiscoveryResponse]:
        conn = self.connections.add(context.peer() or "unknown")
        queue: asyncio.Queue[object] = asyncio.Queue()
        reader = asyncio.create_task(self._read(request_iterator, queue))
        watcher: asyncio.Task[None] | None = None
        try:
            while True:
                item = await queue.get()
                if item is END:
                    break
                sent_before = conn.session.bytes_sent()
                first = watcher is None
                try:
                    if isinstance(item, discovery_pb2.DiscoveryRequest):
                        if watcher is None:
                            if not item.HasField("node"):
                                raise ProtocolError("the first ADS request must carry node")
                            conn.group = node_group(item.node)
                            refusal = authorize(context, item.node, conn.group)
                            if refusal:
                                log.warning("refused a gateway stream from %s: %s",
                                            conn.peer, refusal)
                                await context.abort(grpc.StatusCode.PERMISSION_DENIED, refusal)
                                return
                            watcher = asyncio.create_task(self._watch(conn.group, queue))
                        responses = conn.session.on_request(item)
                    else:
                        responses = conn.session.on_snapshot(item)  # type: ignore[arg-type]
                except ProtocolError as exc:
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
                    return
                if first:
                    logging.getLogger("bastion").info(
                        "gateway %s connected (group %s)", conn.name, conn.group)
                self.connections.record(conn, conn.session.drain_events())
                large = conn.session.bytes_sent() - sent_before > LARGE_PUSH_BYTES
                while responses:  # popped, so nothing here still holds a sent response
                    yield responses.pop(0)
                if large:
                    release_free_memory()
        finally:
            for task in (reader, watcher):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            self.connections.remove(conn)

    async def _watch(self, group: Workload, queue: asyncio.Queue[object]) -> None:
        async for snapshot in self.cache.watch(group):
            queue.put_nowait(snapshot)

    @staticmethod
    async def _read(requests: AsyncIterator[discovery_pb2.DiscoveryRequest],
                    queue: asyncio.Queue[object]) -> None:
        try:
            async for request in requests:
                queue.put_nowait(request)
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            pass
        except Exception:
            log.exception("error reading the ADS stream")
        finally:
            queue.put_nowait(END)

    async def DeltaAggregatedResources(
        self, request_iterator: AsyncIterator[discovery_pb2.DeltaDiscoveryRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[discovery_pb2.DeltaDiscoveryResponse]:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED,
                            "bastion serves state-of-the-world ADS only")
        yield discovery_pb2.DeltaDiscoveryResponse()  # pragma: no cover (unreachable)


def add_to_server(server: grpc.aio.Server, cache: SnapshotCache, connections: Connections) -> None:
    """Serve ADS from `cache` on `server`."""
    ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(
        AggregatedDiscovery(cache, connections), server)
