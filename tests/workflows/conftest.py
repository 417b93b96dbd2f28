"""Fixtures for workflow tests: settings pointing at the sandbox, a ledger, and a worker."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.worker import Worker

from c2c.settings import Settings
from ledger import Ledger, get_ledger
from worker import contract_worker


@pytest.fixture(scope="session")
def settings(state_dir: Path, sandbox_url: str) -> Settings:
    return Settings(
        sandbox_url=sandbox_url,
        database_url=f"sqlite:///{state_dir / 'ledger.db'}",
        state_dir=state_dir,
        task_queue=f"c2c-test-{uuid.uuid4().hex[:8]}",
    )


@pytest.fixture(scope="session")
def ledger(settings: Settings) -> Ledger:
    store = get_ledger(settings.ledger_url)
    store.create_all()
    return store


@pytest_asyncio.fixture(scope="session")
async def worker(temporal_client: Client, settings: Settings) -> AsyncIterator[Worker]:
    async with contract_worker(temporal_client, settings) as running:
        yield running
