"""The API served over real HTTP on a loopback port, against the session's Temporal dev server.

No worker polls the task queue these tests use: they check what the API starts, signals or
refuses, not what the workflow then does.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
import uvicorn
from pydantic import SecretStr
from temporalio.client import Client

from c2c.settings import Settings
from starter.api import create_app
from tests.support import free_port

WEBHOOK_SECRET = "test-webhook-secret"
VIEWER_TOKEN = "viewer-token-123"
OPERATOR_TOKEN = "operator-token-456"


@contextmanager
def serve(settings: Settings) -> Iterator[str]:
    """Serve the API for ``settings`` in a background thread; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"api-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the API did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def api_settings(temporal_client: Client, state_dir: Path, sandbox_url: str) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        temporal_address=temporal_client.service_client.config.target_host,
        temporal_namespace=temporal_client.namespace,
        # A queue no worker polls: started workflows stay as the API left them.
        task_queue=f"c2c-api-test-{uuid.uuid4().hex[:8]}",
        state_dir=state_dir,
        database_url=f"sqlite:///{state_dir / 'api-ledger.db'}",
        sandbox_url=sandbox_url,
        webhook_secret=WEBHOOK_SECRET,
        api_tokens=None,
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
