"""Invoice review, purchase orders and bill-to on the real dev server, against the sandbox.

With review, a period close makes a draft (a preview in the ledger, nothing in the ERP) and the
contract waits for an operator: an approval numbers and issues the invoice, a rejection opens
an exception for finance whose retry drafts the invoice again with the terms amended since. A
legal entity can require a purchase order: a contract without one is held at validation until
one is amended in and the hold retried; the PO and bill-to go to the ERP on every invoice.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date

import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.worker import Worker

from c2c.settings import Settings
from domain.models import Amendment, ClosePeriod, ContractStatus, ResolveException, ReviewInvoice
from domain.names import ExceptionQueue
from ledger import Ledger
from starter.api.contracts import close_period_for, resolve_exception, review_invoice
from starter.api.updates import amend
from tests.workflows.billing_helpers import replay, start_active, wait_invoices
from tests.workflows.helpers import add_time, approval, items, wait_for, wait_stage
from worker import contract_worker

BILL_TO = {"name": "Acme Accounts Payable", "email": "ap@acme.example", "address": "1 Main St"}


def _open(status: ContractStatus, code: str) -> str:
    return next(e.exception_id for e in status.open_exceptions if e.code == code)


async def _draft_of(client: Client, cid: str, count: int = 1) -> ContractStatus:
    return await wait_for(
        client,
        cid,
        lambda s: len(s.drafts) == 1 and s.stage == "on_hold" and len(s.history) > count,
        what="a draft waiting for review",
    )


@pytest.mark.usefixtures("worker")
async def test_a_draft_is_issued_only_once_approved(
    temporal_client: Client, settings: Settings, sandbox: httpx.AsyncClient, ledger: Ledger
) -> None:
    cid, status = await start_active(
        temporal_client, settings, invoice_review="required", po_number="PO-4711", bill_to=BILL_TO
    )
    await add_time(sandbox, status.refs["psa_project_id"], "Analyst", "2026-10-05", "10")
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-10"))
    drafted = await _draft_of(temporal_client, cid)
    draft = drafted.drafts[0]
    assert (draft.subtotal, draft.po_number, draft.period) == (1200, "PO-4711", "2026-10")
    assert draft.invoice_id.startswith("DRAFT-") and not drafted.invoices
    review_hold = next(e for e in drafted.open_exceptions if e.code == "invoice_review")
    assert review_hold.queue == "finance"
    # Nothing issued anywhere: no ERP invoice, and the ledger lists the draft with its lines.
    assert await items(sandbox, "/erp/v1/invoices", contract_id=cid) == []
    [row] = ledger.list_drafts(contract_id=cid)
    assert (row.draft_id, row.total, len(row.lines)) == (draft.invoice_id, draft.total, 1)

    approved = await review_invoice(
        temporal_client,
        cid,
        ReviewInvoice(invoice_id=draft.invoice_id, decision="approve", operator="fin@c2c"),
    )
    assert approved.contract_id == cid
    issued = await wait_invoices(temporal_client, cid, 1)
    invoice = issued.invoices[0]
    assert invoice.number and invoice.total == draft.total and issued.stage == "active"
    assert not issued.drafts and not issued.open_exceptions
    [erp] = await items(sandbox, "/erp/v1/invoices", contract_id=cid)
    assert (erp["status"], erp["po_number"], erp["bill_to"]) == ("issued", "PO-4711", BILL_TO)
    assert ledger.list_drafts(contract_id=cid) == []
    [done] = ledger.list_drafts(contract_id=cid, status="approved")
    assert (done.invoice_id, done.reviewed_by) == (invoice.invoice_id, "fin@c2c")
    # An id that is not a waiting draft is refused in turn.
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await review_invoice(
            temporal_client,
            cid,
            ReviewInvoice(invoice_id=draft.invoice_id, decision="approve", operator="fin@c2c"),
        )
    assert "not a draft waiting for review" in str(refused.value.cause)
    await replay(temporal_client, cid)


@pytest.mark.usefixtures("worker")
async def test_a_rejected_draft_is_drafted_again_with_the_amended_po(
    temporal_client: Client, settings: Settings, sandbox: httpx.AsyncClient, ledger: Ledger
) -> None:
    cid, status = await start_active(temporal_client, settings, invoice_review="required")
    await add_time(sandbox, status.refs["psa_project_id"], "Analyst", "2026-10-05", "5")
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-10"))
    first = (await _draft_of(temporal_client, cid)).drafts[0]
    assert first.po_number is None
    await review_invoice(
        temporal_client,
        cid,
        ReviewInvoice(
            invoice_id=first.invoice_id,
            decision="reject",
            operator="fin@c2c",
            reason="the customer's PO is missing",
        ),
    )
    rejected = await wait_for(
        temporal_client,
        cid,
        lambda s: any(e.code == "invoice_rejected" for e in s.open_exceptions),
        what="the rejection's exception",
    )
    exception = next(e for e in rejected.open_exceptions if e.code == "invoice_rejected")
    assert exception.queue == "finance" and "the customer's PO is missing" in exception.message
    [row] = ledger.list_drafts(contract_id=cid, status="rejected")
    assert (row.reviewed_by, row.reason) == ("fin@c2c", "the customer's PO is missing")

    fix = Amendment(
        amendment_id="A-po",
        effective_date=date(2026, 11, 1),
        po_number="PO-9001",
        bill_to=BILL_TO,
        reason="PO received",
    )
    assert (await amend(temporal_client, cid, fix)).status == "applied"
    await resolve_exception(
        temporal_client,
        cid,
        ResolveException(exception_id=exception.exception_id, action="retry", operator="fin@c2c"),
    )
    second = await wait_for(
        temporal_client,
        cid,
        lambda s: len(s.drafts) == 1 and s.drafts[0].invoice_id != first.invoice_id,
        what="the second draft",
    )
    redraft = second.drafts[0]
    assert (redraft.po_number, redraft.total) == ("PO-9001", first.total)
    await review_invoice(
        temporal_client,
        cid,
        ReviewInvoice(invoice_id=redraft.invoice_id, decision="approve", operator="fin@c2c"),
    )
    await wait_invoices(temporal_client, cid, 1)
    [erp] = await items(sandbox, "/erp/v1/invoices", contract_id=cid)
    assert (erp["po_number"], erp["bill_to"]["name"]) == ("PO-9001", BILL_TO["name"])
    await replay(temporal_client, cid)


@pytest_asyncio.fixture
async def po_worker(temporal_client: Client, settings: Settings) -> AsyncIterator[Settings]:
    """A worker of its own whose legal entities need a purchase order and review invoices,
    with a finance SLA of two seconds."""
    own = settings.model_copy(
        update={
            "task_queue": f"c2c-po-{uuid.uuid4().hex[:8]}",
            "purchase_order_required": {"*": True},
            "invoice_review": {"US01": "required"},
            "exception_sla_hours": {ExceptionQueue.FINANCE: 2 / 3600},
        }
    )
    worker: Worker
    async with contract_worker(temporal_client, own) as worker:
        assert worker is not None
        yield own


async def test_a_contract_without_the_required_po_is_held_until_one_is_amended_in(
    temporal_client: Client, po_worker: Settings, sandbox: httpx.AsyncClient
) -> None:
    from starter.api.contracts import start_contract

    # The entity reviews invoices; this contract says it needs none.
    event = approval(invoice_review="none")
    cid = event.contract_id
    await start_contract(temporal_client, event, task_queue=po_worker.task_queue)
    held = await wait_for(
        temporal_client,
        cid,
        lambda s: any(e.code == "purchase_order_required" for e in s.open_exceptions),
        what="the purchase order hold",
    )
    exception = next(e for e in held.open_exceptions if e.code == "purchase_order_required")
    assert (held.stage, exception.queue, exception.stage) == ("on_hold", "finance", "validating")
    fix = Amendment(
        amendment_id="A-po", effective_date=date(2026, 10, 1), po_number="PO-77", reason="PO"
    )
    assert (await amend(temporal_client, cid, fix)).status == "applied"
    await resolve_exception(
        temporal_client,
        cid,
        ResolveException(exception_id=exception.exception_id, action="retry", operator="fin@c2c"),
    )
    active = await wait_stage(temporal_client, cid, "active")
    assert active.po_number == "PO-77"
    await add_time(sandbox, active.refs["psa_project_id"], "Analyst", "2026-10-05", "1")
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-10"))
    issued = await wait_invoices(temporal_client, cid, 1)
    assert not issued.drafts
    [erp] = await items(sandbox, "/erp/v1/invoices", contract_id=cid)
    assert (erp["status"], erp["po_number"]) == ("issued", "PO-77")
    await replay(temporal_client, cid)


async def test_the_entitys_review_makes_drafts_that_escalate_past_the_finance_sla(
    temporal_client: Client, po_worker: Settings, sandbox: httpx.AsyncClient, ledger: Ledger
) -> None:
    from starter.api.contracts import start_contract

    event = approval(po_number="PO-88")  # the entity's setting: review required
    cid = event.contract_id
    await start_contract(temporal_client, event, task_queue=po_worker.task_queue)
    active = await wait_stage(temporal_client, cid, "active")
    await add_time(sandbox, active.refs["psa_project_id"], "Analyst", "2026-10-05", "1")
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-10"))
    escalated = await wait_for(
        temporal_client,
        cid,
        lambda s: any(e.code == "invoice_review" and e.escalated_at for e in s.open_exceptions),
        what="the draft's escalation",
    )
    draft = escalated.drafts[0]
    assert any("escalated: open in the finance queue" in h.event for h in escalated.history)
    await review_invoice(
        temporal_client,
        cid,
        ReviewInvoice(invoice_id=draft.invoice_id, decision="approve", operator="fin@c2c"),
    )
    issued = await wait_invoices(temporal_client, cid, 1)
    assert issued.invoices[0].total == draft.total
    await replay(temporal_client, cid)
