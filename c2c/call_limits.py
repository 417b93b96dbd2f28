"""Vendor call limits, in the vendor's own units, held by every worker together.

Each vendor (``netsuite``, ``business-central``, ``stripe``, ``avatax``, ``salesforce``, or a
sandbox system: ``erp``, ``crm``, ``psa``, ``tax``, ``payments``) may limit the requests c2c
sends it per second, and the requests it has in flight at once. ``C2C_CALL_LIMITS`` sets them
(JSON, e.g. ``{"netsuite": {"in_flight": 5}, "stripe": {"per_second": 25}}``); a vendor it does
not name keeps the default in ``VENDOR_LIMITS``, taken from the vendor's published limits
(docs/vendors.md, "Vendor call limits").

Every HTTP request to a limited vendor first takes a slot from a ``SlotStore`` that all the
workers share (the ledger's database): a lease, given back when the answer has arrived or,
should the worker die, when it expires. It counts against ``in_flight`` until then, and against
``per_second`` until a second later. Waiting for a slot is part of the call, not a failure: it
costs no retry, and its time is the ``c2c_vendor_call_slot_wait_seconds`` histogram.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

from c2c.telemetry import record_call_slot_wait
from c2c.vendor_limits import CallLimit

#: How often a call waiting for an in-flight slot looks again, at first and at most.
POLL_MIN_S = 0.02
POLL_MAX_S = 0.25


@dataclass(frozen=True)
class Attempt:
    """A ``SlotStore``'s answer to one try.

    Attributes:
        granted: A slot was taken.
        lease_id: The lease to give back once the answer has arrived (``None`` when nothing
            was granted).
        retry_in_s: When nothing was granted: when a slot may be free at the earliest.
    """

    granted: bool
    lease_id: str | None = None
    retry_in_s: float = 0.0


class SlotStore(Protocol):
    """Where every worker's slots are kept: each try is one atomic transaction."""

    def try_acquire(self, vendor: str, limit: CallLimit, holder: str, now: float) -> Attempt:
        """Take a slot of ``vendor`` under ``limit`` for ``holder`` at ``now`` (epoch
        seconds), if one is free."""
        ...

    def release(self, lease_id: str, now: float) -> None:
        """Give an in-flight lease back."""
        ...


def holder_name() -> str:
    """Who holds a lease: this host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


class CallGovernor:
    """Hands out slots of ``limits`` from ``store`` to this process's calls."""

    def __init__(self, store: SlotStore, limits: Mapping[str, CallLimit]) -> None:
        self.store = store
        self.limits = dict(limits)
        self.holder = holder_name()

    def governs(self, vendor: str) -> bool:
        return vendor in self.limits

    async def acquire(self, vendor: str) -> str | None:
        """Wait for a slot of ``vendor``; the lease to give back, if any.

        A try that was cancelled (the activity was) gives back what it took.
        """
        limit = self.limits[vendor]
        started = time.monotonic()
        poll = POLL_MIN_S
        while True:
            attempt = asyncio.ensure_future(
                asyncio.to_thread(self.store.try_acquire, vendor, limit, self.holder, time.time())
            )
            try:
                answer = await asyncio.shield(attempt)
            except asyncio.CancelledError:
                attempt.add_done_callback(self._give_back_late)
                raise
            if answer.granted:
                record_call_slot_wait(system=vendor, seconds=time.monotonic() - started)
                return answer.lease_id
            pause = max(answer.retry_in_s, poll) if answer.retry_in_s else poll
            await asyncio.sleep(min(pause, POLL_MAX_S) * random.uniform(0.8, 1.2))
            poll = min(poll * 2, POLL_MAX_S)

    async def release(self, lease_id: str) -> None:
        """Give ``lease_id`` back, even when the caller is being cancelled."""
        await asyncio.shield(asyncio.to_thread(self.store.release, lease_id, time.time()))

    def _give_back_late(self, attempt: asyncio.Future[Attempt]) -> None:
        if attempt.cancelled() or attempt.exception() is not None:
            return
        lease_id = attempt.result().lease_id
        if lease_id is not None:
            asyncio.get_running_loop().run_in_executor(
                None, self.store.release, lease_id, time.time()
            )


_governor: CallGovernor | None = None


def install_governor(governor: CallGovernor | None) -> CallGovernor | None:
    """Make ``governor`` this process's (``None``: calls go unlimited); the one it replaces."""
    global _governor
    previous, _governor = _governor, governor
    return previous


def current_governor() -> CallGovernor | None:
    return _governor


@asynccontextmanager
async def call_slot(vendor: str) -> AsyncIterator[None]:
    """Hold a slot of ``vendor`` for the block: one request, sent and answered."""
    governor = _governor
    if governor is None or not governor.governs(vendor):
        yield
        return
    lease_id = await governor.acquire(vendor)
    try:
        yield
    finally:
        if lease_id is not None:
            await governor.release(lease_id)
