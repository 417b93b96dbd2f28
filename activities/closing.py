"""Closing a contract in the systems of record once it is delivered, billed and paid."""

from __future__ import annotations

import asyncio

from temporalio import activity

from activities.base import StepActivities, error_classes, idempotency_key
from domain.steps import CLOSE_CONTRACT, CloseContractInput


class ClosingActivities(StepActivities):
    @activity.defn(name=CLOSE_CONTRACT)
    async def close_contract(self, step: CloseContractInput) -> None:
        """Close the PSA project (no more time) and then the ERP project.

        Projects the workflow does not know of are taken from the ledger's cross-references:
        a project that a provisioning step made before it failed for good.
        """
        known = await asyncio.to_thread(self.ledger.xrefs_for, step.contract_id)
        refs = {**known, **step.refs}
        async with error_classes(CLOSE_CONTRACT):
            if psa_project := refs.get("psa_project_id"):
                await self.connectors.psa.close_project(
                    psa_project, idempotency_key=idempotency_key("psa", "close")
                )
            if erp_project := refs.get("erp_project_id"):
                await self.connectors.erp.close_project(
                    erp_project, idempotency_key=idempotency_key("erp", "close")
                )
        await self.write_audit(step.contract_id, step.audit)
