"""A retainer on the real dev server: the fee billed in advance and prorated by days, overage
beyond the included hours at the rate card, revenue ratably, and a termination that credits the
unused days by credit note, never by editing the invoice."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import httpx
import pytest
from temporalio.client import Client

from c2c.settings import Settings
from domain.models import Amendment, ClosePeriod, ResolveException, TerminateContract
from starter.api.contracts import close_period_for, resolve_exception, terminate_contract
from starter.api.updates import amend
from tests.workflows.billing_helpers import erp_balances, pay, replay, start_active, wait_invoices
from tests.workflows.helpers import add_time, items, wait_for, wait_stage

pytestmark = pytest.mark.usefixtures("worker")


async def test_retainer_in_advance_with_overage_and_a_termination_credit(
    temporal_client: Client, settings: Settings, sandbox: httpx.AsyncClient
) -> None:
    cid, status = await start_active(
        temporal_client,
        settings,
        customer={"crm_account_id": "GLOBEX-UK", "name": "Globex Ltd", "country": "GB"},
        legal_entity="UK01",
        currency="GBP",
        billing_model="retainer",
        start_date="2026-09-13",
        end_date="2026-11-30",
        retainer_monthly_amount="10000.00",
        retainer_included_hours="20",
        rate_card=[{"role": "Senior Consultant", "hourly_rate": "150.00"}],
        not_to_exceed=None,
    )
    erp_contract = status.refs["erp_contract_id"]
    # September's fee, in advance at activation: 18 of 30 days; UK VAT 20 %.
    status = await wait_invoices(temporal_client, cid, 1)
    advance = status.invoices[0]
    assert (advance.subtotal, advance.total) == (Decimal("6000.00"), Decimal("7200.00"))
    assert advance.reference == "2026-09:advance"

    psa = status.refs["psa_project_id"]
    await add_time(sandbox, psa, "Senior Consultant", "2026-09-15", "10")
    await add_time(sandbox, psa, "Senior Consultant", "2026-09-20", "5")
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-09"))
    status = await wait_invoices(temporal_client, cid, 2)
    september = status.invoices[1]
    # 15 h worked, 12 h included (20 x 18/30): 3 h x 150.00 overage, plus October's fee.
    assert september.subtotal == Decimal("10450.00")
    assert september.total == Decimal("12540.00")
    assert status.revenue is not None and status.revenue.method == "ratable"
    assert status.revenue.recognised_to_date == Decimal("6450.00")
    assert status.revenue.contract_liability == Decimal("10000.00")

    await terminate_contract(
        temporal_client,
        cid,
        TerminateContract(effective_date=date(2026, 10, 20), reason="client reorganisation"),
    )
    status = await wait_for(
        temporal_client, cid, lambda s: bool(s.credit_notes), what="a credit note"
    )
    note = status.credit_notes[0]
    # October's fee was billed whole; 20 of 31 days are owed: 6451.61, so 3548.39 is credited.
    assert note.invoice_id == september.invoice_id
    assert (note.subtotal, note.tax, note.total) == (
        Decimal("3548.39"),
        Decimal("709.68"),
        Decimal("4258.07"),
    )
    erp_notes = await items(sandbox, "/erp/v1/credit-notes", contract_id=cid)
    assert len(erp_notes) == 1
    balances = await erp_balances(sandbox, erp_contract)
    assert balances["billed_to_date"] == Decimal("12901.61")
    assert balances["recognised_to_date"] == Decimal("12901.61")

    owed = Decimal("7200.00") + Decimal("12540.00") - Decimal("4258.07")
    assert status.balance_due == owed
    # One payment naming no invoice settles the open invoices oldest first.
    await pay(temporal_client, cid, f"pay-{cid}", owed)
    status = await wait_for(temporal_client, cid, lambda s: s.stage == "closed", what="closed")
    assert [i.status for i in status.invoices] == ["paid", "paid"]
    assert status.unapplied_cash == Decimal(0)
    await replay(temporal_client, cid)


async def test_a_retainer_fee_held_back_by_the_cap_and_released_is_recognised_in_its_month(
    temporal_client: Client, settings: Settings, sandbox: httpx.AsyncClient
) -> None:
    cid, status = await start_active(
        temporal_client,
        settings,
        billing_model="retainer",
        start_date="2026-08-01",
        end_date="2026-12-31",
        retainer_monthly_amount="5000.00",
        not_to_exceed="15000.00",
    )
    erp_contract = status.refs["erp_contract_id"]
    await wait_invoices(temporal_client, cid, 1)  # August's fee, in advance
    for n, month in enumerate(("2026-08", "2026-09"), start=2):
        await close_period_for(temporal_client, cid, ClosePeriod(period=month))
        await wait_invoices(temporal_client, cid, n)  # September's, then October's fee
    # Billed 15,000.00 (August to October): November's fee, due at October's close, would
    # pass the cap and is held back whole.
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-10"))
    status = await wait_stage(temporal_client, cid, "on_hold")
    assert status.held_back == Decimal("5000.00") and len(status.invoices) == 3
    (held,) = status.open_exceptions
    raised = Amendment(
        amendment_id="A-cap",
        effective_date=date(2026, 11, 1),
        not_to_exceed="30000.00",
        reason="change order",
    )
    assert (await amend(temporal_client, cid, raised)).status == "applied"
    await resolve_exception(
        temporal_client,
        cid,
        ResolveException(exception_id=held.exception_id, action="retry", operator="pm@c2c"),
    )
    status = await wait_invoices(temporal_client, cid, 4)
    status = await wait_stage(temporal_client, cid, "active")
    release = status.invoices[-1]
    assert release.subtotal == Decimal("5000.00") and status.held_back == Decimal(0)
    # After October: August, September and October recognised (3 x 5,000.00); November's fee
    # is billed and deferred, not recognised at its release.
    assert status.revenue is not None and status.revenue.method == "ratable"
    assert status.revenue.recognised_to_date == Decimal("15000.00")
    assert status.revenue.billed_to_date == Decimal("20000.00")
    assert status.revenue.contract_liability == Decimal("5000.00")
    erp_release = (await sandbox.get(f"/erp/v1/invoices/{release.invoice_id}")).json()
    assert [line["kind"] for line in erp_release["lines"]] == ["retainer"]

    # November's close bills December's fee and recognises November's fee, once.
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-11"))
    status = await wait_invoices(temporal_client, cid, 5)
    assert status.invoices[-1].subtotal == Decimal("5000.00")
    assert status.revenue is not None and status.revenue.method == "ratable"
    assert status.revenue.recognised_to_date == Decimal("20000.00")
    assert status.revenue.billed_to_date == Decimal("25000.00")
    assert status.revenue.contract_liability == Decimal("5000.00")
    balances = await erp_balances(sandbox, erp_contract)
    assert balances["recognised_to_date"] == Decimal("20000.00")
    assert balances["contract_liability"] == Decimal("5000.00")
    entries = await items(sandbox, f"/erp/v1/contracts/{erp_contract}/revenue")
    recognised = sorted((e["recognised_on"], Decimal(e["amount"])) for e in entries)
    assert recognised == [
        (f"2026-{month}-{day}", Decimal("5000.00"))
        for month, day in (("08", 31), ("09", 30), ("10", 31), ("11", 30))
    ]
    await replay(temporal_client, cid)
