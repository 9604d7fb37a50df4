"""Handing freed memory back to the system after a large piece of work.

A large apply or a full build at thousands of hosts allocates hundreds of megabytes that live for
a moment (the parsed request, intermediate translations, serialised responses). Python frees them,
but glibc's allocator keeps the freed pages mapped, so the control plane's resident size would stay
at its high-water mark for good. `malloc_trim` returns those pages; on other C libraries this is a
no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("bastion")


def _load_trim() -> ctypes._NamedFuncPointer | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None


_TRIM = _load_trim()


def release_free_memory() -> bool:
    """Return freed heap pages to the system. Worth calling after large, short-lived work, not on
    every change (it walks the allocator's free lists). Returns whether it could be done."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True
