"""Tokens, form fields and records shared by the dashboard tests."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from ledger import Ledger
from ledger.models import ExceptionIn

VIEWER_TOKEN = "dash-viewer-token-7f3a"
OPERATOR_TOKEN = "dash-operator-token-91c2"

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    found = _CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


async def page_token(client: httpx.AsyncClient, path: str = "/") -> str:
    """Load a page (which sets the browser's CSRF cookie) and return its forms' token."""
    response = await client.get(path)
    assert response.status_code == 200, response.text
    return csrf_of(response.text)


async def log_in(client: httpx.AsyncClient, token: str, name: str = "") -> httpx.Response:
    """Log in through the login form, as a browser does."""
    csrf = await page_token(client, "/login")
    return await client.post(
        "/login", data={"csrf_token": csrf, "token": token, "name": name, "next": "/"}
    )


def open_exception(ledger: Ledger, *, message: str, contract_id: str | None = None) -> str:
    """Put an exception straight into the ledger's queue (for contracts no workflow runs);
    returns its id."""
    exception_id = f"EXC-{uuid.uuid4().hex[:10]}"
    contract_id = contract_id or f"T-{uuid.uuid4().hex[:12]}"
    ledger.open_exception(
        ExceptionIn(
            exception_id=exception_id,
            contract_id=contract_id,
            workflow_id=f"contract-{contract_id}",
            stage="validating",
            system="erp",
            code="unknown_legal_entity",
            message=message,
            queue="legal",
            opened_at=datetime.now(UTC),
        )
    )
    return exception_id


class HandMadeReport(BaseModel):
    """The KPI report's shape (``ledger.kpis.KpiReport``), filled by hand."""

    data: dict[str, Any]

    def model_dump(self, **_: Any) -> dict[str, Any]:  # type: ignore[override]
        return self.data


def kpi_report_dict() -> dict[str, Any]:
    """A KPI report as ``ledger.kpis.kpi_report(...).model_dump(mode="json")`` gives it."""
    dist = {"count": 4, "median_hours": 26.5, "p90_hours": 70.0}
    return {
        "legal_entity": "US01",
        "period": None,
        "generated_at": "2026-11-30T12:00:00Z",
        "project_setup": dist,
        "touchless_provisioning": {"contracts": 8, "without_manual_step": 6, "share": 0.75},
        "billing_cycle": {"count": 3, "median_hours": 0.5, "p90_hours": 2.0},
        "unbilled_time": {
            "hours": "12.5",
            "by_contract": [],
            "by_legal_entity": [
                {"legal_entity": "US01", "currency": "USD", "hours": "12.5", "value": "2500.00"}
            ],
        },
        "dso_days": 31.25,
        "invoice_correction": {"invoices": 10, "credit_notes": 1, "rate": 0.1},
        "amendment_propagation": {"count": 0, "median_hours": None, "p90_hours": None},
        "open_exceptions": [
            {
                "queue": "legal<b>",
                "count": 3,
                "oldest_age_hours": 80.0,
                "by_age": {"<4h": 1, "4-24h": 0, "1-3d": 1, ">3d": 1},
            }
        ],
        "exception_resolution": dist,
        "sla_breaches": {"count": 2, "by_queue": {"legal": 2}},
        "trend": [
            {
                "period": "2026-09",
                "contracts_active": 2,
                "setup_median_hours": 30.0,
                "invoices_issued": 0,
                "invoiced_value_by_currency": {},
                "dso_days": None,
            },
            {
                "period": "2026-10",
                "contracts_active": 5,
                "setup_median_hours": 20.0,
                "invoices_issued": 4,
                "invoiced_value_by_currency": {"USD": "18250.40", "EUR": "900.00"},
                "dso_days": 29.5,
            },
        ],
    }


def install_kpi_report(
    monkeypatch: pytest.MonkeyPatch, calls: list[dict[str, Any]] | None = None
) -> None:
    """Let the dashboard draw the hand-made report (exact figures to look for) instead of
    the ledger's: ``starter.api.kpis.build_report`` answers it for any filters."""

    async def build_report(settings: Any, ledger: Ledger, **kwargs: Any) -> HandMadeReport:
        if calls is not None:
            calls.append({k: v for k, v in kwargs.items() if k != "psa"})
        return HandMadeReport(data=kpi_report_dict())

    monkeypatch.setattr("starter.dashboard.views.build_report", build_report)
