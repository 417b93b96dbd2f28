"""Telling the ERP about work above a not-to-exceed cap that an operator wrote off."""

from __future__ import annotations

from temporalio import activity

from activities.base import StepActivities, error_classes, idempotency_key
from c2c.logs import get_logger
from domain.steps import RECORD_WRITE_OFF, WriteOffInput, WriteOffRecorded
from domain.write_models import WriteOffDraft

log = get_logger("c2c.activities")


class WriteOffActivities(StepActivities):
    @activity.defn(name=RECORD_WRITE_OFF)
    async def record_write_off(self, step: WriteOffInput) -> WriteOffRecorded:
        """Record the write-off in the contract's ERP, once by its ``write_off_id`` (derived
        from the contract and the decision, so a retry or a reset finds the first)."""
        async with error_classes(RECORD_WRITE_OFF):
            recorded = await self.connectors.erp.record_write_off(
                WriteOffDraft(
                    write_off_id=step.write_off_id,
                    contract_id=step.contract_id,
                    erp_contract_id=step.refs.get("erp_contract_id"),
                    erp_project_id=step.refs.get("erp_project_id"),
                    legal_entity=step.legal_entity,
                    period=step.period,
                    amount=step.amount,
                    currency=step.currency,
                    reason=step.reason,
                    operator=step.operator,
                    written_off_on=step.on,
                ),
                idempotency_key=idempotency_key("erp", "write-off", step.write_off_id),
            )
        await self.write_audit(step.contract_id, step.audit)
        log.info("write-off recorded in the ERP", erp_ref=recorded.erp_ref)
        return WriteOffRecorded(write_off_id=recorded.write_off_id, erp_ref=recorded.erp_ref)
