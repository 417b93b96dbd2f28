"""Calendar time on the time-skipping test server: month ends and overdue invoices.

The contracts run their real activities against the sandbox over HTTP; only the clock is
skipped. The last period of a contract closes only once its end date has passed. Reminders go
out 7, 14 and 30 days after the due date, each recorded on the CRM account; the last raises an
exception to the finance queue; a payment stops dunning and closes it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest_asyncio
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from c2c.ports import free_port
from c2c.settings import Settings
from domain.consolidation import CustomerBillingKey, customer_billing_workflow_id
from domain.models import ClosePeriod, ContractStatus, PaymentReceived
from domain.names import SEARCH_ATTRIBUTES
from domain.periods import Period
from ledger import Ledger
from starter.api.contracts import (
    close_period_for,
    get_status,
    record_customer_payment,
    start_contract,
)
from tests.support import venv_binary
from tests.workflows.billing_helpers import pay, replay, start_active
from tests.workflows.helpers import add_time, approval, items
from worker import contract_worker


@pytest_asyncio.fixture(scope="module")
async def skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        port=free_port(),
        test_server_existing_path=venv_binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    # The test server knows no custom search attributes until they are added, as c2c up does.
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={
                key.name: IndexedValueType.ValueType(key.indexed_value_type.value)
                for key in SEARCH_ATTRIBUTES
            },
        )
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest_asyncio.fixture(scope="module")
async def skipping(
    skipping_env: WorkflowEnvironment, settings: Settings
) -> AsyncIterator[tuple[WorkflowEnvironment, Settings]]:
    own = settings.model_copy(update={"task_queue": f"c2c-skip-{uuid.uuid4().hex[:8]}"})
    async with contract_worker(skipping_env.client, own):
        yield skipping_env, own


async def _reminders(sandbox: httpx.AsyncClient, invoice_id: str) -> list[dict[str, Any]]:
    activities = await items(sandbox, "/crm/v1/accounts/ACME-US/activities")
    return [
        a
        for a in activities
        if a.get("type") == "dunning_reminder"
        and (a.get("related_to") or {}).get("invoice_id") == invoice_id
    ]


async def test_dunning_escalates_and_a_payment_stops_it(
    skipping: tuple[WorkflowEnvironment, Settings], sandbox: httpx.AsyncClient
) -> None:
    env, settings = skipping
    client = env.client
    cid, status = await start_active(client, settings, end_date="2027-03-31", payment_terms_days=10)
    await add_time(sandbox, status.refs["psa_project_id"], "Analyst", "2026-10-05", "10")
    await close_period_for(client, cid, ClosePeriod(period="2026-10"))
    status = await _until(env, cid, lambda s: bool(s.invoices))
    invoice = status.invoices[0]
    assert invoice.status == "issued"

    await env.sleep(timedelta(days=11))
    status = await _until(env, cid, lambda s: s.invoices[0].status == "overdue")
    assert await _reminders(sandbox, invoice.invoice_id) == []

    await env.sleep(timedelta(days=7))
    status = await _until(env, cid, lambda s: s.invoices[0].dunning_level == 1)
    assert len(await _reminders(sandbox, invoice.invoice_id)) == 1

    # A partial payment leaves the invoice overdue and dunning going.
    await pay(client, cid, f"part-{cid}", Decimal("100.00"), invoice_id=invoice.invoice_id)
    await env.sleep(timedelta(days=7))
    status = await _until(env, cid, lambda s: s.invoices[0].dunning_level == 2)
    assert status.invoices[0].amount_paid == Decimal("100.00")

    await env.sleep(timedelta(days=17))
    status = await _until(env, cid, lambda s: bool(s.open_exceptions))
    (escalation,) = status.open_exceptions
    assert (escalation.code, escalation.queue) == ("dunning_exhausted", "finance")
    assert status.stage == "active"  # dunning never holds the rest of the contract
    assert len(await _reminders(sandbox, invoice.invoice_id)) == 3

    await pay(
        client, cid, f"rest-{cid}", invoice.total - Decimal("100.00"), invoice_id=invoice.invoice_id
    )
    status = await _until(env, cid, lambda s: s.invoices[0].status == "paid")
    assert status.open_exceptions == []
    await env.sleep(timedelta(days=40))
    assert len(await _reminders(sandbox, invoice.invoice_id)) == 3
    await replay(client, cid)


async def test_a_consolidated_invoice_is_dunned_once_per_level(
    skipping: tuple[WorkflowEnvironment, Settings], sandbox: httpx.AsyncClient
) -> None:
    """Two contracts' sections on one consolidated invoice fall overdue together: each
    contract dunns its section, and the customer gets one reminder per level about the
    invoice it received, with what is still outstanding on it."""
    env, settings = skipping
    client = env.client
    po = f"PO-{uuid.uuid4().hex[:8]}"
    cids = []
    for hours in ("10", "5"):
        cid, status = await start_active(
            client,
            settings,
            end_date="2027-03-31",
            payment_terms_days=10,
            consolidated_invoicing="customer_po",
            po_number=po,
        )
        await add_time(sandbox, status.refs["psa_project_id"], "Analyst", "2026-10-05", hours)
        cids.append(cid)
    # Sections appear on the invoice, and payments go to them, in the order of contract ids.
    cids.sort()
    for cid in cids:
        await _until(env, cid, lambda s: any("joined" in h.event for h in s.history))
    for cid in cids:
        await close_period_for(client, cid, ClosePeriod(period="2026-10"))
    sections = [(await _until(env, cid, lambda s: bool(s.invoices))).invoices[0] for cid in cids]
    consolidated = sections[0].consolidated_invoice_id
    assert consolidated and consolidated == sections[1].consolidated_invoice_id
    owed = sum((s.total for s in sections), Decimal(0))

    await env.sleep(timedelta(days=18))
    for cid in cids:
        await _until(env, cid, lambda s: s.invoices[0].dunning_level == 1)
    [first] = await _reminders(sandbox, consolidated)
    assert first["subject"] == f"Payment reminder 1 for invoice {sections[0].number}"
    assert f"{owed} USD is outstanding" in first["body"]
    for section in sections:  # none about a section, which the customer never saw
        assert await _reminders(sandbox, section.invoice_id) == []

    # The first section paid: its contract stops dunning, the other's reminder says what
    # is left on the invoice.
    await record_customer_payment(
        client,
        customer_billing_workflow_id(
            CustomerBillingKey(
                legal_entity="US01", crm_account_id="ACME-US", currency="USD", po_number=po
            )
        ),
        PaymentReceived(
            payment_id=f"pay-{po}",
            invoice_id=consolidated,
            amount=sections[0].total,
            currency="USD",
            received_on=date(2026, 11, 24),
        ),
    )
    await _until(env, cids[0], lambda s: s.invoices[0].status == "paid")
    await env.sleep(timedelta(days=7))
    await _until(env, cids[1], lambda s: s.invoices[0].dunning_level == 2)
    reminders = await _reminders(sandbox, consolidated)
    assert len(reminders) == 2
    assert f"{sections[1].total} USD is outstanding" in reminders[1]["body"]
    for cid in cids:
        await replay(client, cid)


async def test_the_last_month_closes_after_the_month_boundary(
    skipping: tuple[WorkflowEnvironment, Settings], sandbox: httpx.AsyncClient
) -> None:
    env, settings = skipping
    client = env.client
    today = (await env.get_current_time()).date()
    last_day = Period.of(today).last_day
    cid, status = await start_active(
        client,
        settings,
        start_date=Period.of(today).first_day.isoformat(),
        end_date=last_day.isoformat(),
    )
    await add_time(sandbox, status.refs["psa_project_id"], "Analyst", today.isoformat(), "4")
    month = ClosePeriod(period=str(Period.of(today)))
    await close_period_for(client, cid, month)
    status = await _until(env, cid, lambda s: "closes once the end date" in s.history[-1].event)
    assert status.invoices == [] and status.closed_periods == []

    # Skip past midnight of the last day: the end-date timer fires with no message at all.
    await env.sleep(
        datetime.combine(last_day, time(), tzinfo=UTC)
        + timedelta(days=1, hours=1)
        - await env.get_current_time()
    )
    status = await _until(env, cid, lambda s: "final period" in s.waiting_for)
    await close_period_for(client, cid, month)
    status = await _until(env, cid, lambda s: bool(s.invoices))
    invoice = status.invoices[0]
    assert invoice.subtotal == Decimal("480.00")
    assert invoice.invoice_date == last_day + timedelta(days=1)
    await pay(client, cid, f"pay-{cid}", invoice.total)
    status = await _until(env, cid, lambda s: s.stage == "closed")
    await replay(client, cid)


async def test_an_exception_past_its_queue_sla_is_escalated(
    skipping: tuple[WorkflowEnvironment, Settings], ledger: Ledger
) -> None:
    env, settings = skipping
    client = env.client
    event = approval(legal_entity="XX99")
    await start_contract(client, event, task_queue=settings.task_queue)
    status = await _until(env, event.contract_id, lambda s: bool(s.open_exceptions))
    [exception] = status.open_exceptions
    assert exception.queue == "legal" and exception.escalated_at is None
    assert exception.sla_due_at == exception.opened_at + timedelta(hours=72)

    await env.sleep(timedelta(hours=71))
    status = await get_status(client, event.contract_id)
    assert status.open_exceptions[0].escalated_at is None
    await env.sleep(timedelta(hours=2))
    status = await _until(env, event.contract_id, lambda s: bool(s.open_exceptions[0].escalated_at))
    assert status.stage == "on_hold"
    assert any("escalated" in h.event for h in status.history)
    record = ledger.get_exception(exception.exception_id)
    assert record is not None and record.escalated_at is not None and record.status == "open"


async def _until(env: WorkflowEnvironment, cid: str, predicate: Any) -> ContractStatus:
    """Poll the status (in real time: the server skips only inside ``env.sleep``)."""
    status: ContractStatus | None = None
    for _ in range(300):
        status = await get_status(env.client, cid)
        if predicate(status):
            return status
        await asyncio.sleep(0.1)
    raise AssertionError(f"condition not reached; last status: {status}")
