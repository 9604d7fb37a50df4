"""What the store refuses, the same for every backend."""

from __future__ import annotations

from bastion.errors import InputError
from bastion.store.keys import StoreKey

# etcd's default request limit (--max-request-bytes): Kubernetes cannot store a larger object,
# so neither store accepts one, and a configuration that works here works on etcd.
MAX_OBJECT_BYTES = 1536 * 1024


def check_size(key: StoreKey, text: str) -> None:
    """Raises InputError naming the object if its stored form is over the limit."""
    size = len(text.encode())
    if size > MAX_OBJECT_BYTES:
        raise InputError(
            f"{key.ref}: the object is {size / 1048576:.1f} MiB, "
            f"over the limit of {MAX_OBJECT_BYTES / 1048576:.1f} MiB per object (etcd's "
            "request limit, which Kubernetes keeps too)")
