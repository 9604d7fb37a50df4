"""The xDS state-of-the-world ADS stream as a state machine, without I/O.

Inputs are Envoy's DiscoveryRequests and new snapshots; outputs are the DiscoveryResponses to send,
in make-before-break order, plus events worth logging. The rules it keeps:

- every response carries a fresh nonce; a request answering an older nonce is stale and ignored;
- a request with `error_detail` is a NACK: it is recorded with Envoy's message, and the rejected
  content is not sent again; the type moves on only when its content changes;
- Listener and Cluster are wildcard types, sent whole; Route, Endpoint and Secret are sent per
  resource, and only the resources whose content changed (or that were newly asked for);
- a name asked for that does not exist yet is remembered and sent when it appears;
- a cluster sent again with new content is warmed by Envoy anew, which waits for its
  endpoints: they are sent again with it, changed or not.

A snapshot made from the one the session holds says which names it changed; the session then
compares and sends only those, and keeps the set of resources Envoy does not hold yet up to date
by name, so a rotation at 10,000 hosts costs what one secret costs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import discovery_pb2

from bastion.dataplane.envoy.resources import (
    CLUSTER,
    ENDPOINT,
    PUSH_ORDER,
    SHORT_NAMES,
    WILDCARD_TYPES,
)
from bastion.dataplane.envoy.snapshot import Snapshot
from bastion.errors import ProtocolError

__all__ = ["Event", "Nack", "ProtocolError", "Session", "TypeState"]


@dataclass(frozen=True)
class Event:
    """Something that happened on the stream, for the log and for status."""

    kind: str  # "subscribe", "ack", "nack", "send"
    type_url: str
    names: tuple[str, ...] = ()
    version: str = ""
    nonce: str = ""
    message: str = ""

    @property
    def short_type(self) -> str:
        return SHORT_NAMES.get(self.type_url, self.type_url)


@dataclass(frozen=True)
class Nack:
    version: str
    nonce: str
    message: str
    names: tuple[str, ...]


@dataclass
class TypeState:
    type_url: str
    wildcard: bool
    names: set[str] = field(default_factory=set)
    nonce: str | None = None
    version_sent: str = ""
    version_acked: str = ""
    sent: dict[str, str] = field(default_factory=dict)  # what Envoy holds if it accepts all
    acked: dict[str, str] = field(default_factory=dict)  # what Envoy has accepted
    inflight: dict[str, str] = field(default_factory=dict)  # payload of the last response
    last_nack: Nack | None = None
    nack_count: int = 0
    nack_current: bool = False  # no later response of this type was accepted yet
    responses_sent: int = 0
    resources_sent: int = 0
    bytes_sent: int = 0


@dataclass
class Session:
    node_id: str = ""
    node_cluster: str = ""
    snapshot: Snapshot | None = None
    types: dict[str, TypeState] = field(default_factory=dict)
    synced_generation: int = -1
    events: list[Event] = field(default_factory=list)
    _nonce: int = 0
    # (type, name) of the per-resource types' resources whose current content Envoy has not
    # accepted yet.
    _unsynced: set[tuple[str, str]] = field(default_factory=set)
    # Clusters just sent again with new content: their endpoints go out again with them.
    _rewarm: set[str] = field(default_factory=set)

    # -- inputs -----------------------------------------------------------------------------

    def on_request(self, request: discovery_pb2.DiscoveryRequest
                   ) -> list[discovery_pb2.DiscoveryResponse]:
        if request.HasField("node") and not self.node_id:
            self.node_id = request.node.id
            self.node_cluster = request.node.cluster
        if not request.type_url:
            raise ProtocolError("an ADS request must carry type_url")
        state = self.types.get(request.type_url)
        if state is None:
            state = self.types[request.type_url] = TypeState(
                request.type_url, request.type_url in WILDCARD_TYPES)
        first = state.nonce is None and not request.response_nonce
        if request.response_nonce:
            if request.response_nonce != state.nonce:
                return []  # stale: a newer response is on its way to Envoy
            if request.HasField("error_detail"):
                self._nack(state, request)
            else:
                self._ack(state)
        added = self._update_names(state, request)
        response = self._respond(state, force=added, initial=first)
        self._check_sync()
        return [response] if response is not None else []

    def on_snapshot(self, snapshot: Snapshot) -> list[discovery_pb2.DiscoveryResponse]:
        previous = self.snapshot
        self.snapshot = snapshot
        out = []
        if previous is not None and snapshot.parent == previous.serial:
            for type_url in PUSH_ORDER:
                names = snapshot.changes.get(type_url)
                state = self.types.get(type_url)
                if type_url == ENDPOINT and self._rewarm and state is not None:
                    names = frozenset(names or ()) | self._rewarm
                if names is None:
                    continue
                if type_url not in WILDCARD_TYPES:
                    self._mark(type_url, names)
                if state is None:
                    continue
                response = self._respond(state, only=None if state.wildcard else names)
                if response is not None:
                    out.append(response)
        else:
            self._resync()
            for type_url in PUSH_ORDER:
                state = self.types.get(type_url)
                if state is None:
                    continue
                # A type asked for before there was any snapshot is answered now, even empty.
                response = self._respond(state, initial=state.nonce is None)
                if response is not None:
                    out.append(response)
        self._check_sync()
        return out

    def drain_events(self) -> list[Event]:
        events, self.events = self.events, []
        return events

    # -- queries ----------------------------------------------------------------------------

    def in_sync(self) -> bool:
        """Envoy holds (has ACKed) every resource of the current snapshot."""
        snapshot = self.snapshot
        if snapshot is None or self._unsynced:
            return False
        if any(state.inflight for state in self.types.values()):
            return False  # a response is still waiting for its ACK
        for type_url in WILDCARD_TYPES:
            available = snapshot.of(type_url)
            state = self.types.get(type_url)
            if state is None:
                if available:
                    return False
                continue
            if state.nonce is None or state.acked.keys() != available.keys() or any(
                    state.acked[n] != r.hash for n, r in available.items()):
                return False
        return True

    def _mark(self, type_url: str, names: Iterable[str]) -> None:
        """Recompute whether Envoy holds the current content of these resources."""
        assert self.snapshot is not None
        available = self.snapshot.of(type_url)
        state = self.types.get(type_url)
        acked = state.acked if state is not None else {}
        for name in names:
            resource = available.get(name)
            if resource is None or acked.get(name) == resource.hash:
                self._unsynced.discard((type_url, name))
            else:
                self._unsynced.add((type_url, name))

    def _resync(self) -> None:
        self._unsynced = set()
        if self.snapshot is None:
            return
        for type_url in PUSH_ORDER:
            if type_url not in WILDCARD_TYPES:
                self._mark(type_url, self.snapshot.of(type_url))

    # -- internals --------------------------------------------------------------------------

    def _ack(self, state: TypeState) -> None:
        if state.wildcard:
            state.acked = dict(state.inflight)
        else:
            state.acked.update(state.inflight)
            if self.snapshot is not None:
                self._mark(state.type_url, state.inflight)
        state.version_acked = state.version_sent
        if state.inflight:
            state.nack_current = False
            self.events.append(Event("ack", state.type_url, tuple(sorted(state.inflight)),
                                     state.version_sent, state.nonce or ""))
        state.inflight = {}

    def _nack(self, state: TypeState, request: discovery_pb2.DiscoveryRequest) -> None:
        nack = Nack(state.version_sent, request.response_nonce, request.error_detail.message,
                    tuple(sorted(state.inflight)))
        state.last_nack = nack
        state.nack_count += 1
        state.nack_current = True
        self.events.append(Event("nack", state.type_url, nack.names, nack.version, nack.nonce,
                                 nack.message))
        state.inflight = {}

    def _update_names(self, state: TypeState, request: discovery_pb2.DiscoveryRequest) -> set[str]:
        if state.wildcard:
            return set()
        names = set(request.resource_names)
        added = names - state.names
        dropped = state.names - names
        for gone in dropped:
            state.sent.pop(gone, None)
            state.acked.pop(gone, None)
        state.names = names
        if dropped and self.snapshot is not None:
            self._mark(state.type_url, dropped)
        if added:
            self.events.append(Event("subscribe", state.type_url, tuple(sorted(added))))
        return added

    def _respond(self, state: TypeState, force: set[str] | None = None, initial: bool = False,
                 only: Iterable[str] | None = None) -> discovery_pb2.DiscoveryResponse | None:
        """With `only`, just those names can have changed (per-resource types)."""
        snapshot = self.snapshot
        if snapshot is None:
            return None
        available = snapshot.of(state.type_url)
        if state.wildcard:
            want = {n: r.hash for n, r in available.items()}
            if not initial and want == state.sent:
                return None
            chosen = sorted(available)
            if state.type_url == CLUSTER:
                self._rewarm |= {n for n, h in want.items()
                                 if n in state.sent and state.sent[n] != h}
            state.sent = want
        else:
            force = force or set()
            if state.type_url == ENDPOINT and self._rewarm:
                force = force | self._rewarm
                self._rewarm = set()
            candidates = state.names if only is None else state.names.intersection(only)
            chosen = sorted(n for n in candidates if n in available and (
                n in force or state.sent.get(n) != available[n].hash))
            if not chosen:
                return None
            state.sent.update({n: available[n].hash for n in chosen})
        self._nonce += 1
        state.nonce = str(self._nonce)
        state.version_sent = snapshot.version(state.type_url)
        state.inflight = {n: available[n].hash for n in chosen}
        response = discovery_pb2.DiscoveryResponse(
            version_info=state.version_sent,
            type_url=state.type_url,
            nonce=state.nonce,
            control_plane=base_pb2.ControlPlane(identifier="bastion"),
        )
        for name in chosen:
            response.resources.add().Pack(available[name].message)
        state.responses_sent += 1
        state.resources_sent += len(chosen)
        state.bytes_sent += response.ByteSize()
        self.events.append(Event("send", state.type_url, tuple(chosen), state.version_sent,
                                 state.nonce))
        return response

    def bytes_sent(self) -> int:
        return sum(state.bytes_sent for state in self.types.values())

    def _check_sync(self) -> None:
        if self.snapshot is not None and self.in_sync():
            self.synced_generation = self.snapshot.generation
