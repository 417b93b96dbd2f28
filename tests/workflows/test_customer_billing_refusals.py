"""A consolidated invoice the ERP refuses, on the real dev server, against the sandbox.

A business rejection of the invoice keeps the sections waiting and tries again at the
period's cut-off: never at once and again, which would spin the customer's billing workflow
and fill its history. Once the ERP takes it, the invoice is made once.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from temporalio.client import Client

from c2c.settings import Settings
from starter.api.contracts import customer_billing_status
from tests.workflows.billing_helpers import consolidated_invoiced, two_consolidating_contracts
from tests.workflows.helpers import items
from tests.workflows.test_consolidated_invoicing import _replay_customer
from worker import contract_worker

CUTOFF_S = 2.0


async def _fired(sandbox: httpx.AsyncClient) -> int:
    rules = (await sandbox.get("/_admin/faults")).json()["rules"]
    return sum(r["fired"] for r in rules)


async def test_a_refused_invoice_is_tried_again_at_the_cut_off(
    temporal_client: Client, settings: Settings, sandbox: httpx.AsyncClient, faults: Any
) -> None:
    own = settings.model_copy(
        update={
            "task_queue": f"c2c-refused-{uuid.uuid4().hex[:8]}",
            "consolidation_cutoff_s": CUTOFF_S,
        }
    )
    async with contract_worker(temporal_client, own):
        await faults(
            system="erp",
            path_prefix="/invoices",
            method="POST",
            status=422,
            times=2,
            phase="before",
        )
        cids, billing_id = await two_consolidating_contracts(
            temporal_client, own, sandbox, ("3", "1")
        )
        # Refused once; the next attempt waits for the cut-off.
        for _ in range(100):
            if await _fired(sandbox) >= 1:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(CUTOFF_S / 2)
        assert await _fired(sandbox) == 1
        waiting = await customer_billing_status(temporal_client, billing_id)
        assert list(waiting.waiting) == ["2026-10"] and waiting.invoices == []

        # Refused again at the cut-off, then taken at the next: one invoice, both sections.
        sections = [(await consolidated_invoiced(temporal_client, cid)).invoices[0] for cid in cids]
        assert await _fired(sandbox) == 2
        [erp] = await items(sandbox, "/erp/v1/invoices", contract_id=billing_id)
        assert {s.consolidated_invoice_id for s in sections} == {erp["invoice_id"]}
        status = await customer_billing_status(temporal_client, billing_id)
        refusals = [line for line in status.history if "refused by the ERP" in line]
        assert len(refusals) == 2, status.history
        await _replay_customer(temporal_client, billing_id)
