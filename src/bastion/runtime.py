"""The one place that wires the store, translation, snapshots and connected gateways together.

A change in the store marks the configuration dirty; after a short debounce it is translated whole
(the core is pure and cached, so this is cheap), checked for consistency, and published to every
connected gateway. A translation that fails inside bastion, or yields an inconsistent snapshot,
publishes nothing: the last good configuration stays in force.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from bastion.api import admission, core, kinds
from bastion.api.admission import Admitted, Refused, StoreKey
from bastion.diag import Diagnostic, ObjectRef, Severity
from bastion.ir.model import CaCredential, GatewayConfig, TlsCredential
from bastion.memo import Memo
from bastion.memory import release_free_memory
from bastion.store import ApplyOutcome, Store, StoredObject
from bastion.translate.istio import (
    IrResult,
    Options,
    Resources,
    Workload,
    refresh_credentials,
    refresh_routes,
    to_ir,
)
from bastion.translate.istio.credentials import CA_SUFFIX, CredentialError, check_pair
from bastion.translate.xds import naming, to_xds
from bastion.translate.xds.cluster import build_cluster, build_load_assignment
from bastion.translate.xds.resources import CLUSTER, ENDPOINT, ROUTE, SECRET, SHORT_NAMES
from bastion.translate.xds.route import build_route_configuration
from bastion.translate.xds.secret import build_ca_secret, build_tls_secret
from bastion.xds.protocol import Event, Session
from bastion.xds.snapshot import (
    Lingering,
    Snapshot,
    build_snapshot,
    consistency_problems,
    linger,
)

log = logging.getLogger("bastion")
LARGE_BUILD_S = 0.2
# Long enough for the task's `delete secret` and `create secret` typed by a person or run by a
# script on a loaded machine (measured up to 1.5 s for the pair); short enough that a deleted
# credential does not stay in force for long (Istio keeps one forever).
DEFAULT_SECRET_GRACE_S = 10.0


@dataclass
class Connection:
    session: Session
    queue: asyncio.Queue[Any]
    peer: str
    connected_at: float = field(default_factory=time.time)


@dataclass
class RuntimeConfig:
    workload: Workload = field(default_factory=Workload)
    options: Options = field(default_factory=Options)
    debounce_s: float = 0.02
    # A deleted Secret stays in force this long, so delete-then-create rotates without a gap.
    secret_grace_s: float = DEFAULT_SECRET_GRACE_S
    # How long Envoy drains the connections of a removed filter chain: the clusters they may
    # still route to stay that long.
    drain_s: float = 45.0


def key_pair_problem(secret: core.Secret) -> str | None:
    """Why a TLS Secret's certificate and key cannot be used together, or None."""
    values = secret.values()
    try:
        check_pair(values.get("tls.crt", b""), values.get("tls.key", b""))
    except CredentialError as exc:
        return str(exc)
    return None


def withdrawal_notice(remaining_s: float) -> str:
    return f"deleted, withdrawn in {max(remaining_s, 0.0):.0f} s"


