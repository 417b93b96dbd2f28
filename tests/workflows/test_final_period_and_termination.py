"""The last period closes only after the end date; a termination bills up to its date.

Dates are relative to today, because the workflow reads the clock of the (real) server.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import httpx
import pytest
from temporalio.client import Client

from c2c.settings import Settings
from domain.models import ClosePeriod, PaymentReceived, ResolveException, TerminateContract
from domain.periods import Period
from starter.api.contracts import (
    close_period_for,
    contract_result,
    record_payment,
    resolve_exception,
    start_contract,
    terminate_contract,
)
from tests.workflows.helpers import add_time, approval, wait_for, wait_stage

pytestmark = pytest.mark.usefixtures("worker")


async def test_the_final_period_is_not_closed_before_the_end_date(
    temporal_client: Client, settings: Settings
) -> None:
    this_month = Period.of(date.today())
    event = approval(
        start_date=this_month.first_day.isoformat(), end_date=this_month.last_day.isoformat()
    )
    cid = event.contract_id
    await start_contract(temporal_client, event, task_queue=settings.task_queue)
    await wait_stage(temporal_client, cid, "active")
    await close_period_for(temporal_client, cid, ClosePeriod(period=str(this_month)))
    status = await wait_for(
        temporal_client,
        cid,
        lambda s: any("closes once the end date" in h.event for h in s.history),
        what="the refusal in history",
    )
    assert status.closed_periods == []
    assert status.invoices == []
    assert status.stage == "active"


async def test_a_termination_bills_work_up_to_its_date_then_closes_once_paid(
    temporal_client: Client, settings: Settings, sandbox: httpx.AsyncClient
) -> None:
    last_month = Period.of(date.today().replace(day=1) - timedelta(days=1))
    earlier = Period.of(last_month.first_day - timedelta(days=1))
    event = approval(
        start_date=earlier.first_day.isoformat(),
        end_date=(Period.of(date.today()).next().last_day).isoformat(),
    )
    cid = event.contract_id
    await start_contract(temporal_client, event, task_queue=settings.task_queue)
    status = await wait_stage(temporal_client, cid, "active")
    psa = status.refs["psa_project_id"]
    await add_time(sandbox, psa, "Senior Consultant", earlier.first_day.isoformat(), "5")
    # Worked after the termination date: not billed by this contract.
    await add_time(sandbox, psa, "Senior Consultant", last_month.first_day.isoformat(), "3")

    await terminate_contract(
        temporal_client,
        cid,
        TerminateContract(effective_date=earlier.last_day, reason="client budget cut"),
    )
    status = await wait_for(temporal_client, cid, lambda s: bool(s.invoices), what="an invoice")
    [invoice] = status.invoices
    assert invoice.period == str(earlier)
    assert invoice.subtotal == Decimal("1000.00")
    assert status.closed_periods == [str(earlier)]
    assert status.stage == "active"  # billed, not yet paid
    assert any("termination requested" in h.event for h in status.history)
    # Time entry is closed in the PSA after the last day: later time is refused.
    assert f"time entry closed in the PSA after {earlier.last_day}" in [
        h.event for h in status.history
    ]
    project = (await sandbox.get(f"/psa/v1/projects/{psa}")).json()
    assert project["time_entry_end_date"] == earlier.last_day.isoformat()
    refused = await sandbox.post(
        f"/psa/v1/projects/{psa}/time-entries",
        json={
            "consultant_id": "u-1",
            "role": "Senior Consultant",
            "work_date": last_month.last_day.isoformat(),
            "hours": "2",
            "billable": True,
            "approved": True,
        },
    )
    assert refused.status_code == 422
    assert (refused.json()["error"]["code"], refused.json()["error"]["field"]) == (
        "time_entry_closed",
        "work_date",
    )
    # The 3 h the PSA already held for later days are reported, never billed.
    [found] = [h.event for h in status.history if "dated after the last day" in h.event]
    assert found.startswith("1 approved time entry (3") and "not billed" in found
    [notice] = status.open_exceptions
    assert (notice.code, notice.queue, notice.step) == (
        "work_after_termination",
        "delivery",
        "work_after_end",
    )

    await record_payment(
        temporal_client,
        cid,
        PaymentReceived(
            payment_id=f"pay-{cid}",
            invoice_id=invoice.invoice_id,
            amount=invoice.total,
            currency="USD",
            received_on=date.today(),
        ),
    )
    # Paid, but the contract stays open until delivery has dealt with the time reported.
    await wait_for(temporal_client, cid, lambda s: s.balance_due == 0, what="the invoice paid")
    await resolve_exception(
        temporal_client,
        cid,
        ResolveException(
            exception_id=notice.exception_id,
            action="skip",
            operator="pm@c2c",
            note="time moved to the follow-on project",
        ),
    )
    summary = await contract_result(temporal_client, cid)
    assert summary.status.stage == "closed"
    assert summary.status.balance_due == 0
    assert len(summary.status.invoices) == 1


async def test_work_approved_after_the_final_close_is_billed_before_closing(
    temporal_client: Client, settings: Settings, sandbox: httpx.AsyncClient
) -> None:
    event = approval()  # October 2026, already over
    cid = event.contract_id
    await start_contract(temporal_client, event, task_queue=settings.task_queue)
    status = await wait_stage(temporal_client, cid, "active")
    psa = status.refs["psa_project_id"]
    await add_time(sandbox, psa, "Analyst", "2026-10-12", "5")
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-10"))
    status = await wait_for(temporal_client, cid, lambda s: bool(s.invoices), what="an invoice")
    first = status.invoices[0]
    # A corrected timesheet is approved after the month was billed.
    await add_time(sandbox, psa, "Analyst", "2026-10-30", "2")
    await record_payment(
        temporal_client,
        cid,
        PaymentReceived(
            payment_id=f"p1-{cid}",
            invoice_id=first.invoice_id,
            amount=first.total,
            currency="USD",
            received_on=date(2026, 11, 23),
        ),
    )
    status = await wait_for(temporal_client, cid, lambda s: len(s.invoices) == 2, what="late")
    late = status.invoices[1]
    assert late.reference == "2026-10:late"
    assert late.subtotal == Decimal("240.00")
    assert status.stage == "active"
    await record_payment(
        temporal_client,
        cid,
        PaymentReceived(
            payment_id=f"p2-{cid}",
            amount=late.total,
            currency="USD",
            received_on=date(2026, 11, 23),
        ),
    )
    summary = await contract_result(temporal_client, cid)
    assert summary.status.stage == "closed"
    assert len(summary.status.invoices) == 2
