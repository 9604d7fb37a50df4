"""An immutable mapping made of a base and a few changes on top of it.

A configuration of 10,000 hosts is maps of 10,000 entries, and a rotation or a route edit
replaces one entry. Copying the map for every change would make each change cost what the whole
configuration costs; a `Layered` map shares the base and keeps only the change, and folds the
changes into a new base once they pass a bound, so lookups stay cheap and the copying is spread
over many changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")
# Changes kept on top of a base before they are folded into a new one.
FOLD_AFTER = 64


class Layered(Mapping[K, V]):
    __slots__ = ("_base", "_len", "_removed", "_top")

    def __init__(self, base: Mapping[K, V], top: Mapping[K, V] | None = None,
                 removed: frozenset[K] = frozenset()) -> None:
        self._base = base
        self._top = dict(top or {})
        self._removed = removed
        size = len(base) - sum(1 for k in removed if k in base)
        self._len = size + sum(1 for k in self._top if k not in base or k in removed)

    def __getitem__(self, key: K) -> V:
        if key in self._top:
            return self._top[key]
        if key in self._removed:
            raise KeyError(key)
        return self._base[key]

    def __contains__(self, key: object) -> bool:
        return key in self._top or (key not in self._removed and key in self._base)

    def __iter__(self) -> Iterator[K]:
        for key in self._base:
            if key not in self._removed or key in self._top:
                yield key
        for key in self._top:
            if key not in self._base or key in self._removed:
                yield key

    def __len__(self) -> int:
        return self._len

    def __repr__(self) -> str:
        return f"Layered({len(self)} entries, {len(self._top) + len(self._removed)} on top)"


def with_changes(mapping: Mapping[K, V], updates: Mapping[K, V],
                 removed: Iterable[K] = ()) -> Mapping[K, V]:
    """`mapping` with `updates` set and `removed` dropped, sharing what did not change."""
    gone = frozenset(k for k in removed if k not in updates)
    if isinstance(mapping, Layered):
        base = mapping._base
        top = {k: v for k, v in mapping._top.items() if k not in gone}
        top.update(updates)
        dropped = (mapping._removed - updates.keys()) | gone
    else:
        base, top, dropped = mapping, dict(updates), gone
    if len(top) + len(dropped) > FOLD_AFTER:
        folded = {k: v for k, v in base.items() if k not in dropped}
        folded.update(top)
        return Layered(folded)
    return Layered(base, top, dropped)
