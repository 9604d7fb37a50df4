"""kubectl's operations over the store: apply, create, delete, get. Admission runs here, so
nothing refused is ever written; what is written reaches the build through the store's change
feed, not through this service."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from bastion.api import admission, core, istio, kinds, selectors
from bastion.api.admission import Admitted, Refused
from bastion.diag import one_line
from bastion.errors import CredentialError
from bastion.managed import MANAGED_ANNOTATION
from bastion.private import PrivateBytes
from bastion.services.events import Events
from bastion.services.pipeline import Pipeline
from bastion.store import ApplyOutcome, ObjectStore
from bastion.store.keys import StoreKey
from bastion.translate.istio.credentials import check_pair
from bastion.translate.istio.files import confinement_problems

log = logging.getLogger("bastion")


def key_pair_problem(secret: core.Secret) -> str | None:
    """Why a TLS Secret's certificate and key cannot be used together, or None."""
    try:
        check_pair(secret.value("tls.crt") or b"", secret.private_key("tls.key") or PrivateBytes(b""))
    except CredentialError as exc:
        return str(exc)
    return None


READ_ONLY = ("is made by bastion from the running gateway and cannot be changed: change "
             "`bastion serve`'s options instead")


class ObjectService:
    def __init__(self, store: ObjectStore, pipeline: Pipeline,
                 virtual: Callable[[], list[dict[str, Any]]] | None = None) -> None:
        self.store = store
        self.pipeline = pipeline
        # Objects that reflect what runs (the gateway's Service and Pod), made on each read.
        self.virtual = virtual or (lambda: [])
        # The status of a stored object as what runs it sees it (a Deployment's replicas).
        self.status_of: Callable[[StoreKey], dict[str, Any] | None] = lambda key: None
        self.events: Events | None = None  # what `describe` lists under "Events"
        self.runs_workloads = False

    def _virtual_keys(self) -> dict[StoreKey, dict[str, Any]]:
        out = {}
        for body in self.virtual():
            meta = body["metadata"]
            group, _ = kinds.split_api_version(body["apiVersion"])
            out[StoreKey(group, body["kind"], meta.get("namespace", ""), meta["name"])] = body
        return out

    def apply(self, objects: list[Any], namespace: str, create_only: bool = False,
              dry_run: bool = False, verify_key_pairs: bool = False) -> list[dict[str, Any]]:
        """With `verify_key_pairs` (kubectl's `create secret tls`), a TLS Secret whose key does
        not match its certificate is refused instead of stored and reported."""
        results: list[dict[str, Any]] = []
        accepted: list[tuple[int, Admitted]] = []
        made = self._virtual_keys()  # once: an apply may hold 30,000 objects
        for raw in objects:
            verdict = admission.admit(raw, namespace)
            if isinstance(verdict, Refused):
                log.warning("refused: %s", verdict.message)
                results.append({"ok": False, "error": verdict.message, "reason": "Invalid"})
                continue
            warnings = [str(w) for w in verdict.warnings]
            if verdict.key in made:
                message = f"{verdict.info.resource} {verdict.key.name!r} {READ_ONLY}"
                results.append({"ok": False, "error": message, "reason": "Forbidden"})
                continue
            if isinstance(verdict.model, istio.Gateway | istio.DestinationRule):
                outside = confinement_problems(verdict.model,
                                               self.pipeline.config.options.cert_dirs)
                if outside:
                    message = one_line(f"{verdict.key.ref}: " + "; ".join(
                        f"{f}: {m}" for f, m in outside))
                    log.warning("refused: %s", message)
                    results.append({"ok": False, "error": message, "reason": "Invalid"})
                    continue
            if isinstance(verdict.model, core.Secret):
                warnings += admission.secret_use_warnings(verdict.model)
                problem = key_pair_problem(verdict.model) if verify_key_pairs else None
                if problem is not None:
                    results.append({"ok": False, "reason": "BadKeyPair", "error": problem})
                    continue
            results.append({"ok": True, "resource": f"{verdict.info.resource}/{verdict.key.name}",
                            "warnings": warnings})
            accepted.append((len(results) - 1, verdict))
        if create_only:
            for index, verdict in accepted:
                if self.store.get(verdict.key) is not None:
                    results[index] = {"ok": False, "reason": "AlreadyExists", "error": (
                        f"{verdict.info.resource} {verdict.key.name!r} already exists")}
            accepted = [(i, v) for i, v in accepted if results[i]["ok"]]
        if dry_run:
            for index, _ in accepted:
                results[index]["outcome"] = "configured (dry run)"
            return results
        self.pipeline.admitted({v.key: v.model for _, v in accepted})
        try:
            outcomes = self.store.apply([(v.key, v.body) for _, v in accepted])
        finally:
            self.pipeline.admitted({})
        for (index, verdict), outcome in zip(accepted, outcomes, strict=True):
            results[index]["outcome"] = str(outcome)
            results[index]["revision"] = self.store.revision
            if outcome != ApplyOutcome.UNCHANGED:
                log.info("%s %s", str(verdict.key.ref), outcome)
        return results

    def resolve_kind(self, name: str) -> tuple[str, str] | None:
        info = kinds.resolve_kind_name(name)
        if info is not None:
            return info.group, info.kind
        word = name.lower()
        for obj in self.store.all():
            kind = obj.key.kind.lower()
            if word in (kind, kind + "s", kind + "es"):
                return obj.key.group, obj.key.kind
        return None

    def _key(self, group: str, kind: str, namespace: str, name: str
             ) -> tuple[StoreKey, kinds.KindInfo]:
        info = kinds.kind_info(group, kind)
        return StoreKey(group, kind, namespace if info.namespaced else "", name), info

    def delete(self, targets: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
        """targets: (kind name as typed or exact kind, namespace, name)."""
        results: list[dict[str, Any]] = []
        keys: list[StoreKey] = []
        made = self._virtual_keys()
        for kind_name, namespace, name in targets:
            resolved = self.resolve_kind(kind_name)
            if resolved is None:
                results.append({"ok": False, "reason": "NotFound", "error": (
                    f'{name}: the server doesn\'t have a resource type "{kind_name}"')})
                continue
            key, info = self._key(*resolved, namespace, name)
            if key in made:
                results.append({"ok": False, "reason": "Forbidden", "error": (
                    f"{info.resource} {name!r} {READ_ONLY}")})
                continue
            if self.store.get(key) is None:
                results.append({"ok": False, "reason": "NotFound", "error": (
                    f'{info.resource} "{name}" not found')})
                continue
            keys.append(key)
            results.append({"ok": True, "resource": f"{info.resource}/{name}",
                            "outcome": "deleted"})
        self.store.delete(keys)
        return results

    def get(self, kind_name: str, namespace: str | None, name: str | None,
            labels: str | None = None, fields: str | None = None
            ) -> tuple[list[dict[str, Any]], str | None]:
        """Objects of a kind (in `namespace`, or all), with kubectl's label and field
        selectors; the gateway's own Service and Pod among them."""
        resolved = self.resolve_kind(kind_name)
        if resolved is None:
            return [], f'the server doesn\'t have a resource type "{kind_name}"'
        group, kind = resolved
        info = kinds.kind_info(group, kind)
        objects = self.store.select(group, kind, namespace if info.namespaced else None)
        bodies = [self._with_status(o.key, o.body) for o in objects]
        for key, body in sorted(self._virtual_keys().items(), key=lambda i: i[0].name):
            if (key.group, key.kind) == (group, kind) and namespace in (None, key.namespace):
                bodies.append(body)
        if name is not None:
            bodies = [b for b in bodies if b.get("metadata", {}).get("name") == name]
            if not bodies:
                return [], f'{info.resource} "{name}" not found'
        if labels:
            wanted = selectors.label_selector(labels)
            bodies = [b for b in bodies if wanted(b.get("metadata", {}).get("labels") or {})]
        if fields:
            matches = selectors.field_selector(fields)
            bodies = [b for b in bodies if matches(b)]
        return bodies, None

    def notice(self, kind_name: str, items: list[dict[str, Any]]) -> str | None:
        """What a user listing this kind should know."""
        stored = [i for i in items
                  if MANAGED_ANNOTATION not in (i.get("metadata", {}).get("annotations") or {})]
        if self.resolve_kind(kind_name) == ("apps", "Deployment") and stored and (
                not self.runs_workloads):
            return ("deployments are stored, not run: start `bastion serve --run-workloads` "
                    "to run them")
        return None

    def _with_status(self, key: StoreKey, body: dict[str, Any]) -> dict[str, Any]:
        status = self.status_of(key)
        return body if status is None else {**body, "status": status}

    def object_revision(self, kind_name: str, namespace: str, name: str) -> int | None:
        resolved = self.resolve_kind(kind_name)
        if resolved is None:
            return None
        obj = self.store.get(self._key(*resolved, namespace, name)[0])
        return obj.revision if obj else None
