"""The Envoy data-plane driver: each gateway group's neutral build becomes an xDS snapshot in the
cache that the ADS servicer reads.

A build that says what changed (`Delta`) is rendered by replacing just those resources in the
group's previous snapshot; any other build is rendered whole, reusing (through the memo) every
resource whose IR did not change. Clusters that leave a group's configuration linger for Envoy's
drain time (see `snapshot.linger`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from functools import partial

from bastion.build import Build, GatewayBuild
from bastion.clock import utc_now
from bastion.dataplane.envoy import naming
from bastion.dataplane.envoy.cache import InconsistentSnapshot, SnapshotCache
from bastion.dataplane.envoy.cluster import build_cluster, build_load_assignment
from bastion.dataplane.envoy.listener import listener_groups, route_filters, shared_servers
from bastion.dataplane.envoy.resources import CLUSTER, ENDPOINT, ROUTE, SECRET, to_xds
from bastion.dataplane.envoy.route import build_route_configuration
from bastion.dataplane.envoy.secret import (
    build_ca_secret,
    build_ticket_keys_secret,
    build_tls_secret,
)
from bastion.dataplane.envoy.snapshot import (
    Lingering,
    Snapshot,
    build_snapshot,
    consistency_problems,
    linger,
)
from bastion.diag import ObjectRef
from bastion.ir.model import CaCredential, GatewayConfig, TlsCredential
from bastion.ir.workload import Workload
from bastion.memo import Memo

log = logging.getLogger("bastion")


def render(previous: Snapshot | None, gateway: GatewayBuild, generation: int,
           memo: Memo, now: str | None = None) -> Snapshot:
    """The snapshot of one gateway build (pure but for the clock, which `now` replaces: it
    decides which OCSP staples are still served). Consistency is checked where it is set."""
    now = now or utc_now()
    delta, config = gateway.delta, gateway.ir.config
    shared = previous.annotation("shared", {}) if previous is not None else {}
    filters = previous.annotation("filters", {}) if previous is not None else {}
    if delta is not None and any(s.key in shared for s in delta.servers):
        delta = None  # a changed server shares its route table: render that table whole
    if delta is not None and any(route_filters((s,)) != filters.get(s.key, ())
                                 for s in delta.servers):
        delta = None  # its routes now need (or no longer need) CORS or faults: a new chain
    if previous is None or delta is None:
        snapshot = build_snapshot(to_xds(config, memo, now), generation, memo)
        shared = {k: v for listener in config.listeners
                  for k, v in shared_servers(listener_groups(listener, memo)).items()}
        filters = {s.key: route_filters((s,)) for listener in config.listeners
                   for s in listener.servers}
        memo.advance()
        return snapshot.annotate("shared", shared).annotate("filters", filters)
    snapshot = previous.with_generation(generation)
    if delta.credentials:
        updates, removed = {}, []
        for name in sorted(delta.credentials):
            tls, ca = config.credential(name), config.ca_credential(name)
            if tls is not None:
                updates[naming.secret(name)] = build_tls_secret(tls, now)
            elif ca is not None:
                updates[naming.secret(name)] = build_ca_secret(ca)
            elif config.ticket_keys is not None and config.ticket_keys.name == name:
                updates[naming.secret(name)] = build_ticket_keys_secret(config.ticket_keys)
            else:
                removed.append(naming.secret(name))
        snapshot = snapshot.with_resources(SECRET, updates, generation, removed)
    if delta.servers:
        routes = {naming.route_table(s.key): build_route_configuration((s,))
                  for s in delta.servers}
        snapshot = snapshot.with_resources(ROUTE, routes, generation)
    if delta.backends:
        clusters = {naming.cluster(b.ref): memo.get(("cds", b), partial(build_cluster, b))
                    for b in config.backends}
        endpoints = {naming.cluster(b.ref): memo.get(("eds", b),
                                                     partial(build_load_assignment, b))
                     for b in config.backends
                     if clusters[naming.cluster(b.ref)].HasField("eds_cluster_config")}
        gone = [n for n in snapshot.of(CLUSTER) if n not in clusters]
        snapshot = snapshot.with_resources(CLUSTER, clusters, generation, gone)
        gone_endpoints = [n for n in snapshot.of(ENDPOINT) if n not in endpoints]
        snapshot = snapshot.with_resources(ENDPOINT, endpoints, generation, gone_endpoints)
    return snapshot


def describe_credential(cred: TlsCredential | None, ca: CaCredential | None) -> str:
    """What a person needs to know about a credential a gateway holds; never key material."""
    if cred is not None and cred.summary is not None and cred.source is not None:
        s = cred.summary
        return (f"from {_origin(cred.source)}, serial {s.serial}, "
                f"subject {s.subject}, not before {s.not_before}, not after {s.not_after}")
    if ca is not None and ca.source is not None:
        return (f"CA from {_origin(ca.source)}, "
                f"{len(ca.summaries)} certificate(s)" + (", with CRL" if ca.crl else ""))
    return ""


def _origin(source: ObjectRef) -> str:
    if source.kind == "File":
        return f"file {source.name}"
    return f"secret {source.namespace}/{source.name}"


@dataclass
class _Group:
    """What the driver keeps of one gateway group between builds."""

    base: Snapshot | None = None  # the configuration proper, without what lingers
    memo: Memo = field(default_factory=Memo)
    lingering: dict[str, Lingering] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)  # SDS name -> summary
    whole_next: bool = False  # a build was not delivered; render the next one whole


class EnvoyDataPlane:
    def __init__(self, cache: SnapshotCache, drain_s: float) -> None:
        self.cache = cache
        self.drain_s = drain_s
        self._groups: dict[Workload, _Group] = {}

    def groups(self) -> set[Workload]:
        """The gateway groups connected or waiting for their first snapshot."""
        return self.cache.groups()

    def publish(self, build: Build) -> list[str]:
        """Render and set each group's snapshot; returns the problems of groups whose snapshot
        was refused (their previous one stays)."""
        errors = []
        for workload, gateway in build.gateways.items():
            group = self._groups.setdefault(workload, _Group())
            if group.base is not None and not gateway.changed \
                    and group.base.generation == build.revision:
                continue
            if group.whole_next:
                # The last build was not delivered: its delta is not what this one's is
                # relative to, so this one is rendered whole.
                gateway = dataclasses.replace(gateway, delta=None)
            try:
                base = render(group.base, gateway, build.revision, group.memo)
                self._set(workload, group, base)
            except Exception as exc:  # InconsistentSnapshot, or a bug rendering it
                log.error("gateway group %s: %s; keeping the last good configuration",
                          workload, exc)
                errors.append(str(exc))
                group.whole_next = True
                continue
            group.whole_next = False
            self._log_secret_changes(group, gateway, base)
        return errors

    def _set(self, workload: Workload, group: _Group, base: Snapshot) -> None:
        held_before = set(group.lingering)
        published = linger(group.base, base, group.lingering, time.monotonic(), self.drain_s)
        self.cache.set(workload, published, group.memo)
        group.base = base
        for name in sorted(set(group.lingering) - held_before):
            log.info("cluster %s is no longer routed to; kept %g s for connections draining",
                     name, self.drain_s)
        if group.lingering:
            first = min(h.until for h in group.lingering.values())
            asyncio.get_running_loop().call_later(
                max(first - time.monotonic(), 0) + 0.05, self._expire, workload)

    def _expire(self, workload: Workload) -> None:
        group = self._groups.get(workload)
        if group is None or group.base is None or not group.lingering:
            return
        before = set(group.lingering)
        published = linger(group.base, group.base, group.lingering, time.monotonic(),
                           self.drain_s)
        if set(group.lingering) != before:
            self.cache.set(workload, published, group.memo)

    def secrets(self) -> dict[str, str]:
        """SDS secrets held by any group, with what they hold."""
        out: dict[str, str] = {}
        for group in self._groups.values():
            out.update(group.secrets)
        return dict(sorted(out.items()))

    @staticmethod
    def _log_secret_changes(group: _Group, gateway: GatewayBuild, snapshot: Snapshot) -> None:
        config: GatewayConfig = gateway.ir.config
        if gateway.delta is not None:
            names = [naming.secret(n) for n in gateway.delta.credentials]
        else:
            names = list(set(group.secrets) | set(snapshot.of(SECRET)))
        current = snapshot.of(SECRET)
        for name in sorted(names):
            credential = name.removeprefix(naming.SDS_PREFIX)
            if name in current:
                summary = describe_credential(config.credential(credential),
                                              config.ca_credential(credential))
                if group.secrets.get(name) == summary and gateway.delta is None:
                    continue
                verb = "updated" if name in group.secrets else "added"
                group.secrets[name] = summary
                log.info("secret %s %s (%s)", name, verb, summary)
            elif name in group.secrets:
                del group.secrets[name]
                log.info("secret %s removed from the gateway", name)


def render_checked(gateway: GatewayBuild) -> Snapshot:
    """One gateway build rendered whole and checked, offline (`bastion translate`, goldens)."""
    memo = Memo()
    snapshot = render(None, gateway, 0, memo)
    problems = consistency_problems(snapshot, memo)
    if problems:
        raise InconsistentSnapshot("inconsistent snapshot: " + "; ".join(problems))
    return snapshot
