"""Fixed fee by milestones on the real dev server: milestones billed at the period close or at
once, revenue by milestones completed, and an amendment that adds a milestone reaching ERP and
PSA (and what an amendment may not do)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import httpx
import pytest
from temporalio.client import Client

from c2c.settings import Settings
from domain.models import Amendment, ClosePeriod, MilestoneCompleted
from ledger import Ledger
from starter.api.contracts import close_period_for, complete_milestone, contract_handle
from starter.api.updates import amend
from starter.ops.exception_queue import get_exception, resolve
from tests.workflows.billing_helpers import erp_balances, pay, replay, start_active, wait_invoices
from tests.workflows.helpers import items, wait_for

pytestmark = pytest.mark.usefixtures("worker")

MILESTONES = [
    {"milestone_id": "M1", "name": "Discovery", "amount": "4000.00"},
    {"milestone_id": "M2", "name": "Build", "amount": "6000.00"},
]


def fixed_fee(**changes: object) -> dict[str, object]:
    return {
        "billing_model": "fixed_fee",
        "milestones": MILESTONES,
        "not_to_exceed": None,
        "start_date": "2026-10-01",
        "end_date": "2026-11-15",
        **changes,
    }


async def test_fixed_fee_bills_milestones_recognises_revenue_and_takes_an_amendment(
    temporal_client: Client, settings: Settings, sandbox: httpx.AsyncClient, ledger: Ledger
) -> None:
    cid, status = await start_active(temporal_client, settings, **fixed_fee())
    erp_contract = status.refs["erp_contract_id"]
    psa = status.refs["psa_project_id"]

    await complete_milestone(
        temporal_client, cid, MilestoneCompleted(milestone_id="M1", completed_on=date(2026, 10, 20))
    )
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-10"))
    status = await wait_invoices(temporal_client, cid, 1)
    first = status.invoices[0]
    assert (first.subtotal, first.tax, first.total) == (
        Decimal("4000.00"),
        Decimal("290.00"),
        Decimal("4290.00"),
    )
    assert status.revenue is not None and status.revenue.method == "milestone_output"
    assert status.revenue.recognised_to_date == Decimal("4000.00")
    assert [m.status for m in status.milestones] == ["invoiced", "open"]

    # What an amendment may not do, each refused with its reason and nothing changed.
    refusals = {
        "inside an invoiced period": Amendment(
            amendment_id="A-early", effective_date=date(2026, 10, 15), reason="late change"
        ),
        "an invoiced milestone": Amendment(
            amendment_id="A-m1",
            effective_date=date(2026, 11, 1),
            add_milestones=[{"milestone_id": "M1", "name": "Again", "amount": "10.00"}],
            reason="redo",
        ),
        "a non-positive milestone": Amendment(
            amendment_id="A-zero",
            effective_date=date(2026, 11, 1),
            add_milestones=[{"milestone_id": "M9", "name": "Free", "amount": "0.00"}],
            reason="free work",
        ),
        "an end before the start": Amendment(
            amendment_id="A-end",
            effective_date=date(2026, 11, 1),
            end_date=date(2026, 9, 1),
            reason="undo",
        ),
    }
    for what, refused in refusals.items():
        result = await amend(temporal_client, cid, refused)
        assert result.status == "rejected", what
        assert result.reason, what

    added = Amendment(
        amendment_id="A-1",
        effective_date=date(2026, 11, 1),
        add_milestones=[{"milestone_id": "M3", "name": "Handover", "amount": "2000.00"}],
        reason="handover added by change order 7",
    )
    result = await amend(temporal_client, cid, added)
    assert result.status == "applied"
    assert result.propagated_to == ["erp", "psa", "ledger"]
    # The same amendment id again is answered the same, and applied once.
    again = await amend(temporal_client, cid, added)
    assert again.status == "applied" and again.at == result.at

    contract = (await sandbox.get(f"/erp/v1/contracts/{erp_contract}")).json()
    assert Decimal(contract["contract_value"]) == Decimal("12000.00")
    assert [m["milestone_id"] for m in contract["milestones"]] == ["M1", "M2", "M3"]
    psa_milestones = await items(sandbox, f"/psa/v1/projects/{psa}/milestones")
    assert sorted(m["milestone_id"] for m in psa_milestones) == ["M1", "M2", "M3"]

    for mid, day in (("M2", 5), ("M3", 10)):
        await complete_milestone(
            temporal_client,
            cid,
            MilestoneCompleted(milestone_id=mid, completed_on=date(2026, 11, day)),
        )
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-11"))
    status = await wait_invoices(temporal_client, cid, 2)
    second = status.invoices[1]
    assert second.subtotal == Decimal("8000.00")
    assert status.revenue is not None
    assert status.revenue.recognised_to_date == Decimal("12000.00")
    balances = await erp_balances(sandbox, erp_contract)
    assert balances["recognised_to_date"] == balances["billed_to_date"] == Decimal("12000.00")
    assert balances["contract_asset"] == balances["contract_liability"] == Decimal(0)

    # Paid in two payments, the second over by 100.00: kept as unapplied cash, reported to
    # finance before closing, then closed once finance has refunded it.
    await pay(temporal_client, cid, f"p1-{cid}", first.total, invoice_id=first.invoice_id)
    await pay(temporal_client, cid, f"p2-{cid}", second.total + 100, invoice_id=second.invoice_id)
    held = await wait_for(temporal_client, cid, lambda s: bool(s.open_exceptions), what="cash")
    [cash] = held.open_exceptions
    assert cash.code == "unapplied_cash_at_close" and "100.00 USD" in cash.message
    item = await get_exception(ledger, cash.exception_id)
    await resolve(temporal_client, item, "skip", operator="ar@example.com", note="refunded")
    status = await wait_for(temporal_client, cid, lambda s: s.stage == "closed", what="closed")
    assert status.unapplied_cash == Decimal("100.00")
    assert [i.status for i in status.invoices] == ["paid", "paid"]
    assert [a.amendment_id for a in status.amendments if a.status == "applied"] == ["A-1"]
    await replay(temporal_client, cid)


async def test_milestone_invoiced_at_once_when_the_contract_says_so(
    temporal_client: Client, settings: Settings, sandbox: httpx.AsyncClient
) -> None:
    cid, status = await start_active(
        temporal_client, settings, **fixed_fee(milestone_invoicing="on_completion")
    )
    await complete_milestone(
        temporal_client, cid, MilestoneCompleted(milestone_id="M2", completed_on=date(2026, 10, 9))
    )
    status = await wait_invoices(temporal_client, cid, 1)
    invoice = status.invoices[0]
    assert invoice.milestone_id == "M2" and invoice.subtotal == Decimal("6000.00")
    # The period close that follows does not bill the milestone again.
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-10"))
    status = await wait_for(
        temporal_client, cid, lambda s: "2026-10" in s.closed_periods, what="October closed"
    )
    assert len(status.invoices) == 1
    erp = await items(sandbox, "/erp/v1/invoices", contract_id=cid)
    assert len(erp) == 1
    assert status.revenue is not None
    assert status.revenue.recognised_to_date == Decimal("6000.00")


async def test_a_milestone_held_by_the_cap_is_billed_once_the_cap_is_raised(
    temporal_client: Client, settings: Settings, ledger: Ledger
) -> None:
    """Billed on completion, M2 goes over the cap: the hold names the milestone, the cap is
    raised by amendment, and a retry bills what was held back."""
    cid, _ = await start_active(
        temporal_client,
        settings,
        **fixed_fee(
            milestone_invoicing="on_completion", not_to_exceed="8000.00", end_date="2026-12-31"
        ),
    )
    await complete_milestone(
        temporal_client, cid, MilestoneCompleted(milestone_id="M1", completed_on=date(2026, 10, 9))
    )
    await complete_milestone(
        temporal_client, cid, MilestoneCompleted(milestone_id="M2", completed_on=date(2026, 11, 9))
    )
    held = await wait_for(
        temporal_client, cid, lambda s: bool(s.open_exceptions), what="the cap's hold"
    )
    [exception] = held.open_exceptions
    assert exception.code == "not_to_exceed_reached"
    assert "2000.00 USD of milestone M2 is above the not-to-exceed 8000.00" in exception.message
    raised = Amendment(
        amendment_id="A-CAP",
        effective_date=date(2026, 12, 1),
        not_to_exceed=Decimal("10000.00"),
        reason="change request signed",
    )
    assert (await amend(temporal_client, cid, raised)).status == "applied"
    item = await get_exception(ledger, exception.exception_id)
    after = await resolve(temporal_client, item, "retry", operator="ops@example.com")
    assert after.stage == "active" and after.open_exceptions == []
    assert [i.subtotal for i in after.invoices] == [
        Decimal("4000.00"),
        Decimal("4000.00"),
        Decimal("2000.00"),
    ]
    assert after.held_back == 0
    await replay(temporal_client, cid)


async def test_a_milestone_not_yet_invoiced_changes_or_goes_by_amendment(
    temporal_client: Client, settings: Settings, sandbox: httpx.AsyncClient
) -> None:
    handover = {"milestone_id": "M3", "name": "Handover", "amount": "2000.00"}
    cid, status = await start_active(
        temporal_client,
        settings,
        **fixed_fee(milestones=[*MILESTONES, handover], end_date="2026-12-31"),
    )
    erp_contract = status.refs["erp_contract_id"]
    psa = status.refs["psa_project_id"]
    await complete_milestone(
        temporal_client, cid, MilestoneCompleted(milestone_id="M1", completed_on=date(2026, 10, 20))
    )
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-10"))
    status = await wait_invoices(temporal_client, cid, 1)
    assert status.invoices[0].subtotal == Decimal("4000.00")

    # M1 is invoiced: neither changed nor removed; M3 is not re-added under the same id.
    refusals = [
        Amendment(
            amendment_id="A-m1",
            effective_date=date(2026, 11, 1),
            change_milestones=[{"milestone_id": "M1", "amount": "5000.00"}],
            reason="repriced",
        ),
        Amendment(
            amendment_id="A-m1-gone",
            effective_date=date(2026, 11, 1),
            remove_milestones=["M1"],
            reason="dropped",
        ),
        Amendment(
            amendment_id="A-m3-again",
            effective_date=date(2026, 11, 1),
            add_milestones=[{**handover, "amount": "3000.00"}],
            reason="repriced",
        ),
    ]
    for refused, words in zip(
        refusals, ("already invoiced", "already invoiced", "use change_milestones"), strict=True
    ):
        result = await amend(temporal_client, cid, refused)
        assert result.status == "rejected" and words in (result.reason or ""), result

    # By update: M2 from 6,000.00 to 9,000.00, due 2026-11-30. Value 4,000 + 9,000 + 2,000.
    repriced = Amendment(
        amendment_id="A-m2",
        effective_date=date(2026, 11, 1),
        change_milestones=[{"milestone_id": "M2", "amount": "9000.00", "due_date": "2026-11-30"}],
        reason="change order 9: build scope doubled",
    )
    assert (await amend(temporal_client, cid, repriced)).status == "applied"
    contract = (await sandbox.get(f"/erp/v1/contracts/{erp_contract}")).json()
    assert Decimal(contract["contract_value"]) == Decimal("15000.00")
    erp_m2 = next(m for m in contract["milestones"] if m["milestone_id"] == "M2")
    assert (Decimal(erp_m2["amount"]), erp_m2["due_date"]) == (Decimal("9000.00"), "2026-11-30")
    psa_m2 = next(
        m
        for m in await items(sandbox, f"/psa/v1/projects/{psa}/milestones")
        if m["milestone_id"] == "M2"
    )
    assert (Decimal(psa_m2["amount"]), psa_m2["due_date"]) == (Decimal("9000.00"), "2026-11-30")

    # By signal: M3 removed. Value 4,000 + 9,000.
    dropped = Amendment(
        amendment_id="A-m3",
        effective_date=date(2026, 11, 1),
        remove_milestones=["M3"],
        reason="handover done by the client",
    )
    await contract_handle(temporal_client, cid).signal("amend", dropped)
    status = await wait_for(
        temporal_client,
        cid,
        lambda s: any(a.amendment_id == "A-m3" for a in s.amendments),
        what="A-m3 decided",
    )
    assert status.amendments[-1].status == "applied"
    assert [(m.milestone_id, m.amount) for m in status.milestones] == [
        ("M1", Decimal("4000.00")),
        ("M2", Decimal("9000.00")),
    ]
    contract = (await sandbox.get(f"/erp/v1/contracts/{erp_contract}")).json()
    assert Decimal(contract["contract_value"]) == Decimal("13000.00")
    assert [m["milestone_id"] for m in contract["milestones"]] == ["M1", "M2"]
    psa_ids = [
        m["milestone_id"] for m in await items(sandbox, f"/psa/v1/projects/{psa}/milestones")
    ]
    assert psa_ids == ["M1", "M2"]

    # A rename applies (the API's answers to such amendments: tests/starter/api).
    renamed = Amendment(
        amendment_id="A-m2-name",
        effective_date=date(2026, 11, 1),
        change_milestones=[{"milestone_id": "M2", "name": "Build and test"}],
        reason="clearer name",
    )
    assert (await amend(temporal_client, cid, renamed)).status == "applied"

    await complete_milestone(
        temporal_client, cid, MilestoneCompleted(milestone_id="M2", completed_on=date(2026, 11, 10))
    )
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-11"))
    status = await wait_invoices(temporal_client, cid, 2)
    assert status.invoices[1].subtotal == Decimal("9000.00")
    assert status.milestones[1].name == "Build and test"
    # Output method on the amended value: 13,000.00 completed of 13,000.00.
    assert status.revenue is not None and status.revenue.method == "milestone_output"
    assert status.revenue.recognised_to_date == Decimal("13000.00")
    balances = await erp_balances(sandbox, erp_contract)
    assert balances["recognised_to_date"] == balances["billed_to_date"] == Decimal("13000.00")
    await replay(temporal_client, cid)
