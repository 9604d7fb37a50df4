"""The fleet: which gateways each control plane of a shared store serves, so that `bastion
status` on any of them shows every gateway, not only its own (a store with one control plane
has no fleet to show)."""

from __future__ import annotations

import asyncio
from typing import Any

from bastion.dataplane.envoy.connections import Connections
from bastion.store import ObjectStore

INTERVAL_S = 0.2
SHOWN = ("node", "group", "peer", "inSync", "syncedRevision")


def summary(connections: Connections) -> dict[str, Any]:
    return {"gateways": sorted(({k: g[k] for k in SHOWN} for g in connections.status()),
                               key=lambda g: (str(g["node"]), str(g["peer"])))}


async def announce(store: ObjectStore, name: str, connections: Connections) -> None:
    """Announce this control plane's gateways whenever they change (checked five times a
    second: `wait` on another control plane reads it)."""
    last: dict[str, Any] | None = None
    while True:
        current = summary(connections)
        if current != last:
            store.announce(name, current)
            last = current
        await asyncio.sleep(INTERVAL_S)


def others(store: ObjectStore, own: str) -> list[dict[str, Any]]:
    """The gateways the other live control planes of the store announce."""
    return [g for name, plane in store.presences().items() if name != own
            for g in plane.get("gateways", [])]
