"""A system's rate limit holds across every worker that polls its task queue.

Three workers poll the ERP queue with a limit of 5 activities per second, set by
``C2C_RATE_LIMITS``; twelve contracts start at once and provision themselves (four ERP steps
each). The test records when each ERP step starts on any of the three workers. The server
divides the limit among the task queue's partitions (four by default), each a token bucket that,
after an idle spell, lets up to ``ceil(rate / partitions)`` start at once: no window of ``w``
seconds may hold more than ``5 w`` starts, the buckets' bursts together (8), and one more (a
start recorded at each edge of the window). Without the limit, the twelve contracts' steps start
dozens a second.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from contextlib import AsyncExitStack
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from c2c.settings import WORKFLOWS_QUEUE, Settings
from c2c.temporal import connect
from domain.names import System, system_task_queue
from starter.api.contracts import start_contract
from tests.workflows.helpers import approval, wait_stage
from worker import contract_worker

RATE = 5
CONTRACTS = 24
#: Validation, and the ERP's customer, project and contract in one step (from 0.11).
ERP_STEPS_EACH = 2
#: The server's task-queue partitions, each limited to ``RATE / PARTITIONS`` per second.
PARTITIONS = 4
#: What the partitions' token buckets hold together when full: each holds one second's worth
#: of its share, rounded up (the matching service's rule), so more than ``RATE`` in all.
BURST = PARTITIONS * math.ceil(RATE / PARTITIONS)


class StartRecorder(Interceptor):
    """Notes the start of every activity this worker runs: (time, worker, queue).

    The time is the server's: when it handed the task to a worker, which is what its rate
    limiter spaces out. The worker's own clock would also count its stalls on a busy machine
    (a worker starved of CPU for a second runs the tasks it was handed meanwhile back to back).
    """

    def __init__(self, name: str, starts: list[tuple[float, str, str]]) -> None:
        self.name = name
        self.starts = starts

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        recorder = self

        class Record(ActivityInboundInterceptor):
            async def execute_activity(self, input: ExecuteActivityInput) -> Any:
                info = activity.info()
                recorder.starts.append(
                    (info.started_time.timestamp(), recorder.name, info.task_queue)
                )
                return await super().execute_activity(input)

        return Record(next)


def busiest(times: list[float], seconds: float) -> int:
    """The most starts in any window of ``seconds``."""
    times = sorted(times)
    most, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= seconds:
            first += 1
        most = max(most, last - first + 1)
    return most


async def test_three_workers_together_keep_the_erp_rate_limit(
    temporal_client: Client, settings: Settings
) -> None:
    own = settings.model_copy(
        update={
            "task_queue": f"c2c-rate-{uuid.uuid4().hex[:8]}",
            "rate_limits": {System.ERP.value: float(RATE)},
        }
    )
    erp_queue = system_task_queue(own.task_queue, System.ERP.value)
    starts: list[tuple[float, str, str]] = []
    async with AsyncExitStack() as stack:
        # The workflows and the other systems' steps in one worker; the ERP's in three.
        await stack.enter_async_context(
            contract_worker(
                temporal_client, own, queues={WORKFLOWS_QUEUE, System.PSA.value, System.CRM.value}
            )
        )
        for n in range(3):
            # A connection each, as three worker processes would have.
            await stack.enter_async_context(
                contract_worker(
                    await connect(own),
                    own,
                    queues={System.ERP.value},
                    interceptors=[StartRecorder(f"erp-worker-{n}", starts)],
                )
            )
        events = [approval() for _ in range(CONTRACTS)]
        await asyncio.gather(
            *(start_contract(temporal_client, e, task_queue=own.task_queue) for e in events)
        )
        await asyncio.gather(
            *(wait_stage(temporal_client, e.contract_id, "active", timeout=120) for e in events)
        )

    erp = [(at, worker) for at, worker, queue in starts if queue == erp_queue]
    assert len(erp) >= CONTRACTS * ERP_STEPS_EACH
    assert len({worker for _, worker in erp}) >= 2, "the ERP steps ran on one worker only"
    times = [at for at, _ in erp]
    for seconds in (1, 2, 5):
        most = busiest(times, seconds)
        allowed = RATE * seconds + BURST + 1
        assert most <= allowed, f"{most} ERP steps started within {seconds} s (limit {RATE}/s)"
