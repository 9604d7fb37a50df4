"""How stored objects are named."""

from __future__ import annotations

from dataclasses import dataclass

from bastion.diag import ObjectRef


@dataclass(frozen=True)
class StoreKey:
    """Where an object lives in the store: kinds of different groups never collide."""

    group: str
    kind: str
    namespace: str
    name: str

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(self.kind, self.namespace, self.name)
