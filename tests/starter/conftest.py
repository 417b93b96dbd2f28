"""The API served over real HTTP on a loopback port, against the session's Temporal dev server.

No worker polls the task queue these tests use: they check what the API starts, signals or
refuses, not what the workflow then does.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr

from c2c.settings import Settings
from tests.starter.helpers import OPERATOR_TOKEN, VIEWER_TOKEN
from tests.support import serve


@pytest.fixture(scope="session")
def api_settings(settings: Settings, state_dir: Path) -> Settings:
    return settings.model_copy(
        update={
            # A queue no worker polls: started workflows stay as the API left them.
            "task_queue": f"c2c-api-test-{uuid.uuid4().hex[:8]}",
            "database_url": f"sqlite:///{state_dir / 'api-ledger.db'}",
        }
    )


@pytest.fixture(scope="session")
def api_url(api_settings: Settings) -> Iterator[str]:
    with serve(api_settings) as url:
        yield url


@pytest.fixture(scope="session")
def secured_api_url(api_settings: Settings) -> Iterator[str]:
    tokens = f"{VIEWER_TOKEN}:viewer,{OPERATOR_TOKEN}:operator"
    with serve(api_settings.model_copy(update={"api_tokens": SecretStr(tokens)})) as url:
        yield url


@pytest_asyncio.fixture
async def api(api_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        yield client
