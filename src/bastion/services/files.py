"""The files Gateways name (file-based certificates), read and watched for the build.

Files are polled with `stat` rather than watched with inotify: a Kubernetes Secret volume
replaces its files by swapping a symbolic link, which `stat` (following links) sees as a new
inode, and a gateway names a handful of files, so a poll of each every 200 ms costs nothing.

A certificate and its key are published together and only when they match: replacing the two
files is two writes, and between them the pair is inconsistent. The old pair stays in force
until the new one is whole (or, after `PAIR_PATIENCE_S`, the mismatch is reported).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bastion.errors import CredentialError
from bastion.private import PrivateBytes
from bastion.store.keys import StoreKey
from bastion.translate.istio.credentials import check_pair
from bastion.translate.istio.files import FILE_GROUP, confinement_problem
from bastion.translate.istio.resources import FileRead, Resources

log = logging.getLogger("bastion")
POLL_S = 0.2
PAIR_PATIENCE_S = 2.0


def file_key(path: str) -> StoreKey:
    """The change key of a file, alongside the stored objects' keys."""
    return StoreKey(FILE_GROUP, "File", "", path)


Stamp = tuple[int, int, int, int] | None


@dataclass
class FileWatcher:
    resources: Resources
    cert_dirs: tuple[str, ...]
    _stamps: dict[str, Stamp] = field(default_factory=dict)
    _pending: dict[str, FileRead] = field(default_factory=dict)  # read, not yet published
    _mismatch_since: dict[tuple[str, str], float] = field(default_factory=dict)

    def refresh(self) -> set[StoreKey]:
        """Read what changed on disk; put it in the resources; return the keys of the files
        whose published contents changed."""
        wanted = self.resources.wanted_files()
        files = self.resources.files
        changed: set[str] = set()
        for path in sorted(wanted.paths):
            stamp = _stamp(path)
            if path in self._stamps and self._stamps[path] == stamp:
                continue
            self._stamps[path] = stamp
            self._pending[path] = self._read(path)
        for gone in set(files) - wanted.paths:
            del files[gone]
            self._stamps.pop(gone, None)
            changed.add(gone)
        for cert, key in sorted(wanted.pairs):
            touched = cert in self._pending or key in self._pending
            if touched and self._pair_ready(cert, key):
                changed |= self._publish(cert, key)
        for path in list(self._pending):
            if not any(path in pair for pair in wanted.pairs):
                changed |= self._publish(path)
        return {file_key(p) for p in changed}

    def _read(self, path: str) -> FileRead:
        real = os.path.realpath(path)
        reason = confinement_problem(real, tuple(os.path.realpath(d) for d in self.cert_dirs))
        if reason:
            return FileRead(error=f"resolves to {real}, outside the allowed directories"
                            if real != path else reason)
        try:
            with open(real, "rb") as handle:
                return FileRead(PrivateBytes(handle.read()))
        except FileNotFoundError:
            return FileRead(error="no such file")
        except OSError as exc:
            return FileRead(error=exc.strerror or type(exc).__name__)

    def _pair_ready(self, cert: str, key: str) -> bool:
        new = {p: self._pending.get(p) or self.resources.files.get(p) for p in (cert, key)}
        chain, private = new[cert], new[key]
        if chain is None or private is None or chain.data is None or private.data is None:
            return True  # an error is published at once
        try:
            check_pair(chain.data.reveal(), private.data)
        except CredentialError:
            first = self._mismatch_since.setdefault((cert, key), time.monotonic())
            return time.monotonic() - first > PAIR_PATIENCE_S
        self._mismatch_since.pop((cert, key), None)
        return True

    def _publish(self, *paths: str) -> set[str]:
        changed = set()
        for path in paths:
            read = self._pending.pop(path, None)
            if read is None:
                continue
            old = self.resources.files.get(path)
            if old != read:
                self.resources.files[path] = read
                changed.add(path)
        return changed

    async def run(self, on_change: Callable[[set[StoreKey]], None]) -> None:
        while True:
            await asyncio.sleep(POLL_S)
            changed = self.refresh()
            if changed:
                log.info("file-based credentials changed: %s",
                         ", ".join(sorted(k.name for k in changed)))
                on_change(changed)


def _stamp(path: str) -> Stamp:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size, st.st_ctime_ns)
