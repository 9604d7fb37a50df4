"""The xDS state-of-the-world ADS stream as a state machine, without I/O.

Inputs are Envoy's DiscoveryRequests and new snapshots; outputs are the DiscoveryResponses to send,
in make-before-break order, plus events worth logging. The rules it keeps:

- every response carries a fresh nonce; a request answering an older nonce is stale and ignored;
- a request with `error_detail` is a NACK: it is recorded with Envoy's message, and the rejected
  content is not sent again; the type moves on only when its content changes;
- Listener and Cluster are wildcard types, sent whole; Route, Endpoint and Secret are sent per
  resource, and only the resources whose content changed (or that were newly asked for);
- a name asked for that does not exist yet is remembered and sent when it appears.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import discovery_pb2

from bastion.translate.xds.resources import PUSH_ORDER, SHORT_NAMES, WILDCARD_TYPES
from bastion.xds.snapshot import Snapshot


class ProtocolError(Exception):
    """The client broke the protocol; the stream should be closed with this message."""


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
        self.snapshot = snapshot
        out = []
        for type_url in PUSH_ORDER:
            state = self.types.get(type_url)
            if state is None:
                continue
            response = self._respond(state)
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
        if snapshot is None:
            return False
        if any(state.inflight for state in self.types.values()):
            return False  # a response is still waiting for its ACK
        for type_url in PUSH_ORDER:
            want = snapshot.hashes(type_url)
            state = self.types.get(type_url)
            if state is None:
                if want:
                    return False
                continue
            if state.wildcard:
                if state.nonce is None or state.acked != want:
                    return False
            elif not want.items() <= state.acked.items():
                return False
        return True

    # -- internals --------------------------------------------------------------------------

    def _ack(self, state: TypeState) -> None:
        if state.wildcard:
            state.acked = dict(state.inflight)
        else:
            state.acked.update(state.inflight)
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
        for gone in state.names - names:
            state.sent.pop(gone, None)
            state.acked.pop(gone, None)
        state.names = names
        if added:
            self.events.append(Event("subscribe", state.type_url, tuple(sorted(added))))
        return added

    def _respond(self, state: TypeState, force: set[str] | None = None, initial: bool = False
                 ) -> discovery_pb2.DiscoveryResponse | None:
        snapshot = self.snapshot
        if snapshot is None:
            return None
        available = snapshot.of(state.type_url)
        if state.wildcard:
            want = {n: r.hash for n, r in available.items()}
            if not initial and want == state.sent:
                return None
            chosen = sorted(available)
            state.sent = want
        else:
            force = force or set()
            chosen = sorted(n for n in state.names if n in available and (
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
