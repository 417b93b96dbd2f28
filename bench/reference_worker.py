"""The reference's worker: c2c's real activities and one plain workflow on one task queue.

It registers every activity c2c's worker registers (``activities/registry.py``, built with the
same connectors, ledger and settings) and ``ReferenceOnboarding`` (``bench/reference.py``) on
the single task queue ``bench-reference``, with c2c's activity log context and with the
workflow modules shared between runs, as c2c's worker shares its own.

Run it as ``python -m bench.reference_worker`` (the goals benchmark's stack does), configured
like ``c2c worker`` (``TEMPORAL_ADDRESS``, ``C2C_SANDBOX_URL``, ``C2C_LEDGER_URL``...).
"""

from __future__ import annotations

import asyncio
import os
import sys

from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.log_context import ActivityLogContext
from activities.registry import build_steps
from bench.reference import REFERENCE_TASK_QUEUE, ReferenceContract, ReferenceOnboarding
from c2c.logs import configure_logging
from c2c.settings import Settings, get_settings
from c2c.temporal import connect
from connectors.registry import build_connectors
from ledger import get_ledger


async def run_reference_worker(settings: Settings) -> None:
    """Poll ``bench-reference`` until cancelled."""
    ledger = get_ledger(settings.ledger_url)
    client = await connect(settings)
    connectors = build_connectors(settings)
    restrictions = SandboxRestrictions.default.with_passthrough_modules("bench", "domain")
    try:
        async with Worker(
            client,
            task_queue=REFERENCE_TASK_QUEUE,
            workflows=[ReferenceOnboarding, ReferenceContract],
            workflow_runner=SandboxedWorkflowRunner(restrictions=restrictions),
            activities=list(build_steps(connectors, ledger, settings).values()),
            max_concurrent_activities=settings.worker_max_concurrent_activities,
            max_concurrent_workflow_tasks=settings.worker_max_concurrent_workflow_tasks,
            interceptors=[ActivityLogContext()],
        ):
            await asyncio.Event().wait()
    finally:
        await connectors.aclose()


def main() -> None:
    """``python -m bench.reference_worker``: run until SIGINT or SIGTERM."""
    from starter.cli.main import run_until_signalled

    # Logged as c2c's worker is (level and format from C2C_LOG_*), so neither pays for more.
    configure_logging("bench-reference")
    settings = get_settings()
    run_until_signalled(run_reference_worker(settings), loop=settings.event_loop)
    sys.stdout.flush()
    # Skip the interpreter's teardown, where the SDK's runtime can crash (sdk-python#300).
    os._exit(0)


if __name__ == "__main__":
    main()
