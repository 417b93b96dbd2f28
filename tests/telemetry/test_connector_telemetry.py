"""Connector calls outside an activity (the API's own ERP look-ups) are counted in the process's
Prometheus registry by system, route template and outcome, against the sandbox's faults."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
import structlog
from prometheus_client import REGISTRY

from c2c.telemetry import CONNECTOR_CALLS, CONNECTOR_LATENCY
from connectors.erp import HttpErp
from connectors.http import route_template
from domain.errors import BusinessError, TransientError

LEGAL_ENTITY = "GET /legal-entities/{id}"


def calls(operation: str, outcome: str) -> float:
    labels = {"system": "erp", "operation": operation, "outcome": outcome}
    return REGISTRY.get_sample_value(CONNECTOR_CALLS, labels) or 0.0


def timed(operation: str) -> float:
    labels = {"system": "erp", "operation": operation}
    return REGISTRY.get_sample_value(f"{CONNECTOR_LATENCY}_count", labels) or 0.0


class ContextSeen(httpx.AsyncBaseTransport):
    """The real transport, noting the structlog context each request is sent under."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.seen: list[dict[str, Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(structlog.contextvars.get_contextvars())
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_each_outcome_is_counted_and_timed(faults: Any, sandbox_url: str) -> None:
    erp = HttpErp(f"{sandbox_url}/erp/v1", timeout_s=0.5)
    before = {
        outcome: calls(LEGAL_ENTITY, outcome)
        for outcome in ("ok", "transient", "timeout", "business_error")
    }
    timed_before = timed(LEGAL_ENTITY)
    invalid_before = calls("POST /invoices", "business_error")
    try:
        assert await erp.get_legal_entity("US01") is not None
        await faults(system="erp", path_prefix="/legal-entities", status=503, times=1)
        with pytest.raises(TransientError):
            await erp.get_legal_entity("US01")
        await faults(system="erp", path_prefix="/legal-entities", latency_ms=1500, times=1)
        with pytest.raises(TransientError, match="timed out"):
            await erp.get_legal_entity("US01")
        assert await erp.get_legal_entity("NO-SUCH-ENTITY") is None  # a 404
        with pytest.raises(BusinessError):
            await erp.request("POST", "/invoices", json={}, idempotency_key=uuid.uuid4().hex)
    finally:
        await erp.aclose()

    after = {outcome: calls(LEGAL_ENTITY, outcome) - before[outcome] for outcome in before}
    assert after == {"ok": 1, "transient": 1, "timeout": 1, "business_error": 1}
    assert timed(LEGAL_ENTITY) - timed_before == 4
    assert calls("POST /invoices", "business_error") - invalid_before == 1


async def test_every_line_logged_during_a_call_names_the_system(sandbox_url: str) -> None:
    transport = ContextSeen()
    erp = HttpErp(f"{sandbox_url}/erp/v1", transport=transport)
    # What earlier tests in this task bound (a component, say) is not this call's business.
    structlog.contextvars.clear_contextvars()
    try:
        with structlog.contextvars.bound_contextvars(contract_id="C-9"):
            await erp.get_legal_entity("US01")
            assert "system" not in structlog.contextvars.get_contextvars()
    finally:
        await erp.aclose()
    assert transport.seen == [{"contract_id": "C-9", "system": "erp"}]


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/invoices", "/invoices"),
        ("/invoices/INV-00042/issue", "/invoices/{id}/issue"),
        (
            "/projects/p-1/billing-batches/contract-T-1.2026-10/invoiced",
            "/projects/{id}/billing-batches/{id}/invoiced",
        ),
        ("/accounts/ACME-US/hierarchy", "/accounts/{id}/hierarchy"),
        ("/addresses/validate", "/addresses/validate"),
        ("/legal-entities/acme", "/legal-entities/{id}"),
        ("/", "/"),
    ],
)
def test_routes_are_labelled_by_template_never_by_id(path: str, template: str) -> None:
    assert route_template(path) == template
