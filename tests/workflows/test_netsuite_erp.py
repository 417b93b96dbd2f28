"""Contracts routed by legal entity: US01 on NetSuite from approval to closed over real HTTP,
a contract pinned to the reference ERP staying there, and a missing segment mapping held
for finance at validation."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal

import httpx
import pytest_asyncio
from temporalio.client import Client

from c2c.settings import Settings
from domain.models import ClosePeriod, PaymentReceived
from ledger import Ledger
from starter.api.contracts import close_period_for, contract_result, record_payment, start_contract
from tests.netsuite_support import DOCUMENT_FIELD, netsuite, segments
from tests.workflows.helpers import add_time, approval, items, wait_for, wait_stage
from worker import contract_worker


@pytest_asyncio.fixture
async def routed(temporal_client: Client, settings: Settings) -> AsyncIterator[Settings]:
    """A worker whose US01 contracts go to the sandbox's NetSuite, the rest to the reference."""
    routed_settings = settings.model_copy(
        update={
            "task_queue": f"c2c-netsuite-{uuid.uuid4().hex[:8]}",
            "erp_routes": {"US01": "netsuite", "*": "reference"},
            "netsuite_segments": segments(),
            "netsuite_document_field": DOCUMENT_FIELD,
        }
    )
    async with contract_worker(temporal_client, routed_settings):
        yield routed_settings


async def test_a_us01_contract_runs_on_netsuite_from_approval_to_closed(
    temporal_client: Client,
    routed: Settings,
    sandbox: httpx.AsyncClient,
    sandbox_url: str,
    ledger: Ledger,
) -> None:
    event = approval()
    cid = event.contract_id
    await start_contract(temporal_client, event, task_queue=routed.task_queue)
    status = await wait_stage(temporal_client, cid, "active")
    refs = status.refs
    psa = refs["psa_project_id"]
    await add_time(sandbox, psa, "Senior Consultant", "2026-10-05", "8")
    await add_time(sandbox, psa, "Analyst", "2026-10-06", "6")
    await add_time(sandbox, psa, "Senior Consultant", "2026-10-20", "4")

    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-10"))
    status = await wait_for(temporal_client, cid, lambda s: bool(s.invoices), what="an invoice")
    invoice = status.invoices[0]
    # 12 h x 200.00 + 6 h x 120.00 = 3120.00; California 7.25 % per line: 174.00 + 52.20.
    assert (invoice.subtotal, invoice.tax, invoice.total) == (
        Decimal("3120.00"),
        Decimal("226.20"),
        Decimal("3346.20"),
    )
    assert invoice.status == "issued" and invoice.number and invoice.number.startswith("INV")
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
    final = (await contract_result(temporal_client, cid)).status
    assert final.stage == "closed" and final.balance_due == 0
    assert [i.status for i in final.invoices] == ["paid"]

    # NetSuite holds the contract's records, each once; the reference ERP holds none.
    erp = netsuite(sandbox_url)
    try:
        invoices = await erp.list_invoices(cid)
        assert [(i.invoice_id, i.status, i.total) for i in invoices] == [
            (invoice.invoice_id, "paid", Decimal("3346.20"))
        ]
        payments = await erp.list_payments(contract_id=cid)
        assert [p.amount for p in payments] == [Decimal("3346.20")]
        project = await erp.request("GET", f"/services/rest/record/v1/job/{refs['erp_project_id']}")
        assert project["custentity_c2c_contract_id"] == cid
        assert project["entityStatus"]["id"] == segments().job_status_closed
        revenue = await erp.get_balances(refs["erp_contract_id"])
        assert revenue.billed_to_date == Decimal("3120.00") and revenue.receivable == 0
        # The invoice links its PDF in c2c's archive (custom body fields).
        record = await erp._read("invoice", invoice.invoice_id)
        assert record is not None
        assert record[DOCUMENT_FIELD] == (
            f"{routed.api_url}/api/invoices/{invoice.invoice_id}/document"
        )
    finally:
        await erp.aclose()
    assert await items(sandbox, "/erp/v1/projects", contract_id=cid) == []
    assert await items(sandbox, "/erp/v1/invoices", contract_id=cid) == []

    # The ledger names the ERP that holds the contract's records.
    pins = [x.external_id for x in ledger.list_xrefs(cid) if x.kind == "erp_system"]
    assert pins == ["netsuite"]
    assert ledger.find_contract_by_xref("erp", "invoice", invoice.invoice_id) == cid


async def test_a_contract_pinned_to_the_reference_erp_stays_there_when_its_entity_moves(
    temporal_client: Client,
    routed: Settings,
    sandbox: httpx.AsyncClient,
    sandbox_url: str,
    ledger: Ledger,
) -> None:
    event = approval()
    cid = event.contract_id
    # Started while US01 was on the reference ERP: its first ERP step pinned it there.
    ledger.record_xref(cid, "erp", "erp_system", "reference")
    await start_contract(temporal_client, event, task_queue=routed.task_queue)
    status = await wait_stage(temporal_client, cid, "active")
    projects = await items(sandbox, "/erp/v1/projects", contract_id=cid)
    assert [p["project_id"] for p in projects] == [status.refs["erp_project_id"]]
    erp = netsuite(sandbox_url)
    try:
        jobs = await erp.request(
            "GET",
            "/services/rest/record/v1/job",
            params={"q": f'custentity_c2c_contract_id IS "{cid}"'},
        )
    finally:
        await erp.aclose()
    assert jobs["items"] == []


async def test_a_role_without_netsuite_segments_is_a_finance_exception_at_validation(
    temporal_client: Client, routed: Settings, sandbox_url: str
) -> None:
    event = approval(
        rate_card=[
            {"role": "Senior Consultant", "hourly_rate": "200.00"},
            {"role": "Architect", "hourly_rate": "250.00"},
        ]
    )
    cid = event.contract_id
    await start_contract(temporal_client, event, task_queue=routed.task_queue)
    status = await wait_stage(temporal_client, cid, "on_hold")
    (held,) = status.open_exceptions
    assert (held.code, held.queue) == ("netsuite_mapping_missing", "finance")
    assert "Architect" in held.message
    assert "erp_customer_id" not in status.refs


async def test_an_entity_routed_to_the_reference_erp_is_provisioned_there_beside_netsuite(
    temporal_client: Client,
    routed: Settings,
    sandbox: httpx.AsyncClient,
    ledger: Ledger,
) -> None:
    event = approval(legal_entity="UK01")
    cid = event.contract_id
    await start_contract(temporal_client, event, task_queue=routed.task_queue)
    status = await wait_stage(temporal_client, cid, "active")
    projects = await items(sandbox, "/erp/v1/projects", contract_id=cid)
    assert [p["project_id"] for p in projects] == [status.refs["erp_project_id"]]
    pins = [x.external_id for x in ledger.list_xrefs(cid) if x.kind == "erp_system"]
    assert pins == ["reference"]
