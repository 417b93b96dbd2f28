"""``GET /api/kpis`` over real HTTP: filters, unbilled time from the ledger, auth, 422s."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from c2c.settings import Settings
from ledger import UnbilledMonthIn, get_ledger
from starter.api.kpis import build_report
from tests.ledger.test_kpis import contract, invoice
from tests.starter.api.test_api import assert_error
from tests.starter.helpers import OPERATOR_TOKEN, VIEWER_TOKEN

APPROVED = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def entity(api_settings: Settings) -> str:
    """A legal entity of this test's own: two contracts, one with unbilled time, as the billing
    activity records it after the October invoice (3 h of a senior consultant at 200.00 in
    October, 2 h of an analyst at 120.00 in November)."""
    code = f"K{uuid.uuid4().hex[:6].upper()}"
    ledger = get_ledger(api_settings.ledger_url)
    first, second = f"{code}-A", f"{code}-B"
    contract(ledger, first, setup_hours=2, approved_at=APPROVED, legal_entity=code)
    contract(ledger, second, setup_hours=6, approved_at=APPROVED, legal_entity=code)
    invoice(
        ledger, first, "2026-10", "1000.00", date(2026, 11, 2), cycle_hours=2, legal_entity=code
    )
    months = [
        UnbilledMonthIn(
            work_month="2026-10", currency="USD", hours=Decimal(3), value=Decimal("600.00")
        ),
        UnbilledMonthIn(
            work_month="2026-11", currency="USD", hours=Decimal(2), value=Decimal("240.00")
        ),
    ]
    ledger.record_unbilled_time(first, months, datetime(2026, 11, 2, tzinfo=UTC))
    return code


async def test_the_report_of_one_legal_entity(api: httpx.AsyncClient, entity: str) -> None:
    response = await api.get("/api/kpis", params={"legal_entity": entity})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert (body["legal_entity"], body["period"]) == (entity, None)
    assert body["project_setup"] == {"count": 2, "median_hours": 4.0, "p90_hours": 5.6}
    assert body["billing_cycle"] == {"count": 1, "median_hours": 2.0, "p90_hours": 2.0}
    assert body["invoice_correction"] == {"invoices": 1, "credit_notes": 0, "rate": 0.0}
    # 3 h at 200.00 and 2 h at 120.00, money and hours as decimal strings.
    unbilled = body["unbilled_time"]
    assert unbilled["hours"] == "5"
    assert unbilled["by_contract"] == [
        {
            "contract_id": f"{entity}-A",
            "legal_entity": entity,
            "currency": "USD",
            "hours": "5",
            "value": "840.00",
            "unpriced_hours": "0",
        }
    ]
    assert unbilled["by_legal_entity"] == [
        {"legal_entity": entity, "currency": "USD", "hours": "5", "value": "840.00"}
    ]
    assert [p["period"] for p in body["trend"]] == ["2026-10", "2026-11"]


async def test_a_period_counts_only_its_month(api: httpx.AsyncClient, entity: str) -> None:
    response = await api.get("/api/kpis", params={"legal_entity": entity, "period": "2026-10"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["period"] == "2026-10"
    assert body["project_setup"]["count"] == 2
    # The October invoice was issued in November.
    assert body["billing_cycle"]["count"] == 0
    assert body["invoice_correction"]["invoices"] == 0
    # Only work dated up to 31 October.
    assert body["unbilled_time"]["hours"] == "3"
    assert body["unbilled_time"]["by_contract"][0]["value"] == "600.00"


async def test_empty_filters_are_no_filters(api: httpx.AsyncClient, entity: str) -> None:
    response = await api.get("/api/kpis", params={"legal_entity": "", "period": ""})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["legal_entity"], body["period"]) == (None, None)
    assert body["project_setup"]["count"] >= 2


async def test_another_entity_sees_none_of_it(api: httpx.AsyncClient, entity: str) -> None:
    body = (await api.get("/api/kpis", params={"legal_entity": "ZZ99"})).json()
    assert body["project_setup"]["count"] == 0
    assert body["unbilled_time"]["by_contract"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"period": "2026-13"}, "period"),
        ({"period": "2026/10"}, "period"),
        ({"period": "0000-01"}, "period"),  # no year 0
        ({"legal_entity": "us01"}, "legal_entity"),
        ({"legal_entity": "US-01"}, "legal_entity"),
    ],
)
async def test_bad_filters_are_refused_naming_the_field(
    api: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    response = await api.get("/api/kpis", params=params)
    assert_error(response, 422, "validation_error", field)
    assert params[field] in response.json()["error"]["message"]


async def test_a_viewer_may_read_the_kpis(secured_api_url: str) -> None:
    async with httpx.AsyncClient(base_url=secured_api_url, timeout=30) as client:
        assert_error(await client.get("/api/kpis"), 401, "unauthorized")
        for token in (VIEWER_TOKEN, OPERATOR_TOKEN):
            headers = {"Authorization": f"Bearer {token}"}
            response = await client.get("/api/kpis", headers=headers)
            assert response.status_code == 200, response.text


async def test_the_report_asks_no_system(api_settings: Settings, entity: str) -> None:
    # Port 9 (discard) on loopback: nothing listens, so any call to a system would fail.
    down = api_settings.model_copy(
        update={"sandbox_url": "http://127.0.0.1:9", "connector_quick_retries": 0}
    )
    report = await build_report(down, get_ledger(down.ledger_url), legal_entity=entity)
    assert report.unbilled_time.unavailable is None
    assert report.unbilled_time.hours == Decimal(5)
    assert report.project_setup.count == 2
