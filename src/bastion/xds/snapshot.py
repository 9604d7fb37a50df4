"""Immutable, internally consistent sets of Envoy resources with content-hash versions.

A snapshot is what one gateway should hold. Writing an equal configuration yields equal hashes, so
nothing is pushed; a changed secret changes one hash, so only that secret is pushed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2
from google.protobuf.message import Message

from bastion.memo import Memo
from bastion.translate.xds.resources import (
    CLUSTER,
    ENDPOINT,
    LISTENER,
    PUSH_ORDER,
    ROUTE,
    SECRET,
    XdsResources,
)


def content_hash(message: Message) -> str:
    return hashlib.sha256(message.SerializeToString(deterministic=True)).hexdigest()[:16]


@dataclass(frozen=True)
class Resource:
    name: str
    message: Message
    hash: str


@dataclass(frozen=True)
class Snapshot:
    generation: int  # the store revision this snapshot was built from
    resources: Mapping[str, Mapping[str, Resource]]
    # Derived per type on first use; a snapshot never changes, and every connected gateway
    # asks the same questions of it.
    _derived: dict[tuple[str, str], Any] = field(default_factory=dict, compare=False,
                                                 repr=False)

    def of(self, type_url: str) -> Mapping[str, Resource]:
        return self.resources.get(type_url, MappingProxyType({}))

    def version(self, type_url: str) -> str:
        key = ("version", type_url)
        if key not in self._derived:
            digest = hashlib.sha256()
            for name, resource in sorted(self.of(type_url).items()):
                digest.update(f"{name}={resource.hash};".encode())
            self._derived[key] = digest.hexdigest()[:16]
        return self._derived[key]  # type: ignore[no-any-return]

    def hashes(self, type_url: str) -> Mapping[str, str]:
        key = ("hashes", type_url)
        if key not in self._derived:
            self._derived[key] = MappingProxyType(
                {name: r.hash for name, r in self.of(type_url).items()})
        return self._derived[key]  # type: ignore[no-any-return]

    def with_resources(self, type_url: str, updates: Mapping[str, Message],
                       generation: int, removed: Iterable[str] = ()) -> Snapshot:
        """A copy in which `updates` replace (and `removed` drop) resources of one type; every
        other resource (and its hash) is shared, so the cost follows the size of the change."""
        merged = dict(self.of(type_url))
        for name in removed:
            merged.pop(name, None)
        merged.update({name: Resource(name, message, content_hash(message))
                       for name, message in updates.items()})
        resources = dict(self.resources)
        resources[type_url] = MappingProxyType(dict(sorted(merged.items())))
        return Snapshot(generation, MappingProxyType(resources))


def build_snapshot(xds: XdsResources, generation: int, memo: Memo | None = None) -> Snapshot:
    """With a memo, a message seen in the previous snapshot keeps its hash without being
    serialised again."""
    memo = memo or Memo()
    resources = {
        type_url: MappingProxyType({
            name: memo.get(("hash", id(message)),
                           lambda n=name, m=message: Resource(n, m, content_hash(m)),
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
            context = tls_pb2.DownstreamTlsContext()
            if chain.transport_socket.typed_config.Unpack(context):
                common = context.common_tls_context
                for sds in common.tls_certificate_sds_secret_configs:
                    yield SECRET, sds.name
                if common.HasField("combined_validation_context"):
                    sds = common.combined_validation_context.validation_context_sds_secret_config
                    yield SECRET, sds.name


def consistency_problems(snapshot: Snapshot, memo: Memo | None = None) -> list[str]:
    """Every route table, endpoint set and secret a listener or cluster names must be present,
    and nothing may be present that nobody names (Envoy would never ask for it)."""
    memo = memo or Memo()
    wanted: set[tuple[str, str]] = set()
    for resource in snapshot.of(LISTENER).values():
        wanted.update(memo.get(("refs", id(resource.message)),
                               lambda m=resource.message: tuple(listener_references(m)),
                               pins=resource.message))
    for resource in snapshot.of(CLUSTER).values():
        cluster = resource.message
        if cluster.HasField("eds_cluster_config"):  # type: ignore[attr-defined]
            wanted.add((ENDPOINT, cluster.eds_cluster_config.service_name))  # type: ignore[attr-defined]
    present = {(t, n) for t in (ROUTE, ENDPOINT, SECRET) for n in snapshot.of(t)}
    problems = [f"{t.rsplit('.', 1)[-1]} {n} is referenced but missing"
                for t, n in sorted(wanted - present)]
    problems += [f"{t.rsplit('.', 1)[-1]} {n} is present but never referenced"
                 for t, n in sorted(present - wanted)]
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
    if previous is not None:
        before_endpoints = previous.of(ENDPOINT)
        for name, resource in previous.of(CLUSTER).items():
            if name not in clusters and name not in held:
                held[name] = Lingering(now + hold_s, resource, before_endpoints.get(name))
    for name in [n for n, h in held.items() if n in clusters or h.until <= now]:
        del held[name]
    if not held:
        return current
    resources = dict(current.resources)
    resources[CLUSTER] = MappingProxyType(dict(sorted(
        {**clusters, **{n: h.cluster for n, h in held.items()}}.items())))
    kept_endpoints = {n: h.endpoints for n, h in held.items() if h.endpoints is not None}
    if kept_endpoints:
        resources[ENDPOINT] = MappingProxyType(dict(sorted({**endpoints, **kept_endpoints}.items())))
    return Snapshot(current.generation, MappingProxyType(resources))
