"""The connectors of the connector tests, each a client of the session's sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from connectors.crm import HttpCrm
from connectors.erp import HttpErp
from connectors.psa import HttpPsa
from connectors.tax import HttpTax


@pytest_asyncio.fixture
async def erp(sandbox_url: str) -> AsyncIterator[HttpErp]:
    client = HttpErp(f"{sandbox_url}/erp/v1", timeout_s=5)
    yield client
    await client.aclose()


@pytest_asyncio.fixture
async def psa(sandbox_url: str) -> AsyncIterator[HttpPsa]:
    client = HttpPsa(f"{sandbox_url}/psa/v1", timeout_s=5)
    yield client
    await client.aclose()


@pytest_asyncio.fixture
async def crm(sandbox_url: str) -> AsyncIterator[HttpCrm]:
    client = HttpCrm(f"{sandbox_url}/crm/v1", timeout_s=5)
    yield client
    await client.aclose()


@pytest_asyncio.fixture
async def tax(sandbox_url: str) -> AsyncIterator[HttpTax]:
    client = HttpTax(f"{sandbox_url}/tax/v1", timeout_s=5)
    yield client
    await client.aclose()
