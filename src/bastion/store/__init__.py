"""The embedded object store (SQLite) with Kubernetes-like keys and a global resourceVersion."""

from bastion.store.sqlite import ApplyOutcome, Store, StoredObject

__all__ = ["ApplyOutcome", "Store", "StoredObject"]
