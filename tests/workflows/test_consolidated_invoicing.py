"""Consolidated invoicing on the real dev server, against the sandbox.

Two contracts of one customer in one legal entity close the same period: the ERP holds one
invoice, with a section per contract, whose total is the sum of the sections; each contract
holds its section as an invoice. A payment of the consolidated invoice is allocated to the
sections in the order they appear on it; a repeated section or payment changes nothing.
Each test bills under its own purchase order (``customer_po``), so each has its own
customer billing workflow.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from c2c.settings import Settings
from c2c.signing import sign
from domain.consolidation import (
    CustomerBillingStatus,
    InvoiceSection,
)
from domain.models import ContractStatus, PaymentReceived
from domain.names import SIGNAL_SUBMIT_SECTION, SIGNATURE_HEADER
from ledger import Ledger
from ledger.books import aging
from starter.api.contracts import (
    customer_billing_status,
    record_customer_payment,
)
from tests.support import WEBHOOK_SECRET, serve
from tests.workflows.billing_helpers import consolidated_invoiced as _invoiced
from tests.workflows.billing_helpers import reconcile_differences, replay
from tests.workflows.billing_helpers import two_consolidating_contracts as _two_contracts
from tests.workflows.helpers import items, wait_for
from workflows.customer_billing import CustomerBilling


async def _paid(client: Client, cid: str, paid: Decimal) -> ContractStatus:
    return await wait_for(
        client,
        cid,
        lambda s: bool(s.invoices) and s.invoices[0].amount_paid == paid,
        what=f"{paid} paid",
    )


async def _replay_customer(client: Client, workflow_id: str) -> None:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    await Replayer(
        workflows=[CustomerBilling], data_converter=pydantic_data_converter
    ).replay_workflow(history)


def _payment(payment_id: str, invoice: str, amount: Decimal) -> PaymentReceived:
    return PaymentReceived(
        payment_id=payment_id,
        invoice_id=invoice,
        amount=amount,
        currency="USD",
        received_on=date(2026, 11, 23),
    )


@pytest.mark.usefixtures("worker")
async def test_two_contracts_one_invoice_paid_in_full(
    temporal_client: Client, settings: Settings, sandbox: httpx.AsyncClient, ledger: Ledger
) -> None:
    cids, billing_id = await _two_contracts(temporal_client, settings, sandbox, ("10", "5"))
    first, second = [await _invoiced(temporal_client, cid) for cid in cids]
    a, b = first.invoices[0], second.invoices[0]
    assert first.consolidated_invoicing == "customer_po" and not first.sections_waiting
    # One number, one ERP invoice, for both sections; no invoice of either contract's own.
    assert a.number == b.number and a.consolidated_invoice_id == b.consolidated_invoice_id
    assert (a.subtotal, b.subtotal) == (Decimal("1200.00"), Decimal("600.00"))
    [erp] = await items(sandbox, "/erp/v1/invoices", contract_id=billing_id)
    assert erp["invoice_id"] == a.consolidated_invoice_id and erp["status"] == "issued"
    assert Decimal(erp["total"]) == a.total + b.total
    assert sorted(s["contract_id"] for s in erp["sections"]) == sorted(cids)
    assert {line["section_id"] for line in erp["lines"]} == {a.invoice_id, b.invoice_id}
    for cid in cids:
        assert await items(sandbox, "/erp/v1/invoices", contract_id=cid) == []
    # The books see each section once, as the contract's invoice.
    issued = {i.invoice_id for cid in cids for i in ledger.issued_invoices(cid)}
    assert issued == {a.invoice_id, b.invoice_id}

    # The same section sent again is answered again, and recorded once.
    section = InvoiceSection(
        section_id=a.invoice_id,
        contract_id=cids[0],
        period="2026-10",
        subtotal=a.subtotal,
        tax=a.tax,
        total=a.total,
        invoice_date=date(2026, 12, 1),
        tax_code="resent",
    )
    await temporal_client.get_workflow_handle(billing_id).signal(SIGNAL_SUBMIT_SECTION, section)
    for _ in range(100):
        answered = await customer_billing_status(temporal_client, billing_id)
        if any("sent again: answered again" in line for line in answered.history):
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"the section sent again was not answered: {answered}")
    again = await _invoiced(temporal_client, cids[0])
    assert again.invoices == first.invoices

    total = a.total + b.total
    await record_customer_payment(
        temporal_client, billing_id, _payment("PAY-ALL", a.number or "", total)
    )
    # Sent twice: applied once.
    await record_customer_payment(
        temporal_client, billing_id, _payment("PAY-ALL", a.number or "", total)
    )
    for cid, inv in zip(cids, (a, b), strict=True):
        paid = await _paid(temporal_client, cid, inv.total)
        assert paid.invoices[0].status == "paid" and paid.balance_due == 0
    [erp] = await items(sandbox, "/erp/v1/invoices", contract_id=billing_id)
    assert erp["status"] == "paid"
    assert len(await items(sandbox, "/erp/v1/payments", invoice_id=erp["invoice_id"])) == 1
    status: CustomerBillingStatus = await customer_billing_status(temporal_client, billing_id)
    assert [i.number for i in status.invoices] == [a.number] and status.payments == ["PAY-ALL"]
    for cid in cids:
        await replay(temporal_client, cid)
    await _replay_customer(temporal_client, billing_id)

    # Reconciliation finds no difference: the sections and their parts of the payment are
    # the customer's invoice and payment in the ERP, not records missing from the contracts.
    assert await reconcile_differences(settings, ledger, cids) == []


@pytest.mark.usefixtures("worker")
async def test_a_partial_payment_goes_to_the_sections_in_order(
    temporal_client: Client, settings: Settings, sandbox: httpx.AsyncClient, ledger: Ledger
) -> None:
    cids, billing_id = await _two_contracts(temporal_client, settings, sandbox, ("10", "5"))
    statuses = [await _invoiced(temporal_client, cid) for cid in cids]
    # Sections appear on the invoice in the order of their contract ids.
    ordered = sorted(statuses, key=lambda s: s.contract_id)
    first, second = (s.invoices[0] for s in ordered)
    number = first.number or ""
    await record_customer_payment(
        temporal_client, billing_id, _payment("PAY-PART", number, first.total + Decimal(10))
    )
    paid_first = await _paid(temporal_client, ordered[0].contract_id, first.total)
    paid_second = await _paid(temporal_client, ordered[1].contract_id, Decimal(10))
    assert paid_first.invoices[0].status == "paid"
    assert paid_second.invoices[0].status == "partially_paid"
    assert paid_second.balance_due == second.total - 10
    # The books age each section on its own contract; the consolidated invoice is not beside.
    assert second.invoice_date is not None
    report = aging(ledger, legal_entity="US01", as_of=second.invoice_date)
    open_ = {i.invoice_id: i.open_balance for i in report.invoices}
    assert first.invoice_id not in open_ and open_[second.invoice_id] == second.total - 10
    assert first.consolidated_invoice_id not in open_
    await _replay_customer(temporal_client, billing_id)


@pytest.fixture(scope="module")
def api_url(settings: Settings) -> Iterator[str]:
    with serve(settings) as url:
        yield url


@pytest.mark.usefixtures("worker")
async def test_a_signed_payment_webhook_for_the_consolidated_invoice_pays_both(
    temporal_client: Client, settings: Settings, sandbox: httpx.AsyncClient, api_url: str
) -> None:
    cids, billing_id = await _two_contracts(temporal_client, settings, sandbox, ("3", "4"))
    a, b = [(await _invoiced(temporal_client, cid)).invoices[0] for cid in cids]
    body = json.dumps(
        {
            "id": f"evt_{uuid.uuid4().hex}",
            "type": "payment.succeeded",
            "data": {
                "payment_id": f"PAY-{uuid.uuid4().hex[:8]}",
                "invoice_id": a.consolidated_invoice_id,
                "amount": str(a.total + b.total),
                "currency": "USD",
                "received_on": "2026-11-20",
            },
        }
    ).encode()
    headers = {SIGNATURE_HEADER: sign(body, WEBHOOK_SECRET), "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=api_url, timeout=60) as api:
        for _ in range(2):
            answer = await api.post("/webhooks/payments", content=body, headers=headers)
            assert answer.status_code == 202, answer.text
        for cid, inv in zip(cids, (a, b), strict=True):
            assert (await _paid(temporal_client, cid, inv.total)).invoices[0].status == "paid"
        seen = await api.get(f"/api/customer-billing/{billing_id}")
        assert seen.status_code == 200, seen.text
        [invoice] = seen.json()["invoices"]
        assert invoice["number"] == a.number and len(invoice["sections"]) == 2
        assert all(Decimal(s["paid"]) == Decimal(s["total"]) for s in invoice["sections"])
        missing = await api.get("/api/customer-billing/customer-billing-US01-NOBODY-USD")
        assert missing.status_code == 404, missing.text
    for cid, inv in zip(cids, (a, b), strict=True):
        assert (await _paid(temporal_client, cid, inv.total)).invoices[0].status == "paid"
    [erp] = await items(sandbox, "/erp/v1/invoices", contract_id=billing_id)
    assert erp["status"] == "paid"
    assert len(await items(sandbox, "/erp/v1/payments", invoice_id=erp["invoice_id"])) == 1


@pytest.mark.usefixtures("worker")
async def test_lost_answers_of_the_erp_make_nothing_twice(
    temporal_client: Client, settings: Settings, sandbox: httpx.AsyncClient, faults: Any
) -> None:
    # The ERP makes the invoice, issues it and records the payment, but its answers are lost
    # (twice, and once): every retry finds what the first attempt made.
    await faults(
        system="erp", path_prefix="/invoices", method="POST", status=503, times=2, phase="after"
    )
    await faults(
        system="erp", path_prefix="/payments", method="POST", status=503, times=1, phase="after"
    )
    cids, billing_id = await _two_contracts(temporal_client, settings, sandbox, ("1", "2"))
    a, b = [(await _invoiced(temporal_client, cid)).invoices[0] for cid in cids]
    [erp] = await items(sandbox, "/erp/v1/invoices", contract_id=billing_id)
    assert Decimal(erp["total"]) == a.total + b.total
    await record_customer_payment(
        temporal_client, billing_id, _payment("PAY-LOST", a.number or "", a.total + b.total)
    )
    for cid, inv in zip(cids, (a, b), strict=True):
        assert (await _paid(temporal_client, cid, inv.total)).invoices[0].status == "paid"
    assert len(await items(sandbox, "/erp/v1/payments", invoice_id=erp["invoice_id"])) == 1
    rules = (await sandbox.get("/_admin/faults")).json()["rules"]
    assert sorted(r["fired"] for r in rules) == [1, 2], rules
    await _replay_customer(temporal_client, billing_id)
