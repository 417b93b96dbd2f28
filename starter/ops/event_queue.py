"""The queue of webhook events answered before they are processed (``C2C_WEBHOOK_QUEUE``).

With the queue on, a signed ``contract.approved`` is checked (signature, envelope, every field
of the approval) and recorded in the ledger as ``received``, and the sender is answered ``202``
with ``"queued": true`` at once: the CLM's delivery no longer waits for Temporal, and an
approval that arrives while Temporal is down is kept and started when it is back, instead of
being refused for the sender to retry. Bad input is refused as without the queue, before
anything is queued.

Each API process runs one ``EventQueue``. It claims waiting events from the ledger (a lease,
so a crashed process does not keep them, and several API replicas share the queue without
taking the same event twice), runs each through its webhook's processor, and settles it as the
webhook would have: processed with its answer (given to later duplicates), or a dead letter
with the reason. A transient failure leaves the event waiting, with a pause that doubles per
attempt (``starter.ops.dead_letters.retry_delay``). The queue is woken by each event it is given,
and looks at the ledger every ``poll`` seconds for events other processes left.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from datetime import timedelta

from starlette.concurrency import run_in_threadpool

from c2c.logs import get_logger
from ledger import InboundEvent, InboundSource, Ledger
from ledger.inbound import DEFAULT_CLAIM
from starter.api.context import ApiContext
from starter.api.errors import ApiError
from starter.api.metrics import record_queued_event
from starter.ops import dead_letters
from starter.ops.claim_loop import ClaimLoop
from starter.ops.dead_letters import Processor

log = get_logger("c2c.api.queue")

#: Events processed at once by one API process.
DEFAULT_CONCURRENCY = 16
#: How often the queue looks for waiting events when nothing woke it.
DEFAULT_POLL = timedelta(seconds=1)
#: How long the queue lets events gather after it is woken, before it claims them.
GATHER_S = 0.01


class EventQueue(ClaimLoop[InboundEvent]):
    """Processes the waiting events of some sources and types, in the background.

    An event cut short by ``stop`` stays claimed until its lease runs out, then waits again:
    the next process to claim it processes it (a second start of a workflow is refused by
    Temporal, so nothing is done twice).

    Args:
        context: The API's shared resources.
        processors: Each source's processor, as its webhook runs it.
        types: The event types to take, by source.
        concurrency: Events processed at once.
        poll: The pause between two looks at the ledger when nothing wakes the queue.
        claim: How long an event is held by this process while it is processed.
    """

    def __init__(
        self,
        context: ApiContext,
        processors: Mapping[InboundSource, Processor],
        types: Mapping[InboundSource, Collection[str]],
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        poll: timedelta = DEFAULT_POLL,
        claim: timedelta = DEFAULT_CLAIM,
    ) -> None:
        # Claim when half the slots are free (all are, when none is busy): one claim per
        # several events instead of one per event, since each claim is a write transaction.
        super().__init__(
            "event queue",
            concurrency=concurrency,
            poll=poll,
            refill_at=concurrency // 2,
            gather_s=GATHER_S,
        )
        self.context = context
        self.processors = dict(processors)
        self.types = {source: frozenset(kinds) for source, kinds in types.items()}
        self.lease = claim

    async def claim(self, limit: int) -> list[InboundEvent]:
        ledger = await self.context.ledger()
        return await run_in_threadpool(
            ledger.claim_waiting_events, self.types, limit=limit, claim=self.lease
        )

    async def handle(self, item: InboundEvent) -> None:
        await self._process(await self.context.ledger(), item)

    async def _process(self, ledger: Ledger, event: InboundEvent) -> None:
        source = InboundSource(event.source)
        try:
            outcome = await dead_letters.process_waiting(
                self.context, ledger, event, self.processors[source]
            )
        except Exception as exc:
            # Settling it failed (the ledger): its claim runs out and it is taken again.
            log.warning(
                "queued event not settled",
                source=source.value,
                event_id=event.event_id,
                error=str(exc),
            )
            record_queued_event(source.value, "retry")
            return
        if outcome is None:
            record_queued_event(source.value, "retry")
        elif isinstance(outcome, ApiError):
            record_queued_event(source.value, "dead_letter")
        else:
            record_queued_event(source.value, "processed")

    async def drained(self, timeout_s: float = 30.0) -> None:
        """Wait until no event this queue takes is waiting or being processed (tests, the
        benchmark).

        Raises:
            TimeoutError: Some are still waiting after ``timeout_s``.
        """
        deadline = asyncio.get_running_loop().time() + timeout_s
        ledger = await self.context.ledger()
        while True:
            waiting = await run_in_threadpool(ledger.count_waiting_events)
            if not any(waiting.get(source.value) for source in self.types) and not self._in_flight:
                return
            if asyncio.get_running_loop().time() >= deadline:
                raise TimeoutError(f"events still waiting after {timeout_s} s: {waiting}")
            self.wake()
            await asyncio.sleep(0.05)
