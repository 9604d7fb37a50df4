"""The gRPC ADS servicer: it only moves messages between the stream and the protocol session."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import grpc
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from bastion.memory import release_free_memory
from bastion.runtime import Runtime
from bastion.xds.protocol import ProtocolError

log = logging.getLogger("bastion.ads")
END = object()
# After a push this large, the serialised responses just freed are handed back to the system.
LARGE_PUSH_BYTES = 4 << 20


class AggregatedDiscovery(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def StreamAggregatedResources(
        self, request_iterator: AsyncIterator[discovery_pb2.DiscoveryRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[discovery_pb2.DiscoveryResponse]:
        conn = self.runtime.connect(context.peer() or "unknown")
        reader = asyncio.create_task(self._read(request_iterator, conn.queue))
        announced = False
        try:
            while True:
                item = await conn.queue.get()
                if item is END:
                    break
                sent_before = conn.session.bytes_sent()
                try:
                    if isinstance(item, discovery_pb2.DiscoveryRequest):
                        responses = conn.session.on_request(item)
                    else:
                        responses = conn.session.on_snapshot(item)
                except ProtocolError as exc:
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
                    return
                if not announced and conn.session.node_id:
                    announced = True
                    logging.getLogger("bastion").info(
                        "gateway %s connected", conn.session.node_id)
                self.runtime.record_events(conn, conn.session.drain_events())
                large = conn.session.bytes_sent() - sent_before > LARGE_PUSH_BYTES
                while responses:  # popped, so nothing here still holds a sent response
                    yield responses.pop(0)
                if large:
                    release_free_memory()
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            self.runtime.disconnect(conn)

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
