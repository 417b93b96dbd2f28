"""One time-and-materials contract from CLM approval to ``closed``, on the real dev server.

The assertions read the sandbox ERP and PSA over HTTP: one customer, one project, one invoice
per closed period, and the invoice equal to approved hours x rates + tax.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import httpx
import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, Worker

from c2c.settings import Settings
from domain.models import ClosePeriod, PaymentReceived
from ledger import Ledger
from starter.api.contracts import (
    close_period_for,
    contract_result,
    record_payment,
    start_contract,
)
from tests.workflows.helpers import add_time, approval, items, wait_for, wait_stage
from workflows.contract_to_cash import ContractToCash

pytestmark = pytest.mark.usefixtures("worker")


async def test_time_and_materials_contract_from_approval_to_closed(
    temporal_client: Client,
    settings: Settings,
    sandbox: httpx.AsyncClient,
    ledger: Ledger,
    worker: Worker,
) -> None:
    event = approval()
    cid = event.contract_id
    started = await start_contract(temporal_client, event, task_queue=settings.task_queue)
    assert not started.duplicate

    status = await wait_stage(temporal_client, cid, "active")
    refs = status.refs
    assert set(refs) >= {"erp_customer_id", "erp_project_id", "erp_contract_id", "psa_project_id"}

    psa = refs["psa_project_id"]
    await add_time(sandbox, psa, "Senior Consultant", "2026-10-05", "8")
    await add_time(sandbox, psa, "Analyst", "2026-10-06", "6")
    await add_time(sandbox, psa, "Senior Consultant", "2026-10-20", "4")
    await add_time(sandbox, psa, "Analyst", "2026-10-21", "3", approved=False)
    await add_time(sandbox, psa, "Analyst", "2026-10-22", "2", billable=False)

    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-10"))
    status = await wait_for(temporal_client, cid, lambda s: bool(s.invoices), what="an invoice")
    invoice = status.invoices[0]
    # 12 h x 200.00 + 6 h x 120.00 = 3120.00; California 7.25 % per line: 174.00 + 52.20.
    assert invoice.subtotal == Decimal("3120.00")
    assert invoice.tax == Decimal("226.20")
    assert invoice.total == Decimal("3346.20")
    assert invoice.period == "2026-10"
    assert invoice.number and invoice.number.startswith("US01-")
    assert invoice.status == "issued"
    assert status.balance_due == Decimal("3346.20")

    # Closing the same period again bills nothing twice.
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-10"))

    await record_payment(
        temporal_client,
        cid,
        PaymentReceived(
            payment_id=f"pay-{cid}",
            invoice_id=invoice.invoice_id,
            amount=invoice.total,
            currency="USD",
            received_on=date(2026, 11, 20),
        ),
    )
    summary = await contract_result(temporal_client, cid)
    final = summary.status
    assert final.stage == "closed"
    assert final.balance_due == 0
    assert [i.status for i in final.invoices] == ["paid"]

    # The finished history replays on today's code: no change has made it non-deterministic.
    history = await temporal_client.get_workflow_handle(f"contract-{cid}").fetch_history()
    await Replayer(
        workflows=[ContractToCash], data_converter=pydantic_data_converter
    ).replay_workflow(history)

    # The systems of record hold exactly one of each, in their final state.
    customers = await items(sandbox, "/erp/v1/customers", crm_account_id="ACME-US")
    assert [c["customer_id"] for c in customers] == [refs["erp_customer_id"]]
    projects = await items(sandbox, "/erp/v1/projects", contract_id=cid)
    assert [(p["project_id"], p["status"]) for p in projects] == [
        (refs["erp_project_id"], "closed")
    ]
    invoices = await items(sandbox, "/erp/v1/invoices", contract_id=cid)
    assert len(invoices) == 1
    assert invoices[0]["status"] == "paid"
    assert Decimal(invoices[0]["total"]) == Decimal("3346.20")
    payments = await items(sandbox, "/erp/v1/payments", invoice_id=invoice.invoice_id)
    assert len(payments) == 1
    psa_projects = await items(sandbox, "/psa/v1/projects", contract_id=cid)
    assert [(p["project_id"], p["status"]) for p in psa_projects] == [(psa, "closed")]
    unbilled = await items(sandbox, f"/psa/v1/projects/{psa}/time-entries", billed="false")
    assert sorted((Decimal(e["hours"]), e["approved"], e["billable"]) for e in unbilled) == [
        (Decimal(2), True, False),
        (Decimal(3), False, True),
    ]

    # The ledger has the cross-references and every stage transition, in order.
    xrefs = ledger.xrefs_for(cid)
    assert xrefs["erp_customer_id"] == refs["erp_customer_id"]
    assert xrefs["psa_project_id"] == psa
    assert ledger.find_contract_by_xref("erp", "invoice", invoice.invoice_id) == cid
    stages: list[str] = []
    for event_row in ledger.audit_trail(cid):
        if not stages or stages[-1] != event_row.stage:
            stages.append(event_row.stage)
    assert stages == [
        "received",
        "validating",
        "provisioning_erp",
        "activating_psa",
        "active",
        "closing",
        "closed",
    ]
    record = ledger.get_contract(cid)
    assert record is not None and record.stage == "closed"
    assert record.active_at is not None and record.closed_at is not None


async def test_a_repeated_approval_starts_nothing_new(
    temporal_client: Client, settings: Settings, sandbox: httpx.AsyncClient
) -> None:
    event = approval()
    first = await start_contract(temporal_client, event, task_queue=settings.task_queue)
    await wait_stage(temporal_client, event.contract_id, "active")
    again = await start_contract(temporal_client, event, task_queue=settings.task_queue)
    assert again.duplicate
    assert again.workflow_id == first.workflow_id
    assert again.run_id == first.run_id
    assert len(await items(sandbox, "/erp/v1/projects", contract_id=event.contract_id)) == 1
    assert len(await items(sandbox, "/psa/v1/projects", contract_id=event.contract_id)) == 1
    assert len(await items(sandbox, "/erp/v1/customers", crm_account_id="ACME-US")) == 1
