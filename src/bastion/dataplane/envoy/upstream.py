"""The other end of an ADS stream, as a state machine without I/O: a gateway agent asking a
control plane for its configuration, to relay it to the Envoy beside it.

It subscribes to listeners and clusters (wildcard), and to the route tables, endpoints and
secrets they name, as Envoy does. Each response is acknowledged (or, if it cannot be read,
refused with the reason); when every name the listeners and clusters depend on is held, the
whole configuration comes out as one consistent snapshot. A partial configuration never does:
the agent's Envoy keeps the last whole one until the next is complete.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf.message import DecodeError, Message
from google.rpc import status_pb2

from bastion.dataplane.envoy.resources import (
    CLUSTER,
    ENDPOINT,
    LISTENER,
    PUSH_ORDER,
    ROUTE,
    SECRET,
    WILDCARD_TYPES,
)
from bastion.dataplane.envoy.snapshot import Resource, Snapshot, content_hash

MESSAGES: dict[str, type[Message]] = {
    LISTENER: listener_pb2.Listener, ROUTE: route_pb2.RouteConfiguration,
    CLUSTER: cluster_pb2.Cluster, ENDPOINT: endpoint_pb2.ClusterLoadAssignment,
    SECRET: secret_pb2.Secret,
}
PER_RESOURCE = tuple(t for t in PUSH_ORDER if t not in WILDCARD_TYPES)


def resource_name(message: Message) -> str:
    """The name xDS identifies a resource by (endpoints by their cluster's name)."""
    if isinstance(message, endpoint_pb2.ClusterLoadAssignment):
        return message.cluster_name
    return str(message.name)


@dataclass
class _Type:
    version: str = ""
    nonce: str = ""
    answered: bool = False  # a response of this type arrived on this stream
    names: frozenset[str] = frozenset()  # subscribed (per-resource types)
    held: dict[str, Message] = field(default_factory=dict)


class UpstreamSession:
    """One stream's worth of state; a new stream (after a failover) starts a new session."""

    def __init__(self, node: base_pb2.Node, known: Snapshot | None = None) -> None:
        self.node = node
        self.types = {t: _Type() for t in PUSH_ORDER}
        self._known = known
        self._published: Snapshot | None = known
        self._names_stale = True  # listeners or clusters changed since names were followed
        self.nacks = 0

    def start(self) -> list[discovery_pb2.DiscoveryRequest]:
        """The first requests: listeners and clusters, and at once the names the snapshot
        already known (from the last stream, or the disk) depends on, saving a round trip."""
        wanted = self._known.wanted() if self._known is not None else frozenset()
        out = []
        for type_url in PUSH_ORDER:
            state = self.types[type_url]
            if type_url not in WILDCARD_TYPES:
                state.names = frozenset(n for t, n in wanted if t == type_url)
                if not state.names:
                    continue
            out.append(self._request(type_url))
        out[0].node.CopyFrom(self.node)
        return out

    def on_response(self, response: discovery_pb2.DiscoveryResponse
                    ) -> tuple[list[discovery_pb2.DiscoveryRequest], Snapshot | None]:
        """The requests to send (subscriptions changed, then the ACK or NACK) and the new
        whole configuration, if this response completed one that differs from the last."""
        state = self.types.get(response.type_url)
        if state is None:
            return [self._nack(response, f"unknown type {response.type_url}")], None
        try:
            received = self._unpack(response)
        except (DecodeError, ValueError) as exc:
            return [self._nack(response, f"cannot read the {response.type_url} resources: "
                                         f"{exc}")], None
        if response.type_url in WILDCARD_TYPES:
            state.held = received
            self._names_stale = True
        else:
            state.held.update({n: m for n, m in received.items() if n in state.names})
        state.version, state.nonce, state.answered = response.version_info, response.nonce, True
        out = self._resubscribe()
        out.append(self._request(response.type_url))  # the ACK
        return out, self._complete()

    # -- internals --------------------------------------------------------------------------

    def _unpack(self, response: discovery_pb2.DiscoveryResponse) -> dict[str, Message]:
        kind = MESSAGES[response.type_url]
        out: dict[str, Message] = {}
        for packed in response.resources:
            if packed.type_url != response.type_url:
                raise ValueError(f"a resource of type {packed.type_url} in the response")
            message = kind()
            packed.Unpack(message)
            out[resource_name(message)] = message
        return out

    def _wanted(self) -> dict[str, frozenset[str]]:
        skeleton = Snapshot(0, MappingProxyType({
            t: MappingProxyType({n: Resource(n, m, "") for n, m in self.types[t].held.items()})
            for t in WILDCARD_TYPES}))
        wanted = skeleton.wanted()
        return {t: frozenset(n for k, n in wanted if k == t) for t in PER_RESOURCE}

    def _resubscribe(self) -> list[discovery_pb2.DiscoveryRequest]:
        """Follow what the listeners and clusters name, once both have been received (at 10,000
        hosts that is 20,000 names: worked out again only when they changed)."""
        if not self._names_stale or not all(self.types[t].answered for t in WILDCARD_TYPES):
            return []
        self._names_stale = False
        out = []
        for type_url, names in self._wanted().items():
            state = self.types[type_url]
            if names == state.names:
                continue
            state.names = names
            for gone in [n for n in state.held if n not in names]:
                del state.held[gone]
            out.append(self._request(type_url))
        return out

    def _complete(self) -> Snapshot | None:
        if not all(self.types[t].answered for t in WILDCARD_TYPES):
            return None
        if any(not state.names <= state.held.keys()
               for t, state in self.types.items() if t not in WILDCARD_TYPES):
            return None
        resources: dict[str, Mapping[str, Resource]] = {}
        for type_url, state in self.types.items():
            resources[type_url] = MappingProxyType({
                n: Resource(n, m, content_hash(m)) for n, m in sorted(state.held.items())})
        previous = self._published
        generation = previous.generation + 1 if previous is not None else 1
        snapshot = Snapshot(generation, MappingProxyType(resources))
        if previous is not None and _same(previous, snapshot):
            return None
        self._published = snapshot
        return snapshot

    def _request(self, type_url: str) -> discovery_pb2.DiscoveryRequest:
        state = self.types[type_url]
        return discovery_pb2.DiscoveryRequest(
            type_url=type_url, version_info=state.version, response_nonce=state.nonce,
            resource_names=sorted(state.names))

    def _nack(self, response: discovery_pb2.DiscoveryResponse,
              message: str) -> discovery_pb2.DiscoveryRequest:
        self.nacks += 1
        state = self.types.get(response.type_url, _Type())
        return discovery_pb2.DiscoveryRequest(
            type_url=response.type_url, version_info=state.version,
            response_nonce=response.nonce, resource_names=sorted(state.names),
            error_detail=status_pb2.Status(code=3, message=message))


def _same(a: Snapshot, b: Snapshot) -> bool:
    return all({n: r.hash for n, r in a.of(t).items()} == {n: r.hash for n, r in b.of(t).items()}
               for t in PUSH_ORDER)
