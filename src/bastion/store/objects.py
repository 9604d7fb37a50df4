"""Stored objects and changes, the same for every backend."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bastion.store.keys import StoreKey

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
        """The object at `revision`, which its metadata's resourceVersion then says."""
        meta = {**body.get("metadata", {}), "resourceVersion": str(revision)}
        return cls(key, revision, encode({**body, "metadata": meta}))


def encode(body: dict[str, Any]) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Change:
    """One object changed by a committed write: `before` None means created, `after` None
    deleted."""

    key: StoreKey
    before: StoredObject | None
    after: StoredObject | None


Subscriber = Callable[[list[Change]], None]


def user_part(body: dict[str, Any]) -> dict[str, Any]:
    """What the user controls: the body without fields the server assigns."""
    meta = {k: v for k, v in body.get("metadata", {}).items() if k not in SERVER_FIELDS}
    return {**body, "metadata": meta}
