"""The c2c worker: runs the ``ContractToCash`` workflow and its activities.

``python worker.py`` is the same as ``c2c worker``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from temporalio.client import Client
from temporalio.worker import Worker

from activities.log_context import ActivityLogContext
from activities.registry import build_activities
from c2c.logs import get_logger
from c2c.settings import Settings, get_settings
from c2c.telemetry import instrument_worker
from c2c.temporal import connect
from connectors.registry import build_connectors
from ledger import get_ledger
from workflows.contract_to_cash import ContractToCash

log = get_logger("c2c.worker")


@asynccontextmanager
async def contract_worker(
    client: Client, settings: Settings, *, task_queue: str | None = None
) -> AsyncIterator[Worker]:
    """A running worker for ``task_queue`` (the configured one by default); stops on exit."""
    ledger = get_ledger(settings.ledger_url)
    ledger.create_all()
    connectors = build_connectors(settings)
    worker = Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=[ContractToCash],
        activities=build_activities(connectors, ledger, settings),
        interceptors=[ActivityLogContext()],
    )
    try:
        async with worker:
            yield worker
    finally:
        await connectors.aclose()


async def run_worker(settings: Settings | None = None) -> None:
    """Connect to Temporal and run the worker until cancelled (Ctrl-C or SIGTERM)."""
    settings = settings or get_settings()
    instrument_worker(settings)
    client = await connect(settings)
    async with contract_worker(client, settings):
        log.info(
            "worker running",
            task_queue=settings.task_queue,
            temporal=settings.temporal_address,
            namespace=settings.temporal_namespace,
        )
        await asyncio.Event().wait()


def main() -> None:
    """``python worker.py``: exactly ``c2c worker``, with its signal handling and errors."""
    from starter.cli import main as c2c

    c2c(["worker"])


if __name__ == "__main__":
    main()
