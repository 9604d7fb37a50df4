"""Rotating the session-ticket keys every gateway group shares (`translate.istio.tickets` derives
each group's keys from them).

A new master key is put first every `interval`; the previous ones stay behind it, so tickets
sealed before a rotation still open until they have aged past `keep` rotations. Writing the
Secret is all it takes: the build derives the new keys and one SDS secret per group is pushed."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import logging
import secrets
import time
from collections.abc import Callable

from bastion.api.base import validate
from bastion.api.core import Secret
from bastion.store import ObjectStore
from bastion.store.keys import StoreKey
from bastion.translate.istio.tickets import ENTRY, MASTER_BYTES, NAME, NAMESPACE

log = logging.getLogger("bastion")
KEY = StoreKey("", "Secret", NAMESPACE, NAME)
ROTATED_AT = "bastion.io/rotated-at"
DEFAULT_INTERVAL_S = 3600.0
KEEP = 3  # the sealing key and the two before it


class TicketKeyRotator:
    def __init__(self, store: ObjectStore, interval_s: float = DEFAULT_INTERVAL_S, keep: int = KEEP,
                 clock: Callable[[], float] = time.time) -> None:
        self.store, self.interval_s, self.keep, self.clock = store, interval_s, keep, clock

    def _held(self) -> tuple[bytes, float]:
        """The master keys stored (newest first) and when the newest was made."""
        stored = self.store.get(KEY)
        if stored is None:
            return b"", 0.0
        secret = validate(Secret, stored.body)
        blob = secret.private_key(ENTRY)
        rotated = (secret.metadata.annotations or {}).get(ROTATED_AT, "")
        try:
            at = dt.datetime.fromisoformat(rotated).timestamp()
        except ValueError:
            at = 0.0
        return (blob.reveal() if blob is not None else b""), at

    def due_in(self) -> float:
        """Seconds until the next rotation (0: it is due)."""
        blob, at = self._held()
        if not blob or len(blob) % MASTER_BYTES:
            return 0.0
        return max(at + self.interval_s - self.clock(), 0.0)

    def rotate_if_due(self) -> bool:
        if self.due_in() > 0:
            return False
        blob, _ = self._held()
        if len(blob) % MASTER_BYTES:
            blob = b""  # unreadable: start again
        kept = (secrets.token_bytes(MASTER_BYTES) + blob)[:self.keep * MASTER_BYTES]
        now = dt.datetime.fromtimestamp(self.clock(), dt.UTC).replace(microsecond=0)
        self.store.apply([(KEY, {
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": NAME, "namespace": NAMESPACE,
                         "annotations": {ROTATED_AT: now.isoformat()}},
            "data": {ENTRY: base64.b64encode(kept).decode()},
        })])
        log.info("session-ticket keys rotated (%d kept)", len(kept) // MASTER_BYTES)
        return True

    async def run(self) -> None:
        while True:
            self.rotate_if_due()
            await asyncio.sleep(max(self.due_in(), 1.0))
