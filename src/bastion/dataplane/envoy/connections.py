"""The gateways connected over ADS: who they are, what each has accepted, and the log of what
happened on their streams. `status` and `wait --for=distribution` read it."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from bastion import metrics
from bastion.dataplane.envoy.protocol import Event, Session
from bastion.dataplane.envoy.resources import SHORT_NAMES
from bastion.ir.workload import Workload

log = logging.getLogger("bastion")


@dataclass
class Connection:
    session: Session
    peer: str
    group: Workload | None = None
    connected_at: float = field(default_factory=time.time)

    @property
    def name(self) -> str:
        return self.session.node_id or self.peer


class Connections:
    def __init__(self) -> None:
        self.all: list[Connection] = []
        # The last response sent on each stream and type: (nonce, when), until answered.
        self._pending: dict[tuple[int, str], tuple[str, float]] = {}
        self._progress = asyncio.Condition()
        self._notifiers: set[asyncio.Task[None]] = set()

    def add(self, peer: str) -> Connection:
        conn = Connection(Session(), peer)
        self.all.append(conn)
        return conn

    def remove(self, conn: Connection) -> None:
        if conn in self.all:
            self.all.remove(conn)
        for key in [k for k in self._pending if k[0] == id(conn)]:
            del self._pending[key]
        log.info("gateway %s disconnected", conn.name)
        self._notify()

    def record(self, conn: Connection, events: list[Event]) -> None:
        """Log what happened on a stream (NACKs as errors, with Envoy's reason)."""
        node = conn.name
        for event in events:
            kind = event.short_type
            self._count(conn, event)
            names = ", ".join(event.names)
            if event.kind == "nack":
                log.error("gateway %s rejected (NACK) %s version %s [%s]: %s", node, kind,
                          event.version, names, event.message)
            elif event.kind == "subscribe":
                log.info("gateway %s requested %s: %s", node, kind, names)
            elif event.kind == "ack" and kind == "SDS":
                log.info("gateway %s accepted (ACK) %s version %s: %s", node, kind,
                         event.version, names)
            elif event.kind == "ack":
                log.debug("gateway %s ACK %s version %s", node, kind, event.version)
            elif event.kind == "send":
                level = logging.INFO if kind == "SDS" else logging.DEBUG
                log.log(level, "pushed %s version %s to %s: %s", kind, event.version, node,
                        names or "(none)")
        if events:
            self._notify()

    def _count(self, conn: Connection, event: Event) -> None:
        kind, key = event.short_type, (id(conn), event.type_url)
        if event.kind == "send":
            metrics.XDS_PUSHES.labels(kind).inc()
            self._pending[key] = (event.nonce, time.monotonic())
            return
        if event.kind not in ("ack", "nack"):
            return
        (metrics.XDS_ACKS if event.kind == "ack" else metrics.XDS_NACKS).labels(kind).inc()
        pending = self._pending.get(key)
        if pending is not None and pending[0] == event.nonce:
            metrics.XDS_PUSH_SECONDS.labels(kind).observe(time.monotonic() - pending[1])
            del self._pending[key]

    def _notify(self) -> None:
        task = asyncio.get_running_loop().create_task(self._wake())
        self._notifiers.add(task)
        task.add_done_callback(self._notifiers.discard)

    async def _wake(self) -> None:
        async with self._progress:
            self._progress.notify_all()

    def synced(self, revision: int) -> bool:
        """Every connected gateway holds a snapshot built from `revision` or later."""
        return bool(self.all) and all(
            c.session.synced_generation >= revision for c in self.all)

    async def wait_synced(self, revision: int, timeout: float) -> bool:
        async with self._progress:
            try:
                await asyncio.wait_for(self._progress.wait_for(lambda: self.synced(revision)),
                                       timeout)
            except TimeoutError:
                return False
        return True

    def status(self) -> list[dict[str, Any]]:
        gateways = []
        for conn in self.all:
            s = conn.session
            types = {}
            for type_url, state in sorted(s.types.items()):
                types[SHORT_NAMES.get(type_url, type_url)] = {
                    "sent": state.version_sent,
                    "acked": state.version_acked,
                    "resources": len(state.acked),
                    "nacks": state.nack_count,
                    "lastNack": state.last_nack.message if state.last_nack else None,
                    "nackCurrent": state.nack_current,
                    "responsesSent": state.responses_sent,
                    "resourcesSent": state.resources_sent,
                    "bytesSent": state.bytes_sent,
                }
            gateways.append({
                "node": s.node_id, "peer": conn.peer,
                "group": str(conn.group) if conn.group is not None else None,
                "connectedSeconds": round(time.time() - conn.connected_at, 1),
                "inSync": s.in_sync(), "syncedRevision": s.synced_generation, "types": types,
            })
        return gateways
