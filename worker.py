"""The c2c worker: runs the ``ContractToCash`` and ``Reconcile`` workflows and their activities.

``python worker.py`` is the same as ``c2c worker``.

One process polls several task queues: the workflows' queue (``C2C_TASK_QUEUE``, with c2c's
own ledger steps) and one queue per system that steps call (``c2c-erp``, ``c2c-psa``,
``c2c-crm``). Each system's queue has its own rate limit, set on the server and shared by
every worker polling it (``C2C_RATE_LIMITS``), and its own number of activities each worker
runs at once (``C2C_CONCURRENCY_LIMITS``). ``c2c worker --queues erp`` polls only some of
them, to scale or cap one system's calls apart from the rest.

Those limits count steps; each vendor's own limits count calls (``C2C_CALL_LIMITS``): every
request to a vendor holds one of its slots, kept in the ledger that all the workers share.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from temporalio.client import Client
from temporalio.worker import (
    Interceptor,
    PollerBehavior,
    PollerBehaviorAutoscaling,
    PollerBehaviorSimpleMaximum,
    Worker,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.log_context import ActivityLogContext
from activities.registry import build_steps
from c2c.call_limits import CallGovernor, install_governor
from c2c.logs import get_logger
from c2c.loops import running_loop
from c2c.settings import WORKFLOWS_QUEUE, Settings, get_settings
from c2c.telemetry import instrument_worker
from c2c.temporal import connect
from connectors.registry import build_connectors
from domain.names import system_task_queue
from domain.steps import STEP_SYSTEM_QUEUE
from ledger import Ledger, get_ledger
from workflows.account_sync import AccountSync
from workflows.billing_run import BillingRun
from workflows.contract_to_cash import ContractToCash
from workflows.customer_billing import CustomerBilling
from workflows.ironclad_intake import IroncladIntake
from workflows.reconcile import Reconcile

log = get_logger("c2c.worker")

#: Modules the workflow sandbox shares between runs instead of importing them afresh for each
#: run started or replayed, which costs ~50-100 ms of CPU per run (docs/performance.md).
#: Safe because the workflow modules hold no mutable module state; the replay tests
#: (tests/workflows/test_replay_histories.py) run them under the SDK's stricter default.
PASSED_THROUGH = ("workflows",)


def workflow_runner() -> SandboxedWorkflowRunner:
    """The SDK's sandbox, sharing ``PASSED_THROUGH`` between runs."""
    restrictions = SandboxRestrictions.default.with_passthrough_modules(*PASSED_THROUGH)
    return SandboxedWorkflowRunner(restrictions=restrictions)


def poller_behavior(settings: Settings) -> PollerBehavior:
    """How many long polls a worker keeps open per task queue."""
    if settings.worker_poller_autoscaling:
        most = settings.worker_pollers
        return PollerBehaviorAutoscaling(minimum=1, maximum=most, initial=min(5, most))
    return PollerBehaviorSimpleMaximum(maximum=settings.worker_pollers)


