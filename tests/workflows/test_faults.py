"""Faults in the middle of provisioning and billing lose nothing and duplicate nothing.

The sandbox fails requests as real systems do: ``503`` before doing anything, ``429`` with
``Retry-After``, and ``503`` after the write was made (the answer lost on its way back).
Temporal retries each step; idempotency keys and find-before-create make the retries safe.
"""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from c2c.settings import Settings
from domain.models import ClosePeriod, ResolveException
from starter.api.contracts import (
    close_period_for,
    get_status,
    resolve_exception,
    start_contract,
    with_retrying,
)
from tests.workflows.helpers import add_time, approval, items, wait_for, wait_stage
from worker import contract_worker

pytestmark = pytest.mark.usefixtures("worker")


async def test_faults_during_provisioning_and_billing_create_each_record_once(
    temporal_client: Client, settings: Settings, sandbox: httpx.AsyncClient, faults: Any
) -> None:
    event = approval()
    cid = event.contract_id
    await faults(system="erp", path_prefix="/projects", method="POST", status=503, times=2)
    await faults(
        system="erp", path_prefix="/contracts", method="POST", status=503, phase="after", times=1
    )
    await faults(
        system="psa", path_prefix="/projects", method="POST", status=429, retry_after_s=1, times=1
    )
    await start_contract(temporal_client, event, task_queue=settings.task_queue)
    status = await wait_stage(temporal_client, cid, "active")

    assert len(await items(sandbox, "/erp/v1/projects", contract_id=cid)) == 1
    assert len(await items(sandbox, "/erp/v1/contracts", contract_id=cid)) == 1
    assert len(await items(sandbox, "/psa/v1/projects", contract_id=cid)) == 1

    psa = status.refs["psa_project_id"]
    await add_time(sandbox, psa, "Analyst", "2026-10-02", "10")
    # The invoice is created, its answer lost; then issuing it fails once more.
    await faults(
        system="erp", path_prefix="/invoices", method="POST", status=503, phase="after", times=2
    )
    await faults(system="tax", path_prefix="/transactions", status=500, times=1)
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-10"))
    status = await wait_for(temporal_client, cid, lambda s: bool(s.invoices), what="an invoice")

    [invoice] = status.invoices
    assert invoice.subtotal == Decimal("1200.00")
    assert invoice.total == Decimal("1287.00")  # 7.25 % California tax
    assert invoice.status == "issued" and invoice.number
    invoices = await items(sandbox, "/erp/v1/invoices", contract_id=cid)
    assert [(i["invoice_id"], i["status"]) for i in invoices] == [(invoice.invoice_id, "issued")]
    billed = await items(sandbox, f"/psa/v1/projects/{psa}/time-entries", billed="true")
    assert [e["invoice_id"] for e in billed] == [invoice.invoice_id]
    assert status.open_exceptions == []


async def test_a_step_that_keeps_failing_becomes_an_integration_exception_after_the_budget(
    temporal_client: Client, settings: Settings, sandbox: httpx.AsyncClient, faults: Any
) -> None:
    # A worker whose budget is 2 attempts: the ERP keeps answering 503 to project creation.
    own = settings.model_copy(
        update={"task_queue": f"{settings.task_queue}-budget", "step_max_attempts": 2}
    )
    async with contract_worker(temporal_client, own):
        await faults(system="erp", path_prefix="/projects", method="POST", status=503)
        event = approval()
        await start_contract(temporal_client, event, task_queue=own.task_queue)
        held = await wait_stage(temporal_client, event.contract_id, "on_hold")
        [exception] = held.open_exceptions
        assert (exception.system, exception.code, exception.queue) == (
            "erp",
            "retries_exhausted",
            "integration",
        )
        assert exception.step == "provision_erp"
        stats = (await sandbox.get("/_admin/stats")).json()
        assert "projects" in str(stats)
        # The ERP recovers; the operator retries; nothing is created twice.
        await sandbox.delete("/_admin/faults")
        await resolve_exception(
            temporal_client,
            event.contract_id,
            ResolveException(
                exception_id=exception.exception_id, action="retry", operator="ops@c2c"
            ),
        )
        await wait_stage(temporal_client, event.contract_id, "active")
        assert len(await items(sandbox, "/erp/v1/projects", contract_id=event.contract_id)) == 1


async def test_the_status_says_which_step_is_retried_how_and_when_next(
    temporal_client: Client, settings: Settings, faults: Any
) -> None:
    """While the CRM answers 503, the API and the CLI say where the contract is stuck."""
    # The contract's own account: read on every validation (legal entities are kept a while).
    await faults(system="crm", path_prefix="/accounts", status=503, times=3)
    event = approval()
    await start_contract(temporal_client, event, task_queue=settings.task_queue)

    async def retried() -> str:
        for _ in range(100):
            status = await with_retrying(
                temporal_client, await get_status(temporal_client, event.contract_id)
            )
            if status.retrying:
                return status.retrying
            await asyncio.sleep(0.1)
        raise AssertionError("no retry seen")

    text = await retried()
    assert text.startswith("validating: validate_contract: crm: ")
    assert "503" in text
    assert re.search(r"\(attempt [23] of 14, next in \d+ s\)$", text), text
    active = await wait_stage(temporal_client, event.contract_id, "active")
    assert (await with_retrying(temporal_client, active)).retrying is None
