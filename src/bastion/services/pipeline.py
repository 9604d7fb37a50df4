"""From stored objects to the data plane: the store's change feed in, one build per change (after
a short debounce), every gateway group's result handed to the data plane.

The pipeline owns what lies between the store and the build: the admitted models (kept current
by the feed), the Secrets deleted less than the grace period ago (still in force, so the task's
delete-then-create rotates without a gap), and the log of problems found and resolved. A build
that fails inside bastion publishes nothing: the last good configuration stays in force.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bastion import metrics
from bastion.build import Build, Inputs, build
from bastion.clock import seconds_until, utc_now
from bastion.dataplane import DataPlane
from bastion.diag import Diagnostic, ObjectRef, Severity
from bastion.ir.workload import Workload
from bastion.memory import release_free_memory
from bastion.services.files import FileWatcher
from bastion.store import Change, ObjectStore, StoredObject
from bastion.store.keys import StoreKey
from bastion.translate.istio import Options

log = logging.getLogger("bastion")
LARGE_BUILD_S = 0.2
# Long enough for the task's `delete secret` and `create secret` typed by a person or run by a
# script on a loaded machine (measured up to 1.5 s for the pair with the old CLI); short enough
# that a deleted credential does not stay in force for long (Istio keeps one forever).
DEFAULT_SECRET_GRACE_S = 10.0


def withdrawal_notice(remaining_s: float) -> str:
    return f"deleted, withdrawn in {max(remaining_s, 0.0):.0f} s"


@dataclass
class PipelineConfig:
    workload: Workload = field(default_factory=Workload)  # this process's own gateway group
    options: Options = field(default_factory=Options)
    debounce_s: float = 0.02
    secret_grace_s: float = DEFAULT_SECRET_GRACE_S


class Pipeline:
    def __init__(self, store: ObjectStore, dataplane: DataPlane, config: PipelineConfig) -> None:
        self.store = store
        self.dataplane = dataplane
        self.config = config
        self.inputs = Inputs()
        self.build: Build | None = None
        self.translate_error = ""
        self.last_build_ms = 0.0
        self.last_build_cpu_ms = 0.0  # this thread's CPU time: the build's work, not waiting
        self._admitted: dict[StoreKey, Any] = {}
        self._deleted: dict[StoreKey, tuple[float, StoredObject]] = {}
        self._changed: set[StoreKey] | None = None  # None: translate everything
        self._dirty = asyncio.Event()
        self._built_at = 0.0
        for obj in store.all():
            self.inputs.put(obj.key, obj.revision, obj.body)
        self.files = FileWatcher(self.inputs.resources, config.options.cert_dirs)
        # OCSP staples with an end of validity: credential -> (next update, where it came from)
        self._staples: dict[str, tuple[str, ObjectRef]] = {}
        self._staple_timer: asyncio.TimerHandle | None = None
        self._expired_logged: set[ObjectRef] = set()
        store.subscribe(self._on_changes)

    # -- what changed ---------------------------------------------------------------------

    def admitted(self, models: dict[StoreKey, Any]) -> None:
        """The models admission made of objects about to be written (None: written): the feed
        then need not admit them again (half the work of a large apply)."""
        self._admitted = models

    def _on_changes(self, changes: list[Change]) -> None:
        grace = self.config.secret_grace_s
        changed = set()
        for change in changes:
            key = change.key
            if change.after is not None:
                self._deleted.pop(key, None)
                self.inputs.put(key, change.after.revision, change.after.body,
                                self._admitted.pop(key, None))
            elif key.group == "" and key.kind == "Secret" and grace > 0 and (
                    change.before is not None):
                deadline = time.monotonic() + grace
                self._deleted[key] = (deadline, change.before)
                log.info("%s deleted; %s unless created again", key.ref,
                         withdrawal_notice(grace).removeprefix("deleted, "))
                asyncio.get_running_loop().call_later(grace + 0.01, self._grace_over, key,
                                                      deadline)
                continue  # stays in force, unchanged, until the grace is over
            else:
                self.inputs.remove(key)
                log.info("%s deleted", key.ref)
            changed.add(key)
        if changed:
            self.mark_dirty(changed)

    def _grace_over(self, key: StoreKey, deadline: float) -> None:
        """A deleted Secret's grace period ended: build again without it, unless it was created
        again meanwhile, or deleted again since (then its own, later grace counts)."""
        entry = self._deleted.get(key)
        if entry is None or entry[0] != deadline:
            return
        del self._deleted[key]
        self.inputs.remove(key)
        log.info("%s: deleted %g s ago and not created again; withdrawn from the gateway",
                 key.ref, self.config.secret_grace_s)
        self.mark_dirty({key})

    def mark_dirty(self, keys: set[StoreKey] | None = None) -> None:
        """Build again soon; with `keys`, only those objects changed."""
        if keys is None:
            self._changed = None
        elif self._changed is not None:
            self._changed.update(keys)
        self._dirty.set()

    def add_group(self, group: Workload) -> None:
        """A gateway of a group nobody built for yet connected: build for it too."""
        log.info("building for new gateway group %s", group)
        self.mark_dirty(set())

    # -- the loop -------------------------------------------------------------------------

    async def run(self) -> None:
        """Build at once on the first change after a quiet spell (a rotation reaches the gateway
        in milliseconds); changes that follow within `debounce_s` of a build are gathered into
        the next one, so a burst costs one build per interval, not one per change."""
        self.rebuild()
        watcher = asyncio.create_task(self.files.run(self.mark_dirty))
        try:
            while True:
                await self._dirty.wait()
                wait = self.config.debounce_s - (time.monotonic() - self._built_at)
                await asyncio.sleep(max(wait, 0.0))
                self._dirty.clear()
                self.rebuild()
        finally:
            watcher.cancel()

    def rebuild(self) -> None:
        self._built_at = time.monotonic()
        started, started_cpu = time.perf_counter(), time.thread_time()
        changed, self._changed = self._changed, set()
        files_changed = self.files.refresh()  # files a Gateway just named are read at once
        if changed is not None:
            changed |= files_changed
        groups = {self.config.workload} | self.dataplane.groups()
        try:
            result = build(self.build, self.inputs, self.store.revision, groups,
                           self.config.options, changed)
            problems = self.dataplane.publish(result)
        except Exception as exc:  # a bug in bastion, not a user error
            log.exception("internal error while building revision %d; keeping the last good "
                          "configuration", self.store.revision)
            self.translate_error = f"{type(exc).__name__}: {exc}"
            self._changed = None
            return
        self.translate_error = "; ".join(problems)
        self._track_staples(result)
        self._log_diagnostics(result)
        self.build = result
        self.last_build_ms = (time.perf_counter() - started) * 1000
        metrics.BUILD_SECONDS.observe(self.last_build_ms / 1000)
        self.last_build_cpu_ms = (time.thread_time() - started_cpu) * 1000
        log.debug("built revision %d in %.1f ms", result.revision, self.last_build_ms)
        if time.perf_counter() - started > LARGE_BUILD_S:
            # A large configuration is millions of long-lived objects; without this, every
            # full garbage collection walks them all and a later small change waits for it.
            # They are freed by reference counting when replaced (they hold no cycles).
            gc.freeze()
            release_free_memory()

    def _track_staples(self, result: Build) -> None:
        """Keep the end of validity of every OCSP staple, and build again when the next one
        ends: the data plane then stops stapling it (and `status` says so)."""
        for gateway in result.gateways.values():
            config = gateway.ir.config
            if gateway.delta is None:
                names: Iterable[str] = [c.name for c in config.tls_credentials
                                        if c.ocsp_next_update] + [
                    n for n in self._staples if config.credential(n) is None]
            else:
                names = gateway.delta.credentials
            for name in names:
                cred = config.credential(name)
                if cred is not None and cred.ocsp_next_update and cred.source is not None:
                    self._staples[name] = (cred.ocsp_next_update, cred.source)
                else:
                    self._staples.pop(name, None)
        now = utc_now()
        expired = self.expired_staples()
        for diag in expired:
            if diag.object not in self._expired_logged:
                log.warning("%s", diag)
        self._expired_logged = {d.object for d in expired}
        upcoming = [end for end, _ in self._staples.values() if end > now]
        if self._staple_timer is not None:
            self._staple_timer.cancel()
            self._staple_timer = None
        if upcoming:
            delay = seconds_until(min(upcoming))
            with contextlib.suppress(RuntimeError):  # no loop: offline use
                self._staple_timer = asyncio.get_running_loop().call_later(
                    max(delay, 0.0) + 0.5, self.mark_dirty, None)

    def expired_staples(self) -> list[Diagnostic]:
        now = utc_now()
        return [Diagnostic(source, "tls.ocsp-staple", "OcspStapleExpired",
                           f"OCSP staple expired at {end}; no longer stapled", Severity.WARNING)
                for end, source in sorted(self._staples.values()) if end <= now]

    def _log_diagnostics(self, result: Build) -> None:
        old = self.build.diagnostics if self.build is not None else ()
        new = result.diagnostics
        if new is old:
            return
        before, after = set(old), set(new)
        for diag in sorted(after - before):
            level = logging.ERROR if diag.severity == Severity.ERROR else logging.WARNING
            log.log(level, "%s", diag)
        for diag in sorted(before - after):
            log.info("resolved: %s", diag)

    # -- what it holds ----------------------------------------------------------------------

    @property
    def diagnostics(self) -> tuple[Diagnostic, ...]:
        found = self.build.diagnostics if self.build is not None else ()
        expired = self.expired_staples() if self._staples else []
        return tuple(sorted({*found, *expired})) if expired else found

    def diagnostics_for(self, ref: ObjectRef) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.object == ref]

    def deleted_secrets(self) -> dict[str, str]:
        """Deleted Secrets still in force: `namespace/name` -> "deleted, withdrawn in N s"."""
        now = time.monotonic()
        return dict(sorted(
            (f"{key.namespace}/{key.name}", withdrawal_notice(deadline - now))
            for key, (deadline, _) in self._deleted.items() if deadline > now))

    def deleted_secret(self, namespace: str, name: str) -> StoredObject | None:
        """A Secret deleted less than the grace period ago (still in force), if any."""
        entry = self._deleted.get(StoreKey("", "Secret", namespace, name))
        return entry[1] if entry is not None and entry[0] > time.monotonic() else None

    def status(self) -> dict[str, Any]:
        return {
            "snapshotRevision": self.build.revision if self.build is not None else None,
            "translateError": self.translate_error,
            "diagnostics": [d.to_dict() for d in self.diagnostics],
            "deletedSecrets": self.deleted_secrets(),
            "lastBuildMs": round(self.last_build_ms, 1),
            "lastBuildCpuMs": round(self.last_build_cpu_ms, 2),
        }
