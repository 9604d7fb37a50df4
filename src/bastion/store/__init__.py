"""The embedded object store (SQLite) with Kubernetes-like keys and a global resourceVersion."""

from bastion.store.keys import StoreKey
from bastion.store.sqlite import ApplyOutcome, Change, Store, StoredObject, Subscriber

__all__ = ["ApplyOutcome", "Change", "Store", "StoreKey", "StoredObject", "Subscriber"]
