"""Kubernetes Events, stored as Kubernetes keeps them (`v1 Event`, in the object's namespace),
so `bastion get events` and `describe` show what the controllers did and why: one Event per
object, reason and message, counted and re-dated when it happens again, the oldest removed
beyond a limit per object."""

from __future__ import annotations

import hashlib
from typing import Any

from bastion.clock import utc_now
from bastion.store import ObjectStore
from bastion.store.keys import StoreKey

PER_OBJECT = 20

NORMAL, WARNING = "Normal", "Warning"


class Events:
    def __init__(self, store: ObjectStore, component: str) -> None:
        self.store, self.component = store, component

    def record(self, involved: dict[str, Any], kind: str, reason: str, message: str) -> None:
        """`involved`: the object's body (its apiVersion, kind and metadata are read)."""
        meta = involved.get("metadata", {})
        namespace, name = meta.get("namespace", "default"), meta.get("name", "")
        digest = hashlib.sha256(f"{involved.get('kind')}/{name}/{reason}/{message}".encode())
        key = StoreKey("", "Event", namespace, f"{name}.{digest.hexdigest()[:16]}")
        now = utc_now()
        old = self.store.get(key)
        count = int(old.body.get("count", 1)) + 1 if old is not None else 1
        first = old.body.get("firstTimestamp", now) if old is not None else now
        body = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": key.name, "namespace": namespace},
            "involvedObject": {"apiVersion": involved.get("apiVersion"),
                               "kind": involved.get("kind"), "name": name,
                               "namespace": namespace, "uid": meta.get("uid")},
            "type": kind, "reason": reason, "message": message, "count": count,
            "firstTimestamp": first, "lastTimestamp": now,
            "source": {"component": self.component}, "reportingComponent": self.component,
        }
        self.store.apply([(key, body)])
        self._trim(namespace, involved.get("kind", ""), name)

    def of(self, kind: str, namespace: str, name: str) -> list[dict[str, Any]]:
        """The Events about one object, oldest first."""
        found = [o.body for o in self.store.select("", "Event", namespace)
                 if (o.body.get("involvedObject") or {}).get("kind") == kind
                 and (o.body.get("involvedObject") or {}).get("name") == name]
        return sorted(found, key=lambda b: (b.get("lastTimestamp", ""), b["metadata"]["name"]))

    def _trim(self, namespace: str, kind: str, name: str) -> None:
        events = self.of(kind, namespace, name)
        if len(events) > PER_OBJECT:
            self.store.delete(StoreKey("", "Event", namespace, e["metadata"]["name"])
                              for e in events[:-PER_OBJECT])
