"""The dashboard's AR aging view: each legal entity's open balances by days past due, per
invoice currency, from the KPI report; a ledger with nothing open says so."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ledger import Ledger
from tests.dashboard.helpers import HandMadeReport, kpi_report_dict

BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")


def install_report(monkeypatch: pytest.MonkeyPatch, report: dict[str, Any]) -> None:
    async def build_report(settings: Any, ledger: Ledger, **kwargs: Any) -> HandMadeReport:
        return HandMadeReport(data=report)

    monkeypatch.setattr("starter.dashboard.views.build_report", build_report)


async def test_the_aging_view_shows_each_bucket(
    browser_like: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    amounts = ["1200.00", "0", "350.50", "0", "18250.40"]
    aging = {
        "legal_entity": "UK01",
        "as_of": "2026-11-30",
        "functional_currency": "GBP",
        "buckets": dict.fromkeys(BUCKETS, "0"),
        "by_currency": [{"currency": "USD", "buckets": dict(zip(BUCKETS, amounts, strict=True))}],
        "invoices": [],
    }
    install_report(monkeypatch, {**kpi_report_dict(), "ar_aging": [aging]})
    response = await browser_like.get("/")
    assert response.status_code == 200
    html = response.text
    table = html[html.index('id="aging"') : html.index("</table>", html.index('id="aging"'))]
    for bucket in BUCKETS:
        assert f"<th>{bucket}</th>" in table
    assert "<td>UK01</td><td>USD</td>" in table
    for shown in ("1,200.00", "350.50", "18,250.40"):
        assert f"<td>{shown}</td>" in table, shown


async def test_nothing_open_says_so(
    browser_like: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_report(monkeypatch, {**kpi_report_dict(), "ar_aging": []})
    response = await browser_like.get("/")
    assert response.status_code == 200
    assert 'id="aging-empty"' in response.text and 'id="aging"' not in response.text
