"""A gateway agent's link to its control planes: one ADS stream at a time, over TCP with mutual
TLS, moving to the next control plane when the current one goes away (a reset, or keepalive
pings unanswered on a cut link). Each whole configuration received is handed to `publish`;
between control planes nothing is handed on, so the Envoy beside the agent keeps serving what
it holds.

The response that completes a configuration is acknowledged once `publish` returns, which is
when the agent's Envoy has taken it: the control plane's view of what each gateway holds (its
status, `bastion wait`) is then Envoy's, not the agent's."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from bastion.dataplane.envoy.snapshot import Snapshot
from bastion.dataplane.envoy.upstream import UpstreamSession
from bastion.identity import CONTROL_PLANE_NAME
from bastion.private import PrivateBytes

log = logging.getLogger("bastion.relay")
MAX_MESSAGE = 512 * 1024 * 1024
CONNECT_TIMEOUT_S = 3.0
BACKOFF_START_S = 0.2
BACKOFF_MAX_S = 5.0
# A silent link is noticed in about four seconds: a ping every two, two to answer it.
KEEPALIVE_OPTIONS = (
    ("grpc.keepalive_time_ms", 2000),
    ("grpc.keepalive_timeout_ms", 2000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
)


@dataclass(frozen=True)
class Credentials:
    """PEM bytes of the agent's certificate chain and key, and of the xDS CA."""

    chain: bytes
    key: PrivateBytes = field(repr=False)
    ca: bytes

    def grpc(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(root_certificates=self.ca,
                                            private_key=self.key.reveal(),
                                            certificate_chain=self.chain)


class Relay:
    def __init__(self, endpoints: list[str], credentials: Credentials, node: base_pb2.Node,
                 publish: Callable[[Snapshot], Awaitable[None]],
                 known: Snapshot | None = None) -> None:
        self.endpoints = endpoints
        self.credentials = credentials
        self.node = node
        self.publish = publish
        self.known = known
        self.current: str | None = None  # the control plane streaming now
        self.connected_at = 0.0
        self.last_error = ""
        self.failovers = 0
        self.received_at = 0.0  # when the last whole configuration came

    def status(self) -> dict[str, Any]:
        now = time.time()
        return {
            "controlPlanes": self.endpoints, "current": self.current,
            "connectedSeconds": round(now - self.connected_at, 1) if self.current else None,
            "lastConfigSeconds": round(now - self.received_at, 1) if self.received_at else None,
            "failovers": self.failovers, "lastError": self.last_error,
        }

    async def run(self) -> None:
        backoff = BACKOFF_START_S
        index = 0
        while True:
            endpoint = self.endpoints[index % len(self.endpoints)]
            started = time.monotonic()
            await self._stream(endpoint)
            if self.current is not None:
                self.failovers += 1
            self.current = None
            index += 1
            if time.monotonic() - started > 10:
                backoff = BACKOFF_START_S  # that one worked for a while: try the next at once
                continue
            if index % len(self.endpoints) == 0:  # every one failed in turn: wait a little
                log.warning("no control plane answers (last: %s); serving what Envoy holds",
                            self.last_error)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)

    def channel(self, endpoint: str) -> grpc.aio.Channel:
        """A channel to a control plane, with the agent's current certificate."""
        return grpc.aio.secure_channel(endpoint, self.credentials.grpc(), options=[
            ("grpc.ssl_target_name_override", CONTROL_PLANE_NAME),
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.max_send_message_length", MAX_MESSAGE),
            *KEEPALIVE_OPTIONS,
        ])

    async def _stream(self, endpoint: str) -> None:
        channel = self.channel(endpoint)
        try:
            try:
                await asyncio.wait_for(channel.channel_ready(), CONNECT_TIMEOUT_S)
            except TimeoutError:
                self._failed(endpoint, f"no connection in {CONNECT_TIMEOUT_S:g}s")
                return
            session = UpstreamSession(self.node, self.known)
            outgoing: asyncio.Queue[discovery_pb2.DiscoveryRequest] = asyncio.Queue()
            for request in session.start():
                outgoing.put_nowait(request)

            async def requests() -> AsyncIterator[discovery_pb2.DiscoveryRequest]:
                while True:
                    yield await outgoing.get()

            stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
            call = stub.StreamAggregatedResources(requests())
            self.current, self.connected_at = endpoint, time.time()
            log.info("connected to control plane %s", endpoint)
            async for response in call:
                replies, snapshot = session.on_response(response)
                if snapshot is not None:
                    self.known = snapshot
                    self.received_at = time.time()
                    await self.publish(snapshot)
                for reply in replies:
                    outgoing.put_nowait(reply)
            self._failed(endpoint, "the control plane ended the stream")
        except grpc.aio.AioRpcError as exc:
            self._failed(endpoint, f"{exc.code().name}: {exc.details()}", exc.code() in (
                grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED))
        finally:
            await channel.close(grace=None)

    def _failed(self, endpoint: str, why: str, refused: bool = False) -> None:
        """A refusal (the certificate may not be this gateway) is an error the operator must
        fix; a control plane going away is a warning; one not answering yet, information."""
        self.last_error = f"{endpoint}: {why}"
        level = (logging.ERROR if refused else
                 logging.WARNING if self.current is not None else logging.INFO)
        log.log(level, "control plane %s: %s; trying the next", endpoint, why)
