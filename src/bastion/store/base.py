"""What every store backend shares: every object held in memory (translation never waits on
the store), the reads, what a batch of writes would do, and the change feed.

Kubernetes semantics where users can see them: objects keyed by group, kind, namespace and
name; one global, increasing resourceVersion; `apply` answers created, configured or unchanged,
and writing an equal object changes nothing (no new revision, no change on the feed, so no
push). Subscribers hear of every committed batch, with each object before and after: whoever
reacts to changes (the build) does not need to be told by whoever wrote them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import Any

from bastion.store.keys import StoreKey
from bastion.store.leadership import Leadership
from bastion.store.limits import check_size
from bastion.store.objects import (
    ApplyOutcome,
    Change,
    StoredObject,
    Subscriber,
    encode,
    user_part,
)


class ObjectStore:
    """A backend implements `apply`, `delete`, `create` and `close`; reads are served here."""

    shared = False  # whether other control planes may use the same store

    def __init__(self) -> None:
        self._objects: dict[StoreKey, StoredObject] = {}
        self.revision = 0
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> None:
        """Call `subscriber` with the changes of every batch committed from now on."""
        self._subscribers.append(subscriber)

    def close(self) -> None:
        raise NotImplementedError

    def apply(self, items: Iterable[tuple[StoreKey, dict[str, Any]]]) -> list[ApplyOutcome]:
        """Write a batch atomically (as far as the backend can: see its notes)."""
        raise NotImplementedError

    def delete(self, keys: Iterable[StoreKey]) -> list[StoredObject]:
        """Delete those that exist; returns what was deleted."""
        raise NotImplementedError

    def announce(self, name: str, value: dict[str, Any]) -> None:
        """Say what this control plane is serving, for every control plane of the store to
        see (`presences`) while it lives; with one control plane there is no one to tell."""

    def presences(self) -> dict[str, dict[str, Any]]:
        """What each live control plane of the store last announced, by name."""
        return {}

    def leadership(self, task: str) -> Leadership:
        """Whether this control plane leads `task`; with one control plane, it always does."""
        return Leadership(task, held=True)

    def create(self, key: StoreKey, body: dict[str, Any]) -> bool:
        """Store `body` only if nothing is stored at `key` (by any writer); whether it was."""
        raise NotImplementedError

    # -- reads ------------------------------------------------------------------------------

    def get(self, key: StoreKey) -> StoredObject | None:
        return self._objects.get(key)

    def select(self, group: str | None = None, kind: str | None = None,
               namespace: str | None = None) -> list[StoredObject]:
        out = [o for o in self._objects.values()
               if (group is None or o.key.group == group)
               and (kind is None or o.key.kind == kind)
               and (namespace is None or o.key.namespace == namespace)]
        return sorted(out, key=lambda o: (o.key.kind, o.key.namespace, o.key.name))

    def all(self) -> list[StoredObject]:
        return list(self._objects.values())

    # -- for the backends -------------------------------------------------------------------

    def _prepare(self, items: Iterable[tuple[StoreKey, dict[str, Any]]]
                 ) -> tuple[list[ApplyOutcome], dict[StoreKey, dict[str, Any]]]:
        """What a batch does: each item's outcome, and the bodies to write (server fields
        set, all but resourceVersion, which the commit decides). Raises InputError, naming
        the object, for one over the size limit: then nothing is written."""
        outcomes: list[ApplyOutcome] = []
        staged: dict[StoreKey, dict[str, Any]] = {}
        for key, body in items:
            held = self._objects.get(key)
            old_body = staged.get(key) or (held.body if held is not None else None)
            if old_body is not None and user_part(old_body) == user_part(body):
                outcomes.append(ApplyOutcome.UNCHANGED)
                continue
            meta = {k: v for k, v in body.get("metadata", {}).items() if k != "resourceVersion"}
            if old_body is not None:
                for kept in ("uid", "creationTimestamp"):
                    if kept in old_body.get("metadata", {}):
                        meta[kept] = old_body["metadata"][kept]
            else:
                meta["uid"] = str(uuid.uuid4())
                meta["creationTimestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            new = {**body, "metadata": meta}
            check_size(key, encode(new))
            staged[key] = new
            outcomes.append(ApplyOutcome.CONFIGURED if old_body is not None
                            else ApplyOutcome.CREATED)
        return outcomes, staged

    def _commit_local(self, upserts: Iterable[StoredObject], deletes: Iterable[StoreKey],
                      revision: int) -> None:
        """Hold what was committed and tell the subscribers."""
        upserts, deletes = list(upserts), list(deletes)
        changes = [Change(o.key, self._objects.get(o.key), o) for o in upserts]
        changes += [Change(k, self._objects[k], None) for k in deletes if k in self._objects]
        for obj in upserts:
            self._objects[obj.key] = obj
        for key in deletes:
            self._objects.pop(key, None)
        self.revision = max(self.revision, revision)
        if changes:
            self._publish(changes)

    def _publish(self, changes: list[Change]) -> None:
        for subscriber in self._subscribers:
            subscriber(changes)
