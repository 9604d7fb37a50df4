"""Who does a task only one control plane may do at a time (issuing certificates, rotating
session-ticket keys): derived state has one writer, so replicas never fight over it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("bastion")


class Leadership:
    """Held while `leading` is set; a store's backend sets and clears it. The embedded store
    has one control plane, which always leads."""

    def __init__(self, task: str, held: bool = False) -> None:
        self.task = task
        self._held = asyncio.Event()
        self._free = asyncio.Event()
        if held:
            self._held.set()
        else:
            self._free.set()

    @property
    def leading(self) -> bool:
        return self._held.is_set()

    def _set(self, held: bool) -> None:
        (self._held if held else self._free).set()
        (self._free if held else self._held).clear()

    async def acquired(self) -> None:
        await self._held.wait()

    async def lost(self) -> None:
        await self._free.wait()


async def while_leading(leadership: Leadership, run: Callable[[], Awaitable[None]]) -> None:
    """Run `run()` whenever this control plane leads `leadership`'s task; cancel it when the
    lead is lost (another control plane takes over), and start it again on the next."""
    while True:
        await leadership.acquired()
        log.info("leading %s", leadership.task)
        runner = asyncio.ensure_future(run())
        lost = asyncio.ensure_future(leadership.lost())
        done, _ = await asyncio.wait({runner, lost}, return_when=asyncio.FIRST_COMPLETED)
        for pending in (runner, lost):
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pending
        if runner in done and not runner.cancelled():
            error = runner.exception()
            if error is None:
                return  # the task ended by itself
            log.error("%s failed: %r; starting it again", leadership.task, error)
            await asyncio.sleep(1.0)
        elif lost in done:
            log.info("no longer leading %s", leadership.task)
