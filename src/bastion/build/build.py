"""The one build: stored objects in, one neutral configuration per gateway group out.

`build(previous, inputs, ...)` is a pure function of the objects, the gateway groups and the
previous build. The control plane, `bastion translate` / `analyze` and the golden tests all call
it. When the caller says which objects changed, the build takes the short paths inside it: a
change of Secrets only refreshes the credentials they feed, a change of VirtualServices only
re-translates the servers of the Gateways they name; anything else translates every group again,
reusing (through the memo) whatever did not change. Each gateway's result says what changed
(`Delta`), compared by value, so that a data plane can send only that.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from types import MappingProxyType

from bastion.api.admission import MODELS
from bastion.build.inputs import Inputs
from bastion.diag import Diagnostic
from bastion.ir.model import Server, ServerKey
from bastion.ir.workload import Workload
from bastion.memo import Memo
from bastion.store.keys import StoreKey
from bastion.translate.istio import (
    IrResult,
    Options,
    refresh_credentials,
    refresh_routes,
    to_ir,
)
from bastion.translate.istio.credentials import CA_SUFFIX, SecretLookup
from bastion.translate.istio.files import FILE_GROUP
from bastion.translate.istio.resources import READ_TYPES
from bastion.translate.istio.tickets import NAME as TICKET_NAME
from bastion.translate.istio.tickets import NAMESPACE as TICKET_NAMESPACE
from bastion.translate.istio.tickets import ticket_keys

TICKET_KEY = StoreKey("", "Secret", TICKET_NAMESPACE, TICKET_NAME)
READ_KINDS = frozenset({(FILE_GROUP, "File")} | {k for k, t in MODELS.items() if t in READ_TYPES})


@dataclass(frozen=True)
class Delta:
    """What differs from the gateway's previous build: the credentials (TLS and CA names) whose
    material changed, added or went; the servers whose virtual hosts changed; whether backends
    may differ. An empty delta: nothing differs."""

    credentials: frozenset[str] = frozenset()
    servers: tuple[Server, ...] = ()  # as they are now
    backends: bool = False


@dataclass(frozen=True)
class GatewayBuild:
    workload: Workload
    ir: IrResult
    delta: Delta | None = None  # None: compare everything with the previous build

    @property
    def changed(self) -> bool:
        return self.delta is None or bool(
            self.delta.credentials or self.delta.servers or self.delta.backends)


@dataclass(frozen=True)
class Build:
    revision: int  # the store revision built from
    gateways: Mapping[Workload, GatewayBuild]
    options: Options
    memo: Memo = field(default_factory=Memo, compare=False, repr=False)

    @cached_property
    def diagnostics(self) -> tuple[Diagnostic, ...]:
        """Every problem found, once, whichever gateway group found it (worked out once per
        build: the log, `status` and `describe` all ask)."""
        if len(self.gateways) == 1:
            return next(iter(self.gateways.values())).ir.diagnostics
        found: set[Diagnostic] = set()
        for gateway in self.gateways.values():
            found.update(gateway.ir.diagnostics)
        return tuple(sorted(found))


def build(previous: Build | None, inputs: Inputs, revision: int,
          workloads: Iterable[Workload], options: Options,
          changed: Collection[StoreKey] | None = None) -> Build:
    """`changed`: the keys that changed since `previous` (None: unknown, translate all)."""
    if previous is not None and previous.options != options:
        previous = None
    memo = previous.memo if previous is not None else Memo()
    gateways: dict[Workload, GatewayBuild] = {}
    full: list[Workload] = []
    for workload in sorted(set(workloads)):
        before = previous.gateways.get(workload) if previous is not None else None
        result = None
        if before is not None and changed is not None:
            result = _incremental(before, inputs, changed, options, memo)
        if result is None:
            full.append(workload)
        else:
            gateways[workload] = result
    for workload in full:
        gateways[workload] = GatewayBuild(workload, to_ir(inputs.resources, workload, options,
                                                          memo))
    if full:
        memo.advance()
    return Build(revision, MappingProxyType(gateways), options, memo)


def _incremental(before: GatewayBuild, inputs: Inputs, changed: Collection[StoreKey],
                 options: Options, memo: Memo) -> GatewayBuild | None:
    """The gateway's build after `changed`, from its previous one, or None when only a full
    translation can tell."""
    workload = before.workload
    changed = [k for k in changed if (k.group, k.kind) in READ_KINDS]
    if not changed:  # nothing translation reads (an Event, a Certificate, a ConfigMap)
        return GatewayBuild(workload, before.ir, Delta())
    if all(k.group == "" and k.kind == "Secret" for k in changed):
        # A Secret of another namespace is named `namespace/name` (a Gateway API listener's,
        # granted by a ReferenceGrant).
        names = {f"{k.namespace}/{k.name}" for k in changed}  # as Gateway API listeners name
        names |= {k.name for k in changed if k.namespace == workload.namespace}
        result = _secrets_changed(before, inputs, names)
        if result is not None and TICKET_KEY in changed:
            return _tickets_changed(result, inputs)
        return result
    if all(k.kind == "VirtualService" for k in changed):
        return _routes_changed(before, inputs, {(k.namespace, k.name) for k in changed},
                               options, memo)
    return None


def _secrets_changed(before: GatewayBuild, inputs: Inputs, names: set[str]
                     ) -> GatewayBuild | None:
    workload = before.workload
    namespace = workload.namespace
    lookup = SecretLookup({}, namespace)
    secrets = {}
    for name in names:
        for candidate in {name, name + CA_SUFFIX, name.removesuffix(CA_SUFFIX)}:
            key = lookup.locate(candidate)
            secret = inputs.resources.secrets.get(key)
            if secret is not None:
                secrets[key] = secret
    result = refresh_credentials(before.ir, secrets, workload, names)
    if result is None:
        return None
    if result is before.ir:
        return GatewayBuild(workload, result, Delta())
    old, new = before.ir.config, result.config
    touched = names | {n + CA_SUFFIX for n in names} | {n.removesuffix(CA_SUFFIX) for n in names}
    differ = frozenset(n for n in touched
                       if old.credential(n) != new.credential(n)
                       or old.ca_credential(n) != new.ca_credential(n))
    return GatewayBuild(workload, result, Delta(credentials=differ))


def _tickets_changed(current: GatewayBuild, inputs: Inputs) -> GatewayBuild | None:
    """The session-ticket keys rotated: one credential replaced. Keys that appear or go
    change every TLS server (whether it seals tickets with them): a full translation."""
    config = current.ir.config
    keys = ticket_keys(inputs.resources.secrets, current.workload)
    before = config.ticket_keys
    if (before is None) != (keys is None):
        return None
    if before is None or keys is None or keys == before:
        return current
    ir = replace(current.ir, config=replace(config, ticket_keys=keys))
    delta = current.delta or Delta()
    return GatewayBuild(current.workload, ir,
                        replace(delta, credentials=delta.credentials | {keys.name}))


def naming_key(key: ServerKey) -> tuple[str, int, str, str, str]:
    return (key.protocol, key.port, key.port_name, key.namespace, key.gateway)


def _routes_changed(before: GatewayBuild, inputs: Inputs, keys: set[tuple[str, str]],
                    options: Options, memo: Memo) -> GatewayBuild | None:
    refreshed = refresh_routes(before.ir, inputs.resources, before.workload, options, keys,
                               memo)
    if refreshed is None:
        return None
    result, retranslated = refreshed
    differ = tuple(new for _, (old, new) in sorted(retranslated.items(),
                                                   key=lambda i: naming_key(i[0]))
                   if old != new)
    backends = result.config.backends != before.ir.config.backends
    return GatewayBuild(before.workload, result, Delta(servers=differ, backends=backends))
