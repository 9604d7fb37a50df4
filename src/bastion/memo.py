"""A cache that lives for one more translation.

Translation is a pure function of the stored objects, and from one change to the next almost all
of them are the same Python objects (the build's inputs keep a model until its object changes). The
memo lets each translation step reuse what the previous translation computed for the same
inputs; anything the new translation does not ask for again is dropped, so the cache never
grows beyond one configuration's worth.

Keys may name objects by identity (`id(...)`); the memo keeps those objects alive for as long as
their entry lives, so an identity is never reused while it is a key.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class Memo:
    def __init__(self) -> None:
        self._previous: dict[Hashable, tuple[Any, Any]] = {}
        self._current: dict[Hashable, tuple[Any, Any]] = {}
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, compute: Callable[[], T], pins: Any = None) -> T:
        entry = self._current.get(key)
        if entry is None:
            entry = self._previous.get(key)
            if entry is None:
                self.misses += 1
                entry = (pins, compute())
            else:
                self.hits += 1
            self._current[key] = entry
        result: T = entry[1]
        return result

    def advance(self) -> None:
        """A translation finished: keep what it used, forget the rest."""
        self._previous, self._current = self._current, {}
        self.hits = self.misses = 0