class Runtime:
    def __init__(self, store: Store, config: RuntimeConfig) -> None:
        self.store = store
        self.config = config
        self.snapshot: Snapshot | None = None  # what gateways are sent
        self._base: Snapshot | None = None  # the configuration proper, without what lingers
        self._lingering: dict[str, Lingering] = {}
        self.diagnostics: tuple[Diagnostic, ...] = ()
        self.connections: list[Connection] = []
        self.translate_error: str = ""
        self.last_build_ms: float = 0.0
        self._models: dict[StoreKey, tuple[int, Any]] = {}
        self._dirty = asyncio.Event()
        self._progress = asyncio.Condition()
        self._secret_summaries: dict[str, str] = {}
        self._deleted_secrets: dict[StoreKey, tuple[float, StoredObject]] = {}
        self._dirty_keys: set[StoreKey] = set()
        self._full_rebuild = True
        self._result: IrResult | None = None
        self._memo = Memo()

    # -- the rebuild loop -------------------------------------------------------------------

    def mark_dirty(self, keys: set[StoreKey] | None = None) -> None:
        """Schedule a rebuild; with `keys`, only those objects changed (a rebuild may then do
        less than a full translation)."""
        if keys is None:
            self._full_rebuild = True
        else:
            self._dirty_keys.update(keys)
        self._dirty.set()

    async def run(self) -> None:
        self._full_rebuild = True
        self.rebuild()
        while True:
            await self._dirty.wait()
            await asyncio.sleep(self.config.debounce_s)
            self._dirty.clear()
            self.rebuild()

    def _model(self, obj: StoredObject) -> Any:
        cached = self._models.get(obj.key)
        if cached is not None and cached[0] == obj.revision:
            return cached[1]
        result = admission.admit(obj.body, obj.key.namespace or "default")
        model = result.model if isinstance(result, Admitted) else None
        self._models[obj.key] = (obj.revision, model)
        return model

    def _tombstone(self, key: StoreKey) -> StoredObject | None:
        entry = self._deleted_secrets.get(key)
        if entry is None or entry[0] <= time.monotonic():
            return None
        return entry[1]

    def _grace_over(self, key: StoreKey, deadline: float) -> None:
        """A deleted Secret's grace period ended: translate again without it, unless it was
        created again meanwhile (then nothing changes) or deleted again since (then its own,
        later grace period counts)."""
        entry = self._deleted_secrets.get(key)
        if entry is not None and entry[0] != deadline:
            return
        if self.store.get(key) is None:
            log.info("%s: deleted %g s ago and not created again; withdrawn from the gateway",
                     key.ref, self.config.secret_grace_s)
            self.mark_dirty({key})

    def deleted_secrets(self) -> dict[str, str]:
        """Deleted Secrets still in force, as `namespace/name` -> "deleted, withdrawn in N s"."""
        now = time.monotonic()
        return dict(sorted(
            (f"{key.namespace}/{key.name}", withdrawal_notice(deadline - now))
            for key, (deadline, _) in self._deleted_secrets.items()
            if deadline > now and self.store.get(key) is None))

    def deleted_secret(self, namespace: str, name: str) -> StoredObject | None:
        """A Secret deleted less than the grace period ago (still in force), if any."""
        key = StoreKey("", "Secret", namespace, name)
        return self._tombstone(key) if self.store.get(key) is None else None

    def _objects(self) -> list[StoredObject]:
        """The stored objects, plus Secrets deleted less than the grace period ago."""
        objects = self.store.all()
        now = time.monotonic()
        for key, (deadline, obj) in list(self._deleted_secrets.items()):
            if deadline <= now or self.store.get(key) is not None:
                del self._deleted_secrets[key]
            else:
                objects.append(obj)
        return objects

    def _remember_model(self, verdict: Admitted) -> None:
        """The admitted model, with the metadata the store assigned, is what admitting the
        stored object again would give; keeping it halves the work of a large apply."""
        stored = self.store.get(verdict.key)
        if stored is None:
            return
        model = verdict.model
        if model is not None:
            meta = stored.body.get("metadata", {})
            metadata = dataclasses.replace(
                model.metadata, resource_version=meta.get("resourceVersion"),
                uid=meta.get("uid"), creation_timestamp=meta.get("creationTimestamp"))
            model = dataclasses.replace(model, metadata=metadata)
        self._models[verdict.key] = (stored.revision, model)

    def rebuild(self) -> None:
        started = time.perf_counter()
        keys, full = self._dirty_keys, self._full_rebuild
        self._dirty_keys, self._full_rebuild = set(), False
        try:
            if not full and keys and all(k.group == "" and k.kind == "Secret" for k in keys) \
                    and self._rebuild_secrets(keys, started):
                return
            if not full and keys and all(k.kind == "VirtualService" for k in keys) \
                    and self._rebuild_routes(keys, started):
                return
            self._rebuild_full(started)
        except Exception as exc:  # a bug in bastion, not a user error
            log.exception("internal error while translating revision %d; keeping the last "
                          "good configuration", self.store.revision)
            self.translate_error = f"{type(exc).__name__}: {exc}"

    def _rebuild_full(self, started: float) -> None:
        generation = self.store.revision
        objects = self._objects()
        live = {o.key for o in objects}
        for stale in [k for k in self._models if k not in live]:
            del self._models[stale]
        models = [m for m in (self._model(o) for o in objects) if m is not None]
        memo = self._memo
        try:
            result = to_ir(Resources.from_models(models), self.config.workload,
                           self.config.options, memo)
            snapshot = build_snapshot(to_xds(result.config, memo), generation, memo)
            problems = consistency_problems(snapshot, memo)
        finally:
            memo.advance()
        if problems:
            log.error("inconsistent snapshot for revision %d, not published: %s", generation,
                      "; ".join(problems))
            self.translate_error = "inconsistent snapshot: " + "; ".join(problems)
            return
        self._publish(result, snapshot, started)
        if time.perf_counter() - started > LARGE_BUILD_S:
            # A large configuration is millions of long-lived objects; without this, every
            # full garbage collection walks them all and a later small change waits for it.
            # They are freed by reference counting when replaced (they hold no cycles).
            gc.freeze()
            release_free_memory()

    def _rebuild_secrets(self, keys: set[StoreKey], started: float) -> bool:
        """Only Secrets changed: refresh the credentials they feed and push only those. Returns
        False when a full translation is needed instead."""
        if self._result is None or self._base is None:
            return False
        namespace = self.config.workload.namespace
        changed = {k.name for k in keys if k.namespace == namespace}
        secrets: dict[tuple[str, str], Any] = {}
        for name in changed:
            for candidate in {name, name + CA_SUFFIX, name.removesuffix(CA_SUFFIX)}:
                key = StoreKey("", "Secret", namespace, candidate)
                obj = self.store.get(key) or self._tombstone(key)
                model = self._model(obj) if obj is not None else None
                if model is not None:
                    secrets[(namespace, candidate)] = model
        result = refresh_credentials(self._result, secrets, self.config.workload, changed)
        if result is None:
            return False
        # Refreshed credentials are new objects; untouched ones are the very same objects.
        before = {id(c) for c in self._result.config.tls_credentials}
        before.update(id(c) for c in self._result.config.ca_credentials)
        updates = {}
        for cred in result.config.tls_credentials:
            if id(cred) not in before:
                updates[naming.secret(cred.name)] = build_tls_secret(cred)
        for ca in result.config.ca_credentials:
            if id(ca) not in before:
                updates[naming.secret(ca.name)] = build_ca_secret(ca)
        snapshot = self._base.with_resources(SECRET, updates, self.store.revision)
        self._publish(result, snapshot, started)
        return True

    def _rebuild_routes(self, keys: set[StoreKey], started: float) -> bool:
        """Only VirtualServices changed: re-translate the servers of the Gateways they name and
        push their route tables (and any cluster that appeared or went). Returns False when a
        full translation is needed instead."""
        if self._result is None or self._base is None:
            return False
        models = [m for m in (self._model(o) for o in self._objects()) if m is not None]
        result = refresh_routes(self._result, Resources.from_models(models),
                                self.config.workload, self.config.options,
                                {(k.namespace, k.name) for k in keys})
        if result is None:
            return False
        generation = self.store.revision
        before = {id(s) for listener in self._result.config.listeners
                  for s in listener.servers}
        routes = {naming.route_table(s.route_table): build_route_configuration(s)
                  for listener in result.config.listeners for s in listener.servers
                  if id(s) not in before}
        old = {b.ref: b for b in self._result.config.backends}
        new = {b.ref: b for b in result.config.backends}
        added = [b for ref, b in new.items() if old.get(ref) is not b]
        gone = [naming.cluster(ref) for ref in old if ref not in new]
        clusters = {naming.cluster(b.ref): build_cluster(b) for b in added}
        endpoints = {name: build_load_assignment(b) for b, (name, c) in
                     zip(added, clusters.items(), strict=True)
                     if c.HasField("eds_cluster_config")}
        snapshot = self._base.with_resources(ROUTE, routes, generation)
        snapshot = snapshot.with_resources(CLUSTER, clusters, generation, gone)
        snapshot = snapshot.with_resources(ENDPOINT, endpoints, generation, gone)
        self._publish(result, snapshot, started)
        return True

    def _publish(self, result: IrResult, snapshot: Snapshot, started: float) -> None:
        self.translate_error = ""
        self._log_diagnostics(result.diagnostics)
        self._log_secret_changes(snapshot, result.config)
        self.diagnostics = result.diagnostics
        self._result = result
        self._send(self._with_lingering(snapshot))
        self.last_build_ms = (time.perf_counter() - started) * 1000
        log.debug("built revision %d in %.1f ms", snapshot.generation, self.last_build_ms)

    def _with_lingering(self, base: Snapshot) -> Snapshot:
        held_before = set(self._lingering)
        published = linger(self._base, base, self._lingering, time.monotonic(),
                           self.config.drain_s)
        self._base = base
        for name in sorted(set(self._lingering) - held_before):
            log.info("cluster %s is no longer routed to; kept %g s for connections draining",
                     name, self.config.drain_s)
        if self._lingering:
            first = min(h.until for h in self._lingering.values())
            asyncio.get_event_loop().call_later(max(first - time.monotonic(), 0) + 0.05,
                                                self._expire_lingering)
        return published

    def _expire_lingering(self) -> None:
        if self._base is None or not self._lingering:
            return
        before = set(self._lingering)
        published = self._with_lingering(self._base)
        if set(self._lingering) != before:
            self._send(published)

    def _send(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        for conn in self.connections:
            conn.queue.put_nowait(snapshot)
        asyncio.get_event_loop().create_task(self._notify())

    def _log_diagnostics(self, diagnostics: tuple[Diagnostic, ...]) -> None:
        if diagnostics is self.diagnostics:
            return
        old, new = set(self.diagnostics), set(diagnostics)
        for diag in sorted(new - old):
            level = logging.ERROR if diag.severity == Severity.ERROR else logging.WARNING
            log.log(level, "%s", diag)
        for diag in sorted(old - new):
            log.info("resolved: %s", diag)

    def _log_secret_changes(self, snapshot: Snapshot, config: GatewayConfig) -> None:
        previous = self.snapshot.of(SECRET) if self.snapshot else {}
        current = snapshot.of(SECRET)
        changed = [n for n, r in current.items() if previous.get(n) is not r and (
            n not in previous or previous[n].hash != r.hash)]
        removed = [n for n in previous if n not in current]
        if not changed and not removed:
            return
        creds = {naming.secret(c.name): c for c in config.tls_credentials}
        cas = {naming.secret(c.name): c for c in config.ca_credentials}
        for name in sorted(changed):
            summary = self._describe(creds.get(name), cas.get(name))
            self._secret_summaries[name] = summary
            verb = "updated" if name in previous else "added"
            log.info("secret %s %s (%s)", name, verb, summary)
        for name in sorted(removed):
            self._secret_summaries.pop(name, None)
            log.info("secret %s removed from the gateway", name)

    @staticmethod
    def _describe(cred: TlsCredential | None, ca: CaCredential | None) -> str:
        if cred is not None and cred.summary is not None and cred.source is not None:
            s = cred.summary
            return (f"from secret {cred.source.namespace}/{cred.source.name}, serial {s.serial}, "
                    f"subject {s.subject}, not after {s.not_after}")
        if ca is not None and ca.source is not None:
            return (f"CA from secret {ca.source.namespace}/{ca.source.name}, "
                    f"{len(ca.summaries)} certificate(s)" + (", with CRL" if ca.crl else ""))
        return ""

    # -- connected gateways -----------------------------------------------------------------

    def connect(self, peer: str) -> Connection:
        conn = Connection(Session(), asyncio.Queue(), peer)
        if self.snapshot is not None:
            conn.session.snapshot = self.snapshot
        self.connections.append(conn)
        return conn

    def disconnect(self, conn: Connection) -> None:
        if conn in self.connections:
            self.connections.remove(conn)
        log.info("gateway %s disconnected", conn.session.node_id or conn.peer)

    def record_events(self, conn: Connection, events: list[Event]) -> None:
        node = conn.session.node_id or conn.peer
        for event in events:
            kind = event.short_type
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
            asyncio.get_event_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._progress:
            self._progress.notify_all()

    async def wait_synced(self, revision: int, timeout: float) -> bool:
        """Until a connected gateway holds a snapshot built from `revision` or later."""
        def done() -> bool:
            return any(c.session.synced_generation >= revision for c in self.connections)

        async with self._progress:
            try:
                await asyncio.wait_for(self._progress.wait_for(done), timeout)
            except TimeoutError:
                return False
        return True

    # -- operations for the local API -------------------------------------------------------

    def apply(self, objects: list[Any], namespace: str, create_only: bool = False,
              dry_run: bool = False, verify_key_pairs: bool = False) -> list[dict[str, Any]]:
        """With `verify_key_pairs` (kubectl's `create secret tls`), a TLS Secret whose key does
        not match its certificate is refused instead of stored and reported."""
        results: list[dict[str, Any]] = []
        accepted: list[tuple[int, Admitted]] = []
        for raw in objects:
            verdict = admission.admit(raw, namespace)
            if isinstance(verdict, Refused):
                log.warning("refused: %s", verdict.message)
                results.append({"ok": False, "error": verdict.message, "reason": "Invalid"})
                continue
            warnings = [str(w) for w in verdict.warnings]
            if isinstance(verdict.model, core.Secret):
                warnings += admission.secret_use_warnings(verdict.model)
                problem = key_pair_problem(verdict.model) if verify_key_pairs else None
                if problem is not None:
                    results.append({"ok": False, "reason": "BadKeyPair", "error": problem})
                    continue
            results.append({"ok": True, "resource": f"{verdict.info.resource}/{verdict.key.name}",
                            "warnings": warnings})
            accepted.append((len(results) - 1, verdict))
        if create_only:
            for index, verdict in accepted:
                if self.store.get(verdict.key) is not None:
                    results[index] = {"ok": False, "reason": "AlreadyExists", "error": (
                        f"{verdict.info.resource} {verdict.key.name!r} already exists")}
            accepted = [(i, v) for i, v in accepted if results[i]["ok"]]
        if dry_run:
            for index, _ in accepted:
                results[index]["outcome"] = "configured (dry run)"
            return results
        outcomes = self.store.apply([(v.key, v.body) for _, v in accepted])
        for (index, verdict), outcome in zip(accepted, outcomes, strict=True):
            results[index]["outcome"] = str(outcome)
            results[index]["revision"] = self.store.revision
            if outcome != ApplyOutcome.UNCHANGED:
                log.info("%s %s", str(verdict.key.ref), outcome)
                self._remember_model(verdict)
        changed = {v.key for (_, v), o in zip(accepted, outcomes, strict=True)
                   if o != ApplyOutcome.UNCHANGED}
        if changed:
            self.mark_dirty(changed)
        return results

    def resolve_kind(self, name: str) -> tuple[str, str] | None:
        info = kinds.resolve_kind_name(name)
        if info is not None:
            return info.group, info.kind
        word = name.lower()
        for obj in self.store.all():
            kind = obj.key.kind.lower()
            if word in (kind, kind + "s", kind + "es"):
                return obj.key.group, obj.key.kind
        return None

    def delete(self, targets: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
        """targets: (kind name as typed or exact kind, namespace, name)."""
        results: list[dict[str, Any]] = []
        keys: list[StoreKey] = []
        for kind_name, namespace, name in targets:
            resolved = self.resolve_kind(kind_name)
            if resolved is None:
                results.append({"ok": False, "reason": "NotFound", "error": (
                    f'{name}: the server doesn\'t have a resource type "{kind_name}"')})
                continue
            group, kind = resolved
            info = kinds.info_for(group, kind) or kinds.generic_kind_info(group, kind)
            key = StoreKey(group, kind, namespace if info.namespaced else "", name)
            if self.store.get(key) is None:
                results.append({"ok": False, "reason": "NotFound", "error": (
                    f'{info.resource} "{name}" not found')})
                continue
            keys.append(key)
            results.append({"ok": True, "resource": f"{info.resource}/{name}",
                            "outcome": "deleted"})
        gone = self.store.delete(keys)
        grace = self.config.secret_grace_s
        for obj in gone:
            if obj.key.kind == "Secret" and obj.key.group == "" and grace > 0:
                log.info("%s deleted; %s unless created again", obj.key.ref,
                         withdrawal_notice(grace).removeprefix("deleted, "))
                deadline = time.monotonic() + grace
                self._deleted_secrets[obj.key] = (deadline, obj)
                asyncio.get_event_loop().call_later(grace + 0.01, self._grace_over, obj.key,
                                                    deadline)
            else:
                log.info("%s deleted", obj.key.ref)
        if gone:
            self.mark_dirty({o.key for o in gone})
        return results

    def get(self, kind_name: str, namespace: str | None, name: str | None
            ) -> tuple[list[dict[str, Any]], str | None]:
        resolved = self.resolve_kind(kind_name)
        if resolved is None:
            info = kinds.resolve_kind_name(kind_name)
            if info is None:
                return [], f'the server doesn\'t have a resource type "{kind_name}"'
            resolved = info.group, info.kind
        group, kind = resolved
        info = kinds.info_for(group, kind) or kinds.generic_kind_info(group, kind)
        objects = self.store.list(group, kind, namespace if info.namespaced else None)
        if name is not None:
            objects = [o for o in objects if o.key.name == name]
            if not objects:
                return [], f'{info.resource} "{name}" not found'
        return [o.body for o in objects], None

    def object_revision(self, kind_name: str, namespace: str, name: str) -> int | None:
        resolved = self.resolve_kind(kind_name)
        if resolved is None:
            return None
        group, kind = resolved
        info = kinds.info_for(group, kind) or kinds.generic_kind_info(group, kind)
        obj = self.store.get(StoreKey(group, kind, namespace if info.namespaced else "", name))
        return obj.revision if obj else None

    def status(self) -> dict[str, Any]:
        gateways = []
        for conn in self.connections:
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
                "connectedSeconds": round(time.time() - conn.connected_at, 1),
                "inSync": s.in_sync(), "syncedRevision": s.synced_generation, "types": types,
            })
        return {
            "revision": self.store.revision,
            "snapshotRevision": self.snapshot.generation if self.snapshot else None,
            "translateError": self.translate_error,
            "gateways": gateways,
            "diagnostics": [d.to_dict() for d in self.diagnostics],
            "secrets": dict(sorted(self._secret_summaries.items())),
            "deletedSecrets": self.deleted_secrets(),
            "lastBuildMs": round(self.last_build_ms, 1),
        }

    def diagnostics_for(self, ref: ObjectRef) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.object == ref]
