"""Contracts routed by legal entity to Business Central: UK01 from approval to invoiced, paid
and closed over real HTTP against the sandbox's Business Central, a missing account mapping
held for finance at validation, and three contracts at once on three ERPs."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal

import httpx
import pytest_asyncio
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from activities.reconcile import ReconcileActivities
from c2c.settings import Settings
from connectors.registry import build_connectors
from domain.models import ClosePeriod, PaymentReceived
from domain.reconcile import ReconcileBatch
from ledger import Ledger
from starter.api.contracts import close_period_for, contract_result, record_payment, start_contract
from tests.bc_support import business_central, dimensions
from tests.netsuite_support import netsuite, segments
from tests.workflows.helpers import add_time, approval, items, wait_for, wait_stage
from worker import contract_worker


@pytest_asyncio.fixture
async def routed(temporal_client: Client, settings: Settings) -> AsyncIterator[Settings]:
    """A worker whose UK01 contracts go to the sandbox's Business Central, US01's to its
    NetSuite, and the rest to the reference ERP."""
    routed_settings = settings.model_copy(
        update={
            "task_queue": f"c2c-bc-{uuid.uuid4().hex[:8]}",
            "erp_routes": {"US01": "netsuite", "UK01": "business-central", "*": "reference"},
            "netsuite_segments": segments(),
            "bc_dimensions": dimensions(),
        }
    )
    async with contract_worker(temporal_client, routed_settings):
        yield routed_settings


async def _invoice_and_pay(
    client: Client, sandbox: httpx.AsyncClient, cid: str, currency: str
) -> tuple[str, Decimal]:
    """Time for October, the period closed, the invoice paid in full: its id and total."""
    status = await wait_stage(client, cid, "active")
    psa = status.refs["psa_project_id"]
    await add_time(sandbox, psa, "Senior Consultant", "2026-10-05", "8")
    await add_time(sandbox, psa, "Analyst", "2026-10-06", "6")
    await add_time(sandbox, psa, "Senior Consultant", "2026-10-20", "4")
    await close_period_for(client, cid, ClosePeriod(period="2026-10"))
    status = await wait_for(client, cid, lambda s: bool(s.invoices), what="an invoice")
    invoice = status.invoices[0]
    # 12 h x 200.00 + 6 h x 120.00 = 3120.00, and the tax engine's tax on it.
    assert invoice.subtotal == Decimal("3120.00")
    assert invoice.total == invoice.subtotal + invoice.tax
    await record_payment(
        client,
        cid,
        PaymentReceived(
            payment_id=f"pay-{cid}",
            invoice_id=invoice.invoice_id,
            amount=invoice.total,
            currency=currency,
            received_on=date(2026, 11, 20),
        ),
    )
    final = (await contract_result(client, cid)).status
    assert final.stage == "closed" and final.balance_due == 0
    assert [i.status for i in final.invoices] == ["paid"]
    return invoice.invoice_id, invoice.total


async def test_a_uk01_contract_runs_on_business_central_from_approval_to_closed(
    temporal_client: Client,
    routed: Settings,
    sandbox: httpx.AsyncClient,
    sandbox_url: str,
    ledger: Ledger,
) -> None:
    event = approval(legal_entity="UK01", currency="GBP")
    cid = event.contract_id
    await start_contract(temporal_client, event, task_queue=routed.task_queue)
    invoice_id, total = await _invoice_and_pay(temporal_client, sandbox, cid, "GBP")
    assert invoice_id.startswith("UK01:")

    # Business Central holds the contract's records, each once; the reference ERP none.
    erp = business_central(sandbox_url)
    try:
        invoices = await erp.list_invoices(cid)
        assert [(i.invoice_id, i.status, i.total) for i in invoices] == [
            (invoice_id, "paid", total)
        ]
        assert invoices[0].number and invoices[0].number.startswith("PS-INV")
        payments = await erp.list_payments(contract_id=cid)
        assert [(p.amount, p.unapplied_amount) for p in payments] == [(total, 0)]
        status = (await contract_result(temporal_client, cid)).status
        balances = await erp.get_balances(status.refs["erp_contract_id"])
        assert balances.billed_to_date == Decimal("3120.00") and balances.receivable == 0
        contract = await erp.call(
            "GET",
            "UK01",
            f"/contracts({status.refs['erp_contract_id'].split(':', 1)[1]})",
            api="api/c2c/contractToCash/v1.0",
        )
        assert contract["contractId"] == cid and contract["projectStatus"] == "Completed"
        assert contract["billingSchedule"] and contract["revenueSchedule"]
        # The invoice's PDF is attached to it (a UK entity sends no e-invoice).
        guid = invoice_id.split(":", 1)[1]
        attached = await erp._filter("UK01", "documentAttachments", f"parentId eq '{guid}'")
        assert [(a["parentType"], a["fileName"]) for a in attached] == [
            ("Sales Invoice", f"{invoices[0].number}.pdf")
        ]
        assert attached[0]["byteSize"] > 0
    finally:
        await erp.aclose()
    assert await items(sandbox, "/erp/v1/projects", contract_id=cid) == []
    assert await items(sandbox, "/erp/v1/invoices", contract_id=cid) == []
    pins = [x.external_id for x in ledger.list_xrefs(cid) if x.kind == "erp_system"]
    assert pins == ["business-central"]
    assert ledger.find_contract_by_xref("erp", "invoice", invoice_id) == cid


async def test_a_role_without_a_business_central_account_is_a_finance_exception_at_validation(
    temporal_client: Client, routed: Settings
) -> None:
    event = approval(
        legal_entity="UK01",
        currency="GBP",
        rate_card=[
            {"role": "Senior Consultant", "hourly_rate": "200.00"},
            {"role": "Architect", "hourly_rate": "250.00"},
        ],
    )
    cid = event.contract_id
    await start_contract(temporal_client, event, task_queue=routed.task_queue)
    status = await wait_stage(temporal_client, cid, "on_hold")
    (held,) = status.open_exceptions
    assert (held.code, held.queue) == ("bc_mapping_missing", "finance")
    assert "Architect" in held.message and "C2C_BC_DIMENSIONS" in held.message
    assert "erp_customer_id" not in status.refs


async def test_three_contracts_at_once_on_netsuite_business_central_and_the_reference_erp(
    temporal_client: Client,
    routed: Settings,
    sandbox: httpx.AsyncClient,
    sandbox_url: str,
    ledger: Ledger,
) -> None:
    us = approval(legal_entity="US01")
    uk = approval(legal_entity="UK01", currency="GBP")
    de = approval(legal_entity="DE01", currency="EUR")
    for event in (us, uk, de):
        await start_contract(temporal_client, event, task_queue=routed.task_queue)
    results = await asyncio.gather(
        _invoice_and_pay(temporal_client, sandbox, us.contract_id, "USD"),
        _invoice_and_pay(temporal_client, sandbox, uk.contract_id, "GBP"),
        _invoice_and_pay(temporal_client, sandbox, de.contract_id, "EUR"),
    )
    pins = {
        event.legal_entity: [
            x.external_id for x in ledger.list_xrefs(event.contract_id) if x.kind == "erp_system"
        ]
        for event in (us, uk, de)
    }
    assert pins == {
        "US01": ["netsuite"],
        "UK01": ["business-central"],
        "DE01": ["reference"],
    }
    ns = netsuite(sandbox_url)
    bc = business_central(sandbox_url)
    try:
        assert [i.invoice_id for i in await ns.list_invoices(us.contract_id)] == [results[0][0]]
        assert [i.invoice_id for i in await bc.list_invoices(uk.contract_id)] == [results[1][0]]
        assert await bc.list_invoices(us.contract_id) == []
        assert await ns.list_invoices(uk.contract_id) == []
    finally:
        await ns.aclose()
        await bc.aclose()
    reference = await items(sandbox, "/erp/v1/invoices", contract_id=de.contract_id)
    assert [i["invoice_id"] for i in reference] == [results[2][0]]
    for event in (us, uk):
        assert await items(sandbox, "/erp/v1/invoices", contract_id=event.contract_id) == []

    # Reconciliation reads each contract's records from the ERP that holds them; none of
    # them bills on a consolidated invoice, so no customer's invoice is looked for.
    connectors = build_connectors(routed)
    try:
        compare = ReconcileActivities(connectors, ledger, routed).compare_ledger_with_erp
        batch = ReconcileBatch(contract_ids=[e.contract_id for e in (us, uk, de)])
        assert await ActivityEnvironment().run(compare, batch) == []
    finally:
        await connectors.aclose()
