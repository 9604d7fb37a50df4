"""The snapshot of each gateway group, and the watches of the gateways connected to it.

Keyed by the group a gateway declares in its xDS node metadata (labels and namespace), so that
each gateway receives only the configuration built for it: no private key reaches a gateway
that does not serve it. Every snapshot is checked for consistency before it is set; the last
good one stays otherwise. Watching follows gRPC's asyncio health servicer: one condition per
key, notified when that key's snapshot is replaced.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from bastion.dataplane.envoy.snapshot import Snapshot, consistency_problems
from bastion.errors import InternalError
from bastion.ir.workload import Workload
from bastion.memo import Memo


class InconsistentSnapshot(InternalError):
    """A snapshot names what it does not hold, or holds what nothing names: a bug in bastion."""


class SnapshotCache:
    def __init__(self, on_new_group: Callable[[Workload], None] | None = None) -> None:
        self._snapshots: dict[Workload, Snapshot] = {}
        self._conditions: dict[Workload, asyncio.Condition] = {}
        self._watchers: dict[Workload, int] = {}
        self._wakers: set[asyncio.Task[None]] = set()
        self.on_new_group = on_new_group

    def get(self, group: Workload) -> Snapshot | None:
        return self._snapshots.get(group)

    def groups(self) -> set[Workload]:
        """Groups with a snapshot or a gateway waiting for one."""
        return set(self._snapshots) | {g for g, n in self._watchers.items() if n}

    def watched(self, group: Workload) -> bool:
        return self._watchers.get(group, 0) > 0

    def set(self, group: Workload, snapshot: Snapshot, memo: Memo | None = None) -> None:
        """Raises InconsistentSnapshot, keeping the previous snapshot, if it is not whole."""
        problems = consistency_problems(snapshot, memo, checked=self._snapshots.get(group))
        if problems:
            raise InconsistentSnapshot(
                f"inconsistent snapshot for gateway group {group}, revision "
                f"{snapshot.generation}: " + "; ".join(problems))
        self._snapshots[group] = snapshot
        condition = self._conditions.get(group)
        if condition is not None:
            task = asyncio.get_running_loop().create_task(self._wake(condition))
            self._wakers.add(task)
            task.add_done_callback(self._wakers.discard)

    @staticmethod
    async def _wake(condition: asyncio.Condition) -> None:
        async with condition:
            condition.notify_all()

    async def watch(self, group: Workload) -> AsyncIterator[Snapshot]:
        """Each snapshot of `group` from now on, starting with the current one; a group nobody
        built for yet is announced (`on_new_group`) so that its first build can start."""
        condition = self._conditions.setdefault(group, asyncio.Condition())
        self._watchers[group] = self._watchers.get(group, 0) + 1
        try:
            if group not in self._snapshots and self.on_new_group is not None:
                self.on_new_group(group)
            seen: list[Snapshot | None] = [None]
            while True:
                async with condition:
                    await condition.wait_for(lambda: self._fresh(group, seen[0]))
                    current = self._snapshots[group]
                seen[0] = current
                yield current
        finally:
            self._watchers[group] -= 1

    def _fresh(self, group: Workload, last: Snapshot | None) -> bool:
        current = self._snapshots.get(group)
        return current is not None and current is not last
