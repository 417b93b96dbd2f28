"""A reset decides every message as before: one ordered inbox, tried as an operator would.

After a reset every message after the reset point arrives at once, in the new run's first
task. The contract decides them in their order of arrival, each against the state the ones
before it produced, so the refused amendment stays refused, the applied one stays applied, and
nothing is invoiced, credited or paid twice.
"""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from c2c.settings import Settings
from domain.models import Amendment, ClosePeriod, ContractStatus
from starter.api.contracts import close_period_for, get_status, queue_amendment
from starter.api.updates import amend
from tests.workflows.billing_helpers import pay, start_active, wait_invoices
from tests.workflows.helpers import add_time, items, wait_for
from tests.workflows.reset_helpers import reset_somehow

pytestmark = pytest.mark.usefixtures("worker")


async def erp_records(sandbox: httpx.AsyncClient, cid: str, erp_contract_id: str) -> dict[str, Any]:
    """What the ERP holds for a contract: invoices, credit notes, revenue, payments, rates."""
    invoices = await items(sandbox, "/erp/v1/invoices", contract_id=cid)
    [contract] = await items(sandbox, "/erp/v1/contracts", contract_id=cid)
    return {
        "invoices": sorted((i["invoice_id"], i["total"], i["status"]) for i in invoices),
        "credit_notes": sorted(
            n["credit_note_id"]
            for n in await items(sandbox, "/erp/v1/credit-notes", contract_id=cid)
        ),
        "revenue": sorted(
            (r["entry_id"], r["amount"])
            for r in await items(sandbox, f"/erp/v1/contracts/{erp_contract_id}/revenue")
        ),
        "payments": sorted(
            p["payment_id"] for p in await items(sandbox, "/erp/v1/payments", contract_id=cid)
        ),
        "amendments": [a["amendment_id"] for a in contract["amendments"]],
    }


def decisions(status: ContractStatus) -> list[tuple[str, str, str | None]]:
    return [(a.amendment_id, a.status, a.reason) for a in status.amendments]


async def settled(client: Client, cid: str, before: ContractStatus) -> ContractStatus:
    """The new run, once it has decided as many amendments as the old one and rests."""
    return await wait_for(
        client,
        cid,
        lambda s: (
            len(s.amendments) == len(before.amendments)
            and len(s.invoices) == len(before.invoices)
            and s.stage == before.stage
            and s.balance_due == before.balance_due
        ),
        what="the new run to decide every message again",
    )


@pytest.mark.parametrize("how", ["cli", "ops"])
async def test_an_amendment_refused_for_an_invoiced_period_stays_refused_after_a_reset(
    temporal_client: Client, settings: Settings, sandbox: httpx.AsyncClient, how: str
) -> None:
    cid, status = await start_active(temporal_client, settings, end_date="2026-12-31")
    refs = status.refs
    await add_time(sandbox, refs["psa_project_id"], "Analyst", "2026-10-20", "10")
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-10"))
    [invoice] = (await wait_invoices(temporal_client, cid, 1)).invoices
    assert invoice.subtotal == Decimal("1200.00")
    await pay(temporal_client, cid, f"PAY-{cid}", invoice.total, invoice_id=invoice.invoice_id)
    late = Amendment(
        amendment_id="A-LATE",
        effective_date=date(2026, 10, 20),
        rate_card=[{"role": "Analyst", "hourly_rate": "140.00"}],
        reason="rate review",
    )
    await queue_amendment(temporal_client, cid, late)
    before = await wait_for(
        temporal_client,
        cid,
        lambda s: bool(s.amendments) and s.invoices[0].status == "paid",
        what="the late amendment refused and October paid",
    )
    [(_, verdict, reason)] = decisions(before)
    assert verdict == "rejected"
    assert reason is not None and "already invoiced" in reason
    records = await erp_records(sandbox, cid, refs["erp_contract_id"])

    await reset_somehow(temporal_client, cid, how, random.Random(0))

    after = await settled(temporal_client, cid, before)
    assert decisions(after) == decisions(before)
    assert [(i.invoice_id, i.status, i.amount_paid) for i in after.invoices] == [
        (invoice.invoice_id, "paid", invoice.total)
    ]
    assert after.open_exceptions == []
    assert after.stage == "active"
    assert await erp_records(sandbox, cid, refs["erp_contract_id"]) == records


async def test_an_amendment_applied_by_update_stays_applied_after_a_raw_reset(
    temporal_client: Client, settings: Settings, sandbox: httpx.AsyncClient
) -> None:
    """The server delivers the accepted update again; the new run decides it in its turn,
    after October's close and before November's, and bills November at the new rate."""
    cid, status = await start_active(temporal_client, settings, end_date="2026-12-31")
    refs = status.refs
    await add_time(sandbox, refs["psa_project_id"], "Analyst", "2026-10-20", "10")
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-10"))
    await wait_invoices(temporal_client, cid, 1)
    raise_rate = Amendment(
        amendment_id="A-NOV",
        effective_date=date(2026, 11, 1),
        rate_card=[{"role": "Analyst", "hourly_rate": "150.00"}],
        reason="rate review",
    )
    assert (await amend(temporal_client, cid, raise_rate)).status == "applied"
    await add_time(sandbox, refs["psa_project_id"], "Analyst", "2026-11-10", "10")
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-11"))
    before = await wait_invoices(temporal_client, cid, 2)
    assert [i.subtotal for i in before.invoices] == [Decimal("1200.00"), Decimal("1500.00")]
    records = await erp_records(sandbox, cid, refs["erp_contract_id"])

    await reset_somehow(temporal_client, cid, "cli", random.Random(0))

    after = await settled(temporal_client, cid, before)
    assert decisions(after) == decisions(before) == [("A-NOV", "applied", None)]
    assert [(i.invoice_id, i.subtotal) for i in after.invoices] == [
        (i.invoice_id, i.subtotal) for i in before.invoices
    ]
    assert await erp_records(sandbox, cid, refs["erp_contract_id"]) == records
    assert (await get_status(temporal_client, cid)).open_exceptions == []
