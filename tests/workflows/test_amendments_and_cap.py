"""Time and materials in EUR and JPY on the real dev server: an effective-dated rate change,
expenses passed through with a markup, the not-to-exceed cap holding work back until an
amendment raises it, and invoices reported in the legal entity's functional currency."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import httpx
import pytest
from temporalio.client import Client

from c2c.settings import Settings
from domain.models import Amendment, ClosePeriod, CreditInvoice, ResolveException
from starter.api.contracts import close_period_for, resolve_exception
from starter.api.updates import amend
from tests.workflows.billing_helpers import erp_balances, replay, start_active, wait_invoices
from tests.workflows.helpers import add_time, items, wait_for, wait_stage

pytestmark = pytest.mark.usefixtures("worker")

INITECH = {"crm_account_id": "INITECH-DE", "name": "Initech GmbH", "country": "DE"}


async def test_rate_change_expenses_and_the_cap(
    temporal_client: Client, settings: Settings, sandbox: httpx.AsyncClient
) -> None:
    cid, status = await start_active(
        temporal_client,
        settings,
        customer=INITECH,
        legal_entity="DE01",
        currency="EUR",
        start_date="2026-10-01",
        end_date="2026-12-31",
        not_to_exceed="5000.00",
        expenses_billable=True,
        expense_markup_percent="10",
    )
    psa = status.refs["psa_project_id"]
    rate_change = Amendment(
        amendment_id="A-rate",
        effective_date=date(2026, 10, 16),
        rate_card=[{"role": "Senior Consultant", "hourly_rate": "250.00"}],
        reason="rate review",
    )
    assert (await amend(temporal_client, cid, rate_change)).status == "applied"
    await add_time(sandbox, psa, "Senior Consultant", "2026-10-05", "10")  # at 200.00
    await add_time(sandbox, psa, "Senior Consultant", "2026-10-20", "8")  # at 250.00
    expense = await sandbox.post(
        f"/psa/v1/projects/{psa}/expenses",
        json={
            "consultant_id": "u-1",
            "incurred_on": "2026-10-10",
            "amount": "100.00",
            "currency": "EUR",
            "category": "travel",
            "billable": True,
            "approved": True,
        },
    )
    assert expense.status_code == 201, expense.text
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-10"))
    status = await wait_invoices(temporal_client, cid, 1)
    october = status.invoices[0]
    # 2000.00 + 2000.00 + 110.00 travel with 10 % markup; German VAT 19 %.
    assert (october.subtotal, october.tax) == (Decimal("4110.00"), Decimal("780.90"))
    assert october.functional_currency == "EUR" and october.functional_total == october.total

    late = Amendment(
        amendment_id="A-late",
        effective_date=date(2026, 10, 25),
        rate_card=[{"role": "Senior Consultant", "hourly_rate": "300.00"}],
        reason="backdated",
    )
    refused = await amend(temporal_client, cid, late)
    assert refused.status == "rejected" and "2026-10" in (refused.reason or "")

    # November's work would pass the cap: 890.00 is billed, 1610.00 held back.
    await add_time(sandbox, psa, "Senior Consultant", "2026-11-03", "10")
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-11"))
    status = await wait_stage(temporal_client, cid, "on_hold")
    assert status.invoices[-1].subtotal == Decimal("890.00")
    assert status.held_back == Decimal("1610.00")
    (held,) = status.open_exceptions
    assert (held.code, held.queue) == ("not_to_exceed_reached", "delivery")

    # The fix is an amendment, applied while the contract is on hold; then retry bills it.
    raised = Amendment(
        amendment_id="A-cap",
        effective_date=date(2026, 12, 1),
        not_to_exceed="7000.00",
        reason="change order 12",
    )
    assert (await amend(temporal_client, cid, raised)).status == "applied"
    await resolve_exception(
        temporal_client,
        cid,
        ResolveException(exception_id=held.exception_id, action="retry", operator="pm@c2c"),
    )
    status = await wait_invoices(temporal_client, cid, 3)
    assert status.invoices[-1].subtotal == Decimal("1610.00")
    assert status.held_back == Decimal(0)
    assert sum(i.subtotal for i in status.invoices) == Decimal("6610.00")
    erp = await items(sandbox, "/erp/v1/invoices", contract_id=cid)
    assert len(erp) == 3
    balances = await erp_balances(sandbox, status.refs["erp_contract_id"])
    assert balances["recognised_to_date"] == Decimal("6610.00")

    # A correction is a credit note; the invoice itself is never edited.
    await _credit(temporal_client, cid, october.invoice_id)
    status = await wait_for(temporal_client, cid, lambda s: bool(s.credit_notes), what="credit")
    assert status.credit_notes[0].total == Decimal("119.00")
    original = (await sandbox.get(f"/erp/v1/invoices/{october.invoice_id}")).json()
    assert Decimal(original["total"]) == october.total
    # Time and materials revenue follows the invoice, so the credit reverses 100.00 of it.
    balances = await erp_balances(sandbox, status.refs["erp_contract_id"])
    assert balances["recognised_to_date"] == balances["billed_to_date"] == Decimal("6510.00")
    assert status.revenue is not None
    assert status.revenue.recognised_to_date == Decimal("6510.00")
    assert status.revenue.contract_asset == Decimal(0)
    assert status.invoices[0].status == "issued"  # partly credited, nothing paid
    await replay(temporal_client, cid)


async def _credit(client: Client, cid: str, invoice_id: str) -> None:
    from starter.api.contracts import contract_handle

    await contract_handle(client, cid).signal(
        "credit_invoice",
        CreditInvoice(invoice_id=invoice_id, amount=Decimal("100.00"), reason="travel overcharged"),
    )


async def test_jpy_invoice_reported_in_the_entity_currency(
    temporal_client: Client, settings: Settings, sandbox: httpx.AsyncClient
) -> None:
    cid, status = await start_active(
        temporal_client,
        settings,
        customer={"crm_account_id": "UMBRELLA-JP", "name": "Umbrella KK", "country": "JP"},
        currency="JPY",
        rate_card=[{"role": "Senior Consultant", "hourly_rate": "20000"}],
        not_to_exceed=None,
    )
    await add_time(sandbox, status.refs["psa_project_id"], "Senior Consultant", "2026-10-07", "7.5")
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-10"))
    status = await wait_invoices(temporal_client, cid, 1)
    invoice = status.invoices[0]
    # 7.5 h x 20000 = 150000 yen, consumption tax 10 %: no minor unit anywhere.
    assert (invoice.subtotal, invoice.tax, invoice.total) == (
        Decimal("150000"),
        Decimal("15000"),
        Decimal("165000"),
    )
    assert invoice.functional_currency == "USD"
    assert invoice.exchange_rate is not None and invoice.functional_total is not None
    rate = (
        await sandbox.get(
            "/erp/v1/exchange-rates",
            params={"from": "JPY", "to": "USD", "date": invoice.invoice_date.isoformat()},
        )
    ).json()["rate"]
    assert invoice.exchange_rate == Decimal(rate)
    cents = Decimal("0.01")
    expected = (Decimal(150000) * Decimal(rate)).quantize(cents) + (
        Decimal(15000) * Decimal(rate)
    ).quantize(cents)
    assert invoice.functional_total == expected
