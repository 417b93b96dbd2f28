"""The API (and so the dashboard) served over real HTTP on a loopback port, against the
session's Temporal dev server, worker, sandbox and ledger: what a page shows is what the
workflows did."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr

from c2c.settings import Settings
from tests.dashboard.helpers import OPERATOR_TOKEN, VIEWER_TOKEN
from tests.support import serve


@pytest.fixture(scope="session")
def dashboard_url(settings: Settings) -> Iterator[str]:
    """The dashboard with no tokens configured: open, like a developer's machine."""
    with serve(settings) as url:
        yield url


@pytest.fixture(scope="session")
def secured_dashboard_url(settings: Settings) -> Iterator[str]:
    """The dashboard with a viewer's and an operator's token configured, named."""
    tokens = SecretStr(f"{VIEWER_TOKEN}:viewer@vera,{OPERATOR_TOKEN}:operator@olga")
    with serve(settings.model_copy(update={"api_tokens": tokens})) as url:
        yield url


@pytest_asyncio.fixture
async def browser_like(dashboard_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the open dashboard that keeps cookies and does not follow redirects."""
    async with httpx.AsyncClient(base_url=dashboard_url, timeout=30) as client:
        yield client


@pytest_asyncio.fixture
async def secured(secured_dashboard_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the secured dashboard that keeps cookies and does not follow redirects."""
    async with httpx.AsyncClient(base_url=secured_dashboard_url, timeout=30) as client:
        yield client