def build_workers(
    client: Client,
    settings: Settings,
    steps: dict[str, Callable[..., Any]],
    *,
    task_queue: str,
    queues: Collection[str],
    interceptors: Sequence[Interceptor] = (),
) -> list[Worker]:
    """One ``Worker`` per polled queue: the workflows' first, then each system's."""
    pollers = poller_behavior(settings)
    chain = [ActivityLogContext(), *interceptors]
    workers = []
    if WORKFLOWS_QUEUE in queues:
        workers.append(
            Worker(
                client,
                task_queue=task_queue,
                workflows=[
                    ContractToCash,
                    CustomerBilling,
                    AccountSync,
                    IroncladIntake,
                    Reconcile,
                    BillingRun,
                ],
                workflow_runner=workflow_runner(),
                # Every step, not only the ledger's: a step that a contract scheduled here
                # before steps moved to their system's queue still finds a worker.
                activities=list(steps.values()),
                max_concurrent_workflow_tasks=settings.worker_max_concurrent_workflow_tasks,
                max_cached_workflows=settings.worker_max_cached_workflows,
                max_concurrent_activities=settings.worker_max_concurrent_activities,
                workflow_task_poller_behavior=pollers,
                activity_task_poller_behavior=pollers,
                interceptors=chain,
            )
        )
    for system in sorted(set(STEP_SYSTEM_QUEUE.values())):
        if system.value not in queues:
            continue
        mine = [fn for name, fn in steps.items() if STEP_SYSTEM_QUEUE.get(name) is system]
        workers.append(
            Worker(
                client,
                task_queue=system_task_queue(task_queue, system.value),
                activities=mine,
                # Server-side, for this queue as a whole: all workers together stay under it.
                max_task_queue_activities_per_second=settings.rate_limits.get(system.value),
                # Per worker: the whole fleet runs up to this times the workers on the queue.
                max_concurrent_activities=settings.concurrency_limits.get(
                    system.value, settings.worker_max_concurrent_activities
                ),
                activity_task_poller_behavior=pollers,
                interceptors=chain,
            )
        )
    return workers


@asynccontextmanager
async def contract_worker(
    client: Client,
    settings: Settings,
    *,
    task_queue: str | None = None,
    queues: Collection[str] | None = None,
    interceptors: Sequence[Interceptor] = (),
    ledger: Ledger | None = None,
) -> AsyncIterator[Worker]:
    """Running workers for ``queues`` (by default all: ``settings.worker_queues``) of
    ``task_queue`` (the configured one by default), writing to ``ledger`` (by default the
    process's ledger at ``settings.ledger_url``); they stop on exit.

    Yields the workflows' worker, or the first system's when the workflows' queue is not
    polled.
    """
    if ledger is None:
        ledger = get_ledger(settings.ledger_url)  # its tables and indexes made on first use
    else:
        ledger.create_all()
    connectors = build_connectors(settings)
    workers = build_workers(
        client,
        settings,
        build_steps(connectors, ledger, settings),
        task_queue=task_queue or settings.task_queue,
        queues=settings.polled_queues() if queues is None else queues,
        interceptors=interceptors,
    )
    # Every connector's requests, from here on, hold slots of their vendor's limits (the
    # connectors look the governor up at each call).
    previous = install_governor(CallGovernor(ledger, settings.vendor_call_limits()))
    try:
        async with AsyncExitStack() as stack:
            for worker in workers:
                await stack.enter_async_context(worker)
            yield workers[0]
    finally:
        await connectors.aclose()
        install_governor(previous)


async def run_worker(settings: Settings | None = None, *, queues: list[str] | None = None) -> None:
    """Connect to Temporal and run the worker until cancelled (Ctrl-C or SIGTERM).

    ``queues`` (as ``--queues`` names them) replaces ``C2C_WORKER_QUEUES``.
    """
    settings = settings or get_settings()
    if queues:
        settings = settings.model_copy(update={"worker_queues": queues})
    instrument_worker(settings)
    get_ledger(settings.ledger_url)  # first: a ledger on an older schema refuses to start
    client = await connect(settings)
    async with contract_worker(client, settings):
        log.info(
            "worker running",
            task_queue=settings.task_queue,
            queues=sorted(settings.polled_queues()),
            rate_limits=settings.rate_limits,
            call_limits={
                vendor: limit.model_dump(exclude_none=True)
                for vendor, limit in settings.vendor_call_limits().items()
            },
            temporal=settings.temporal_address,
            namespace=settings.temporal_namespace,
            event_loop=running_loop(),
        )
        await asyncio.Event().wait()


def main() -> None:
    """``python worker.py``: exactly ``c2c worker``, with its signal handling and errors."""
    from starter.cli.main import main as c2c

    c2c(["worker"])


if __name__ == "__main__":
    main()
