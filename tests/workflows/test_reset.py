"""An operator's reset re-runs steps that already ran; nothing is created twice.

The contract is active, amended and invoiced; a reset to its first workflow task runs the
whole process again in a new run, with the period close and the amendment delivered again.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import httpx
import pytest
from temporalio.client import Client

from c2c.settings import Settings
from domain.models import Amendment, ClosePeriod
from domain.names import contract_workflow_id
from starter.api.contracts import close_period_for, get_status
from starter.api.updates import amend
from starter.ops.reset import FIRST, LAST_FAILURE, ResetRefused, reset_contract
from tests.workflows.billing_helpers import start_active, wait_invoices
from tests.workflows.helpers import add_time, items, wait_for

pytestmark = pytest.mark.usefixtures("worker")


async def test_a_reset_to_the_first_task_creates_nothing_twice(
    temporal_client: Client, settings: Settings, sandbox: httpx.AsyncClient
) -> None:
    cid, status = await start_active(temporal_client, settings, end_date="2026-12-31")
    refs = status.refs
    rate = Amendment(
        amendment_id="A-1",
        effective_date=date(2026, 10, 16),
        rate_card=[{"role": "Analyst", "hourly_rate": "125.00"}],
        reason="rate review",
    )
    assert (await amend(temporal_client, cid, rate)).status == "applied"
    await add_time(sandbox, refs["psa_project_id"], "Analyst", "2026-10-20", "10")
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-10"))
    status = await wait_invoices(temporal_client, cid, 1)
    invoice = status.invoices[0]
    assert invoice.subtotal == Decimal("1250.00")

    with pytest.raises(ResetRefused, match="no failure"):
        await reset_contract(temporal_client, cid, LAST_FAILURE, reason="test")
    done = await reset_contract(temporal_client, cid, FIRST, reason="operator test")
    assert done.new_run_id != done.old_run_id
    assert done.amendments_redelivered == ["A-1"]

    handle = temporal_client.get_workflow_handle(contract_workflow_id(cid))
    assert (await handle.describe()).run_id == done.new_run_id
    status = await wait_for(
        temporal_client,
        cid,
        lambda s: len(s.invoices) == 1 and bool(s.amendments) and s.stage == "active",
        what="the new run to bill again",
    )
    # The new run found every record the old one made, and made no other.
    assert status.refs == refs
    assert [i.invoice_id for i in status.invoices] == [invoice.invoice_id]
    assert [a.status for a in status.amendments] == ["applied"]
    assert len(await items(sandbox, "/erp/v1/customers", crm_account_id="ACME-US")) == 1
    assert len(await items(sandbox, "/erp/v1/projects", contract_id=cid)) == 1
    [contract] = await items(sandbox, "/erp/v1/contracts", contract_id=cid)
    assert [a["amendment_id"] for a in contract["amendments"]] == ["A-1"]
    assert contract["billing_schedule"] is not None
    assert len(await items(sandbox, "/psa/v1/projects", contract_id=cid)) == 1
    assert len(await items(sandbox, "/erp/v1/invoices", contract_id=cid)) == 1
    revenue = await items(sandbox, f"/erp/v1/contracts/{refs['erp_contract_id']}/revenue")
    assert [Decimal(r["amount"]) for r in revenue] == [Decimal("1250.00")]
    assert (await get_status(temporal_client, cid)).balance_due == invoice.total
