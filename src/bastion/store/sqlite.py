"""SQLite-backed object store.

Kubernetes semantics where users can see them: objects keyed by group, kind, namespace and name; one
global, increasing resourceVersion; `apply` answers created, configured or unchanged, and writing an
equal object changes nothing (no new revision, no change on the feed, so no push). A batch of writes
commits in one transaction, so a crash leaves each object wholly old or wholly new, and a write is
acknowledged only after it is durable. Subscribers to the change feed hear of every committed batch,
after it is durable, with each object before and after: whoever reacts to changes (the build) does
not need to be told by whoever wrote them.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from bastion.store.keys import StoreKey
from bastion.store.limits import check_size

SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    grp TEXT NOT NULL, kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
    revision INTEGER NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (grp, kind, namespace, name)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('revision', 0);
"""
SERVER_FIELDS = ("resourceVersion", "uid", "creationTimestamp", "generation")


class ApplyOutcome(StrEnum):
    CREATED = "created"
    CONFIGURED = "configured"
    UNCHANGED = "unchanged"
    DELETED = "deleted"


@dataclass(frozen=True)
class StoredObject:
    """An object as stored. The body is kept as its JSON text: at 10,000 hosts, parsed bodies
    held for every object were a sixth of the control plane's memory, and only the CLI's `get`
    and an object's own re-admission ever read them."""

    key: StoreKey
    revision: int
    text: str = field(repr=False)  # may hold a Secret's key material

    @property
    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.text)
        return body

    @classmethod
    def of(cls, key: StoreKey, revision: int, body: dict[str, Any]) -> StoredObject:
        return cls(key, revision, json.dumps(body, sort_keys=True, separators=(",", ":")))


@dataclass(frozen=True)
class Change:
    """One object changed by a committed write: `before` None means created, `after` None
    deleted."""

    key: StoreKey
    before: StoredObject | None
    after: StoredObject | None


Subscriber = Callable[[list[Change]], None]


def _user_part(body: dict[str, Any]) -> dict[str, Any]:
    """What the user controls: the body without fields the server assigns."""
    meta = {k: v for k, v in body.get("metadata", {}).items() if k not in SERVER_FIELDS}
    return {**body, "metadata": meta}


class Store:
    """All writes go through one process (`bastion serve`), which also keeps every object in
    memory so translation never waits on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._objects: dict[StoreKey, StoredObject] = {}
        for grp, kind, ns, name, revision, body in self._db.execute(
                "SELECT grp, kind, namespace, name, revision, body FROM objects"):
            key = StoreKey(grp, kind, ns, name)
            self._objects[key] = StoredObject(key, revision, body)
        self.revision: int = self._db.execute(
            "SELECT value FROM meta WHERE key='revision'").fetchone()[0]
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> None:
        """Call `subscriber` with the changes of every batch committed from now on."""
        self._subscribers.append(subscriber)

    def close(self) -> None:
        self._db.close()

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

    # -- writes -----------------------------------------------------------------------------

    def apply(self, items: Iterable[tuple[StoreKey, dict[str, Any]]]) -> list[ApplyOutcome]:
        """Write a batch atomically."""
        items = list(items)
        with self._lock:
            outcomes: list[ApplyOutcome] = []
            staged: dict[StoreKey, StoredObject] = {}
            revision = self.revision
            for key, body in items:
                old = staged.get(key) or self._objects.get(key)
                old_body = old.body if old is not None else None
                if old_body is not None and _user_part(old_body) == _user_part(body):
                    outcomes.append(ApplyOutcome.UNCHANGED)
                    continue
                revision += 1
                meta = dict(body.get("metadata", {}))
                meta["resourceVersion"] = str(revision)
                if old_body is not None:
                    for kept in ("uid", "creationTimestamp"):
                        if kept in old_body.get("metadata", {}):
                            meta[kept] = old_body["metadata"][kept]
                else:
                    meta["uid"] = str(uuid.uuid4())
                    meta["creationTimestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                stored = StoredObject.of(key, revision, {**body, "metadata": meta})
                check_size(key, stored.text)
                staged[key] = stored
                outcomes.append(ApplyOutcome.CONFIGURED if old else ApplyOutcome.CREATED)
            if staged:
                self._commit(staged.values(), (), revision)
            return outcomes

    def delete(self, keys: Iterable[StoreKey]) -> list[StoredObject]:
        """Delete those that exist, atomically; returns what was deleted."""
        with self._lock:
            gone = [self._objects[k] for k in dict.fromkeys(keys) if k in self._objects]
            if gone:
                self._commit((), [o.key for o in gone], self.revision + 1)
            return gone

    def _commit(self, upserts: Iterable[StoredObject], deletes: Iterable[StoreKey],
                revision: int) -> None:
        upserts, deletes = list(upserts), list(deletes)
        changes = [Change(o.key, self._objects.get(o.key), o) for o in upserts]
        changes += [Change(k, self._objects[k], None) for k in deletes if k in self._objects]
        cur = self._db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            cur.executemany(
                "INSERT OR REPLACE INTO objects (grp, kind, namespace, name, revision, body) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(o.key.group, o.key.kind, o.key.namespace, o.key.name, o.revision, o.text)
                 for o in upserts])
            cur.executemany(
                "DELETE FROM objects WHERE grp=? AND kind=? AND namespace=? AND name=?",
                [(k.group, k.kind, k.namespace, k.name) for k in deletes])
            cur.execute("UPDATE meta SET value=? WHERE key='revision'", (revision,))
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        for obj in upserts:
            self._objects[obj.key] = obj
        for key in deletes:
            self._objects.pop(key, None)
        self.revision = revision
        for subscriber in self._subscribers:
            subscriber(changes)
