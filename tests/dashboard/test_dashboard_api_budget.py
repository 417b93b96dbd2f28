"""The dashboard shows Salesforce's daily API budget as the worker's metrics report it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import start_http_server

from c2c.ports import free_port
from c2c.settings import Settings
from c2c.telemetry import record_api_budget
from starter.dashboard.api_budget import parse_budget
from tests.support import serve


@pytest.fixture
def metrics_address() -> Iterator[str]:
    """A Prometheus endpoint serving this process's registry, as the worker's port does."""
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1")
    yield f"127.0.0.1:{port}"
    server.shutdown()
    thread.join(timeout=5)


async def test_the_budget_is_on_the_page(settings: Settings, metrics_address: str) -> None:
    record_api_budget(vendor="salesforce", remaining=1234, maximum=5000)
    sf = settings.model_copy(
        update={"crm": "salesforce", "worker_metrics_address": metrics_address}
    )
    with serve(sf) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            page = await client.get("/")
    assert page.status_code == 200, page.text
    assert "Salesforce API budget today" in page.text
    assert "1234 of 5000 requests left" in page.text


async def test_no_budget_line_for_the_sandbox_crm(dashboard_url: str) -> None:
    async with httpx.AsyncClient(base_url=dashboard_url, timeout=30) as client:
        page = await client.get("/")
    assert "API budget" not in page.text


def test_the_lowest_remaining_is_the_one_shown() -> None:
    text = (
        'c2c_vendor_api_remaining{vendor="salesforce",activity_type="a"} 900\n'
        'c2c_vendor_api_remaining{vendor="salesforce",activity_type="b"} 40\n'
        'c2c_vendor_api_max{vendor="salesforce"} 1000\n'
    )
    budget = parse_budget(text, "salesforce", reserve=50)
    assert (budget.remaining, budget.maximum, budget.low) == (40, 1000, True)
    assert parse_budget("", "salesforce", reserve=50).error
