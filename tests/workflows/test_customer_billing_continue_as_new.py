"""A customer's billing workflow continues as new and keeps every guarantee across it.

Two contracts of one customer under one purchase order bill six months, each month's
consolidated invoice paid, on a worker whose ``C2C_CONTINUE_AS_NEW_EVENTS`` is the lowest
there is: the customer's billing hands over to new runs on the way. After that a section of an
old month sent again is answered again, not invoiced again; a payment id sent again is not
allocated again; the status goes on where the last run left it; what each run is handed is
small; and every run replays. A payment id older than the ids a run carries is found in the
ledger and still ignored.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from c2c.settings import Settings
from domain.consolidation import (
    CARRIED_PAYMENT_IDS,
    CustomerBillingKey,
    CustomerBillingStart,
    CustomerBillingStatus,
    InvoiceSection,
    customer_billing_workflow_id,
)
from domain.models import ClosePeriod, PaymentReceived
from domain.names import SIGNAL_SUBMIT_SECTION
from starter.api.contracts import close_period_for, customer_billing_status, record_customer_payment
from tests.workflows.billing_helpers import start_active
from tests.workflows.helpers import add_time, items, wait_for
from tests.workflows.test_continue_as_new import run_histories
from worker import contract_worker
from workflows.customer_billing import CustomerBilling

PERIODS = ["2026-05", "2026-06", "2026-07", "2026-08", "2026-09", "2026-10"]
#: The project's bound on what a run hands to the next.
CARRIED_BOUND = 16 * 1024


def _start(history: WorkflowHistory) -> tuple[int, CustomerBillingStart]:
    payload = history.events[0].workflow_execution_started_event_attributes.input.payloads[0]
    converter = pydantic_data_converter.payload_converter
    return len(payload.data), converter.from_payload(payload, CustomerBillingStart)


async def _status_until(
    client: Client, workflow_id: str, done: Callable[[CustomerBillingStatus], bool], what: str
) -> CustomerBillingStatus:
    for _ in range(600):
        status = await customer_billing_status(client, workflow_id)
        if done(status):
            return status
        await asyncio.sleep(0.1)
    raise AssertionError(f"never {what}: {status.history[-10:]}")


def _payment(payment_id: str, invoice: dict[str, Any] | None) -> PaymentReceived:
    return PaymentReceived(
        payment_id=payment_id,
        invoice_id=invoice["invoice_id"] if invoice else "NO-SUCH-INVOICE",
        amount=Decimal("5.00"),
        currency="USD",
        received_on=date(2026, 11, 20),
    )


def _said(text: str, count: int = 1) -> Callable[[CustomerBillingStatus], bool]:
    return lambda status: sum(text in line for line in status.history) >= count


@pytest.mark.usefixtures("worker")
async def test_customer_billing_continues_as_new_and_keeps_its_guarantees(
    temporal_client: Client, settings: Settings, sandbox: httpx.AsyncClient
) -> None:
    client = temporal_client
    low = settings.model_copy(
        update={
            "continue_as_new_events": 100,
            "task_queue": f"c2c-cb-can-{uuid.uuid4().hex[:8]}",
        }
    )
    po = f"PO-{uuid.uuid4().hex[:8]}"
    billing_id = customer_billing_workflow_id(
        CustomerBillingKey(
            legal_entity="US01", crm_account_id="ACME-US", currency="USD", po_number=po
        )
    )
    async with contract_worker(client, low):
        cids = []
        for _ in range(2):
            cid, status = await start_active(
                client,
                low,
                consolidated_invoicing="customer_po",
                po_number=po,
                start_date="2026-05-01",
                end_date="2026-10-31",
            )
            for period in PERIODS:
                await add_time(
                    sandbox, status.refs["psa_project_id"], "Analyst", f"{period}-05", "2"
                )
            cids.append(cid)
        for cid in cids:
            await wait_for(
                client,
                cid,
                lambda s: any("joined the consolidated invoicing" in h.event for h in s.history),
                what="joined",
            )
        paid = Decimal(0)
        for period in PERIODS:
            for cid in cids:
                await close_period_for(client, cid, ClosePeriod(period=period))
            status = await _status_until(
                client,
                billing_id,
                lambda s, p=period: any(i.period == p for i in s.invoices),
                f"the {period} invoice",
            )
            invoice = next(i for i in status.invoices if i.period == period)
            await record_customer_payment(
                client,
                billing_id,
                PaymentReceived(
                    payment_id=f"PAY-{period}",
                    invoice_id=invoice.number,
                    amount=invoice.total,
                    currency="USD",
                    received_on=date(2026, 11, 20),
                ),
            )
            await _status_until(
                client,
                billing_id,
                lambda s, p=period: all(i.balance == 0 for i in s.invoices if i.period == p),
                f"the {period} invoice paid",
            )
            paid += invoice.total
        for cid in cids:
            await wait_for(
                client,
                cid,
                lambda s: (
                    len(s.invoices) + s.settled_invoices.count == len(PERIODS)
                    and s.balance_due == 0
                ),
                what="every section paid",
                timeout=120,
            )

        status = await customer_billing_status(client, billing_id)
        assert status.run >= 2, status.history[-5:]
        assert status.history_omitted > 0 or any("history continued" in h for h in status.history)
        # The status goes on: the invoices held and those folded make every month's, paid.
        erp = await items(sandbox, "/erp/v1/invoices", contract_id=billing_id)
        assert sorted(i["period"] for i in erp) == PERIODS
        assert len(status.invoices) + status.settled_invoices == len(PERIODS)
        assert sum(i.total for i in status.invoices) + status.settled_total == paid
        assert all(i.balance == 0 for i in status.invoices)

        # A section of the first month sent again after the hand-overs: answered again.
        old = f"SEC-{cids[0]}-{PERIODS[0]}"
        answered = sum("sent again: answered again" in line for line in status.history)
        await client.get_workflow_handle(billing_id).signal(
            SIGNAL_SUBMIT_SECTION,
            InvoiceSection(
                section_id=old,
                contract_id=cids[0],
                period=PERIODS[0],
                subtotal=Decimal("300.00"),
                tax=Decimal("0"),
                total=Decimal("300.00"),
                invoice_date=date(2026, 6, 1),
                tax_code="resent",
            ),
        )
        await _status_until(
            client, billing_id, _said("sent again: answered again", answered + 1), "answered again"
        )
        # The last month's payment sent again: its id is carried, it is not allocated again.
        await record_customer_payment(client, billing_id, _payment(f"PAY-{PERIODS[-1]}", erp[-1]))
        await _status_until(
            client, billing_id, _said(f"payment PAY-{PERIODS[-1]} already allocated"), "ignored"
        )
        # Payments naming no invoice of the customer push the first month's payment id out of
        # what the runs carry (at a hand-over after a hundred more); sent again, it is found in
        # the ledger and ignored.
        sent = 0
        while True:
            for _ in range(20):
                await record_customer_payment(
                    client, billing_id, _payment(f"PAY-NONE-{sent}", None)
                )
                sent += 1
            status = await _status_until(
                client,
                billing_id,
                lambda s, last=f"PAY-NONE-{sent - 1}": last in s.payments,
                f"{sent} payments naming no invoice",
            )
            if f"PAY-{PERIODS[0]}" not in status.payments:
                break
            assert sent < 4 * CARRIED_PAYMENT_IDS, status.history[-5:]
        assert status.payments_forgotten > 0
        await record_customer_payment(client, billing_id, _payment(f"PAY-{PERIODS[0]}", erp[0]))
        await _status_until(
            client, billing_id, _said(f"payment PAY-{PERIODS[0]} already allocated"), "ignored"
        )
        # Nothing made twice: one invoice a month, one payment each, no cash left over.
        erp = await items(sandbox, "/erp/v1/invoices", contract_id=billing_id)
        assert sorted(i["period"] for i in erp) == PERIODS
        for invoice in erp:
            assert invoice["status"] == "paid"
            payments = await items(sandbox, "/erp/v1/payments", invoice_id=invoice["invoice_id"])
            assert len(payments) == 1, invoice["number"]
        for cid in cids:
            contract = await wait_for(client, cid, lambda s: True)
            assert contract.unapplied_cash == 0 and contract.balance_due == 0

    runs = await run_histories(client, billing_id)
    assert len(runs) >= 2
    handed = [_start(history) for history in runs[1:]]
    print(f"carried input by run (bytes): {[size for size, _ in handed]}")
    assert all(size < CARRIED_BOUND for size, _ in handed)
    assert any(start.carried and start.carried.folded for _, start in handed), [
        json.loads(pydantic_data_converter.payload_converter.to_payloads([s])[0].data)
        for _, s in handed
    ]
    replayer = Replayer(workflows=[CustomerBilling], data_converter=pydantic_data_converter)
    for history in runs:
        await replayer.replay_workflow(history)
