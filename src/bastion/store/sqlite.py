"""The embedded store: SQLite, for one control plane on one machine.

A batch of writes commits in one transaction, so a crash leaves each object wholly old or
wholly new, and a write is acknowledged only after it is durable; subscribers hear of it after
that. All writes go through one process (`bastion serve`)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bastion.store.base import ObjectStore
from bastion.store.keys import StoreKey
from bastion.store.objects import ApplyOutcome, StoredObject

SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    grp TEXT NOT NULL, kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
    revision INTEGER NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (grp, kind, namespace, name)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('revision', 0);
"""


class SqliteStore(ObjectStore):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        for grp, kind, ns, name, revision, body in self._db.execute(
                "SELECT grp, kind, namespace, name, revision, body FROM objects"):
            key = StoreKey(grp, kind, ns, name)
            self._objects[key] = StoredObject(key, revision, body)
        self.revision = self._db.execute(
            "SELECT value FROM meta WHERE key='revision'").fetchone()[0]

    def close(self) -> None:
        self._db.close()

    def apply(self, items: Iterable[tuple[StoreKey, dict[str, Any]]]) -> list[ApplyOutcome]:
        with self._lock:
            outcomes, staged = self._prepare(items)
            revision = self.revision
            upserts = []
            for key, body in staged.items():
                revision += 1
                upserts.append(StoredObject.of(key, revision, body))
            if upserts:
                self._commit(upserts, (), revision)
            return outcomes

    def delete(self, keys: Iterable[StoreKey]) -> list[StoredObject]:
        with self._lock:
            gone = [self._objects[k] for k in dict.fromkeys(keys) if k in self._objects]
            if gone:
                self._commit((), [o.key for o in gone], self.revision + 1)
            return gone

    def create(self, key: StoreKey, body: dict[str, Any]) -> bool:
        with self._lock:
            if key in self._objects:
                return False
        self.apply([(key, body)])
        return True

    def _commit(self, upserts: Iterable[StoredObject], deletes: Iterable[StoreKey],
                revision: int) -> None:
        upserts, deletes = list(upserts), list(deletes)
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
        self._commit_local(upserts, deletes, revision)
