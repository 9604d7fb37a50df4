"""The objects a build reads: the admitted model of every stored object, kept current change by
change, so that a build never re-admits or regroups what did not change."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from bastion.api import admission
from bastion.api.admission import Admitted
from bastion.store.keys import StoreKey
from bastion.translate.istio import Resources


class Inputs:
    """Models by store key (with the revision each was admitted at) and the same models grouped
    for translation. Objects of kinds bastion does not act on are kept as None."""

    def __init__(self) -> None:
        self._models: dict[StoreKey, tuple[int, Any]] = {}
        self.resources = Resources()
        self.kinds: dict[str, int] = {}  # stored objects by kind, kept as they change

    @classmethod
    def of(cls, models: Iterable[object]) -> Inputs:
        """Inputs from models alone (offline: `bastion translate`, golden files)."""
        out = cls()
        for model in models:
            meta = model.metadata  # type: ignore[attr-defined]
            key = StoreKey("", type(model).__name__, meta.namespace or "", meta.name)
            if key not in out._models:
                out.kinds[key.kind] = out.kinds.get(key.kind, 0) + 1
            out._models[key] = (0, model)
            out.resources.put(model)
        return out

    def __len__(self) -> int:
        return len(self._models)

    def model(self, key: StoreKey) -> Any:
        entry = self._models.get(key)
        return entry[1] if entry is not None else None

    def keys(self) -> Iterable[StoreKey]:
        return self._models.keys()

    def models(self) -> list[Any]:
        """Every model of a kind bastion acts on."""
        return [m for _, m in self._models.values() if m is not None]

    def revision(self, key: StoreKey) -> int | None:
        entry = self._models.get(key)
        return entry[0] if entry is not None else None

    def put(self, key: StoreKey, revision: int, body: Mapping[str, Any] | None,
            model: Any = None) -> None:
        """The object at `key` is now this (`model` when the caller admitted it already)."""
        entry = self._models.get(key)
        if entry is not None and entry[0] == revision and model is None:
            return
        if model is None and body is not None:
            verdict = admission.admit(dict(body), key.namespace or "default")
            model = verdict.model if isinstance(verdict, Admitted) else None
        elif model is not None and body is not None:
            model = _with_server_metadata(model, body)
        self._drop(key)
        if key not in self._models:
            self.kinds[key.kind] = self.kinds.get(key.kind, 0) + 1
        self._models[key] = (revision, model)
        if model is not None:
            self.resources.put(model)

    def remove(self, key: StoreKey) -> None:
        self._drop(key)
        if self._models.pop(key, None) is not None:
            self.kinds[key.kind] -= 1
            if not self.kinds[key.kind]:
                del self.kinds[key.kind]

    def _drop(self, key: StoreKey) -> None:
        entry = self._models.get(key)
        if entry is not None and entry[1] is not None:
            self.resources.remove(type(entry[1]), (key.namespace, key.name))


def _with_server_metadata(model: Any, body: Mapping[str, Any]) -> Any:
    """The admitted model, with the metadata the store assigned: what admitting the stored
    object again would give, at half the cost of a large apply."""
    meta = body.get("metadata", {})
    metadata = dataclasses.replace(
        model.metadata, resource_version=meta.get("resourceVersion"), uid=meta.get("uid"),
        creation_timestamp=meta.get("creationTimestamp"))
    return dataclasses.replace(model, metadata=metadata)
