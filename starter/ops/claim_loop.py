"""The background loop the API's ledger-backed queues share: claim due work from the ledger
with a lease, handle each item in its own task, settle it, and look again.

The event queue (``starter.ops.event_queue``) and the outbound dispatcher
(``starter.ops.outbound``) differ only in what they claim and how they handle one item. The
lease is what makes the loop safe: several API replicas share the work without taking the
same item at once, and a crashed process's items are taken again once its lease runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import timedelta
from typing import Generic, TypeVar

from c2c.logs import get_logger

log = get_logger("c2c.api.queue")

T = TypeVar("T")

#: How long ``stop`` lets items being handled finish.
STOP_GRACE_S = 10.0


class ClaimLoop(ABC, Generic[T]):
    """Claims items in batches and handles each in a task, at most ``concurrency`` at once.

    Args:
        name: What the loop is, in its log lines and its task's name.
        concurrency: Items handled at once.
        poll: The pause between two looks at the ledger when nothing wakes the loop.
        refill_at: Claim only once this many slots are free (one write transaction per
            several items instead of one per item).
        gather_s: After a wake, how long to let a burst's other items arrive before claiming.
    """

    def __init__(
        self,
        name: str,
        *,
        concurrency: int,
        poll: timedelta,
        refill_at: int = 1,
        gather_s: float = 0.0,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.name = name
        self.concurrency = concurrency
        self.poll = poll
        self.refill_at = max(1, min(refill_at, concurrency))
        self.gather_s = gather_s
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()

    @abstractmethod
    async def claim(self, limit: int) -> Sequence[T]:
        """Take up to ``limit`` due items from the ledger, leased to this process."""

    @abstractmethod
    async def handle(self, item: T) -> None:
        """Handle and settle one claimed item; an item left unsettled is taken again once its
        lease runs out."""

    def on_start(self) -> None:
        """Acquire what handling needs, before the first claim."""

    async def on_stop(self) -> None:
        """Release what ``on_start`` acquired, after the last item."""

    def wake(self) -> None:
        """Look at the ledger now: an item was made due."""
        self._wake.set()

    @property
    def busy(self) -> int:
        """Items being handled now."""
        return len(self._in_flight)

    def start(self) -> None:
        """Start in the background (idempotent)."""
        if self._task is None:
            self._stopping = False
            self.on_start()
            self._task = asyncio.create_task(self._run(), name=f"c2c-{self.name}")
            log.info(f"{self.name} started", concurrency=self.concurrency)

    async def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Stop claiming and let the items being handled finish for up to ``grace_s``; one cut
        short stays leased until its lease runs out, then is taken again."""
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=grace_s)
        except TimeoutError:
            self._task.cancel()
            for task in list(self._in_flight):
                task.cancel()
            await asyncio.gather(self._task, *self._in_flight, return_exceptions=True)
        self._task = None
        await self.on_stop()
        log.info(f"{self.name} stopped")

    async def _run(self) -> None:
        while not self._stopping:
            claimed = 0
            free = self.concurrency - len(self._in_flight)
            if free >= self.refill_at:
                try:
                    claimed = await self._claim(free)
                except Exception as exc:
                    # The ledger did not answer: the items stay where they are; look again.
                    log.warning(f"{self.name} could not claim", error=str(exc))
            if claimed and claimed == free:
                continue  # more may be waiting
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll.total_seconds())
                if self.gather_s:
                    await asyncio.sleep(self.gather_s)
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def _claim(self, limit: int) -> int:
        items = await self.claim(limit)
        for item in items:
            task = asyncio.create_task(self.handle(item))
            self._in_flight.add(task)
            task.add_done_callback(self._done)
        return len(items)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._wake.set()  # a slot is free
