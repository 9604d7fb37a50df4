"""Immutable, internally consistent sets of Envoy resources with content-hash versions.

A snapshot is what one gateway group should hold. Writing an equal configuration yields equal
hashes, so nothing is pushed; a changed secret changes one hash, so only that secret is pushed.

A snapshot made from another by replacing a few resources (`with_resources`) remembers which
names it changed. Its versions, its consistency check and the protocol's comparison then cost
what the change costs, not what the whole configuration costs: at 10,000 hosts a rotation
touches one secret, and nothing else is visited.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from types import MappingProxyType
from typing import Any

from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.transport_sockets.quic.v3 import quic_transport_pb2
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2
from google.protobuf import any_pb2
from google.protobuf.message import Message

from bastion.dataplane.envoy.resources import (
    CLUSTER,
    ENDPOINT,
    LISTENER,
    PUSH_ORDER,
    ROUTE,
    SECRET,
    XdsResources,
)
from bastion.layered import with_changes
from bastion.memo import Memo

_serials = itertools.count(1)
EMPTY: Mapping[str, Resource] = MappingProxyType({})


def content_hash(message: Message) -> str:
    return hashlib.sha256(message.SerializeToString(deterministic=True)).hexdigest()[:16]


def _entry_digest(name: str, resource_hash: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{name}={resource_hash}".encode()).digest()[:8])


@dataclass(frozen=True)
class Resource:
    name: str
    message: Message
    hash: str


@dataclass(frozen=True)
class Snapshot:
    generation: int  # the store revision this snapshot was built from
    resources: Mapping[str, Mapping[str, Resource]]
    # The snapshot this one was made from and the names it changed since, per type (added,
    # replaced or removed); 0 and empty for a snapshot made whole.
    parent: int = field(default=0, compare=False)
    changes: Mapping[str, frozenset[str]] = field(default_factory=dict, compare=False)
    serial: int = field(default_factory=lambda: next(_serials), compare=False)
    # Derived per type on first use, or carried from the parent; a snapshot never changes.
    _derived: dict[tuple[str, str], Any] = field(default_factory=dict, compare=False,
                                                 repr=False)

    def of(self, type_url: str) -> Mapping[str, Resource]:
        return self.resources.get(type_url, EMPTY)

    def _digest(self, type_url: str) -> int:
        key = ("digest", type_url)
        if key not in self._derived:
            value = 0
            for name, resource in self.of(type_url).items():
                value ^= _entry_digest(name, resource.hash)
            self._derived[key] = value
        return self._derived[key]  # type: ignore[no-any-return]

    def version(self, type_url: str) -> str:
        """A digest of every (name, hash) of the type, independent of order, so that a change
        of a few resources updates it without visiting the rest."""
        return f"{self._digest(type_url):016x}"

    def with_generation(self, generation: int) -> Snapshot:
        """The same resources, built from a later revision (nothing to push); the start of a
        derivation from this snapshot."""
        return Snapshot(generation, self.resources, self.serial, {}, _derived=self._derived)

    def with_resources(self, type_url: str, updates: Mapping[str, Message],
                       generation: int, removed: Iterable[str] = ()) -> Snapshot:
        """A copy in which `updates` replace (and `removed` drop) resources of one type; every
        other resource (and its hash) is shared."""
        before = self.of(type_url)
        digest = self._digest(type_url)
        touched = set()
        gone = []
        for name in removed:
            old = before.get(name)
            if old is not None and name not in updates:
                digest ^= _entry_digest(name, old.hash)
                touched.add(name)
                gone.append(name)
        replaced: dict[str, Resource] = {}
        for name, message in updates.items():
            resource = Resource(name, message, content_hash(message))
            old = before.get(name)
            if old is not None:
                if old.hash == resource.hash:
                    continue
                digest ^= _entry_digest(name, old.hash)
            replaced[name] = resource
            digest ^= _entry_digest(name, resource.hash)
            touched.add(name)
        resources = dict(self.resources)
        resources[type_url] = with_changes(before, replaced, gone)
        derived = {k: v for k, v in self._derived.items() if k[1] != type_url}
        derived[("digest", type_url)] = digest
        # A snapshot derived from a derived one keeps the first one's parent and adds its
        # changes to the ones already made there, so a render of several steps is compared
        # with what the gateway holds in one go.
        parent = self.parent or self.serial
        changes = dict(self.changes) if self.parent else {}
        changes[type_url] = changes.get(type_url, frozenset()) | touched
        return Snapshot(generation, MappingProxyType(resources), parent, changes,
                        _derived=derived)

    def annotate(self, name: str, value: Any) -> Snapshot:
        """Keep a fact about how this snapshot was made, carried to the snapshots made from it
        (the driver notes which servers share a filter chain)."""
        self._derived[("note", name)] = value
        return self

    def annotation(self, name: str, default: Any = None) -> Any:
        return self._derived.get(("note", name), default)

    def wanted(self, memo: Memo | None = None) -> frozenset[tuple[str, str]]:
        """(type, name) of every route table, endpoint set and secret a listener or cluster
        names. Not kept: at 10,000 hosts it is 20,000 entries, and a check of a derived
        snapshot rarely needs it."""
        return frozenset(_wanted(self, memo or Memo()))


def _resource(name: str, message: Message) -> Resource:
    return Resource(name, message, content_hash(message))


def _references(listener: listener_pb2.Listener) -> tuple[tuple[str, str], ...]:
    return tuple(listener_references(listener))


def build_snapshot(xds: XdsResources, generation: int, memo: Memo | None = None) -> Snapshot:
    """With a memo, a message seen in the previous snapshot keeps its hash without being
    serialised again."""
    memo = memo or Memo()
    resources = {
        type_url: MappingProxyType({
            name: memo.get(("hash", id(message)), partial(_resource, name, message),
                           pins=message)
            for name, message in sorted(xds.of(type_url).items())
        })
        for type_url in PUSH_ORDER
    }
    return Snapshot(generation, MappingProxyType(resources))


def listener_references(listener: listener_pb2.Listener) -> Iterator[tuple[str, str]]:
    """(type_url, name) of every RDS route table and SDS secret a listener depends on."""
    for chain in listener.filter_chains:
        for network_filter in chain.filters:
            hcm = hcm_pb2.HttpConnectionManager()
            if network_filter.typed_config.Unpack(hcm) and hcm.HasField("rds"):
                yield ROUTE, hcm.rds.route_config_name
        if chain.HasField("transport_socket"):
            context = _downstream_context(chain.transport_socket.typed_config)
            if context is not None:
                yield from _common_references(context.common_tls_context)
                if context.HasField("session_ticket_keys_sds_secret_config"):
                    yield SECRET, context.session_ticket_keys_sds_secret_config.name


def _common_references(common: tls_pb2.CommonTlsContext) -> Iterator[tuple[str, str]]:
    for sds in common.tls_certificate_sds_secret_configs:
        yield SECRET, sds.name
    if common.HasField("combined_validation_context"):
        yield SECRET, common.combined_validation_context.validation_context_sds_secret_config.name


def _downstream_context(config: any_pb2.Any) -> tls_pb2.DownstreamTlsContext | None:
    """The TLS context of a TCP (TLS) or a UDP (QUIC) filter chain."""
    quic = quic_transport_pb2.QuicDownstreamTransport()
    if config.Unpack(quic):
        return quic.downstream_tls_context
    context = tls_pb2.DownstreamTlsContext()
    return context if config.Unpack(context) else None


def _wanted(snapshot: Snapshot, memo: Memo) -> Iterator[tuple[str, str]]:
    for resource in snapshot.of(LISTENER).values():
        yield from memo.get(("refs", id(resource.message)),
                            partial(_references, resource.message), pins=resource.message)
    for resource in snapshot.of(CLUSTER).values():
        cluster = resource.message
        if cluster.HasField("eds_cluster_config"):
            yield ENDPOINT, cluster.eds_cluster_config.service_name
        if cluster.HasField("transport_socket"):  # TLS to the backend: its credentials
            upstream = tls_pb2.UpstreamTlsContext()
            if cluster.transport_socket.typed_config.Unpack(upstream):
                yield from _common_references(upstream.common_tls_context)


def _problem(type_url: str, name: str, what: str) -> str:
    return f"{type_url.rsplit('.', 1)[-1]} {name} is {what}"


def consistency_problems(snapshot: Snapshot, memo: Memo | None = None,
                         checked: Snapshot | None = None) -> list[str]:
    """Every route table, endpoint set and secret a listener or cluster names must be present,
    and nothing may be present that nobody names (Envoy would never ask for it).

    With `checked`, a snapshot already found consistent that `snapshot` was made from, only
    the names `snapshot` changed are checked."""
    if checked is not None and snapshot.parent == checked.serial and all(
            t not in (LISTENER, CLUSTER) for t in snapshot.changes):
        # `checked` held exactly what its listeners and clusters name, and those did not
        # change: a name replaced in place is fine; only one added or removed is looked up.
        problems = []
        wanted: frozenset[tuple[str, str]] | None = None
        for type_url, names in snapshot.changes.items():
            present, before = snapshot.of(type_url), checked.of(type_url)
            for name in sorted(names):
                if (name in present) == (name in before):
                    continue
                if wanted is None:
                    wanted = snapshot.wanted(memo)
                if name in present and (type_url, name) not in wanted:
                    problems.append(_problem(type_url, name, "present but never referenced"))
                elif name not in present and (type_url, name) in wanted:
                    problems.append(_problem(type_url, name, "referenced but missing"))
        return problems
    wanted = snapshot.wanted(memo)
    held = {(t, n) for t in (ROUTE, ENDPOINT, SECRET) for n in snapshot.of(t)}
    problems = [_problem(t, n, "referenced but missing") for t, n in sorted(wanted - held)]
    problems += [_problem(t, n, "present but never referenced")
                 for t, n in sorted(held - wanted)]
    return problems


@dataclass(frozen=True)
class Lingering:
    """A cluster (and its endpoints) that left the configuration but stays in Envoy until the
    connections that may still route to it have drained."""

    until: float
    cluster: Resource
    endpoints: Resource | None


def linger(previous: Snapshot | None, current: Snapshot, held: dict[str, Lingering],
           now: float, hold_s: float) -> Snapshot:
    """`current` plus the clusters that `previous` had and `current` dropped, for `hold_s`.

    Removing a filter chain (a server withdrawn, a credential gone bad) makes Envoy drain its
    connections: GOAWAY, and the requests in flight finish. The route table they use stays in
    Envoy (an RDS resource lives while a chain names it), but a cluster is gone at once, so
    those requests would be answered 503. Both snapshots are the configuration proper, without
    what lingers; `held` is updated in place.
    """
    clusters, endpoints = current.of(CLUSTER), current.of(ENDPOINT)
    if previous is not None and previous.of(CLUSTER) is not clusters:
        before_endpoints = previous.of(ENDPOINT)
        for name, resource in previous.of(CLUSTER).items():
            if name not in clusters and name not in held:
                held[name] = Lingering(now + hold_s, resource, before_endpoints.get(name))
    for name in [n for n, h in held.items() if n in clusters or h.until <= now]:
        del held[name]
    if not held:
        return current
    resources = dict(current.resources)
    resources[CLUSTER] = MappingProxyType({**clusters, **{n: h.cluster for n, h in held.items()}})
    kept_endpoints = {n: h.endpoints for n, h in held.items() if h.endpoints is not None}
    if kept_endpoints:
        resources[ENDPOINT] = MappingProxyType({**endpoints, **kept_endpoints})
    return Snapshot(current.generation, MappingProxyType(resources))
