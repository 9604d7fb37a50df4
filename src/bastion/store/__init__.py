"""The object store with Kubernetes-like keys and a global resourceVersion: embedded (SQLite)
for one machine, or etcd for control planes sharing one."""

from bastion.store.base import ObjectStore
from bastion.store.keys import StoreKey
from bastion.store.objects import ApplyOutcome, Change, StoredObject, Subscriber
from bastion.store.sqlite import SqliteStore

__all__ = ["ApplyOutcome", "Change", "ObjectStore", "SqliteStore", "StoreKey", "StoredObject",
           "Subscriber"]
