"""Writes to c2c's own ledger: the audit trail and the exception queue."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import activity

from activities.base import StepActivities, workflow_run
from c2c.telemetry import record_exception_opened, record_exception_resolved
from domain.models import OpenException
from domain.names import ExceptionQueue, Stage
from domain.steps import (
    ESCALATE_EXCEPTION,
    LOOK_UP_PAYMENT,
    OPEN_EXCEPTION,
    RECORD_ARRIVAL_ORDER,
    RECORD_AUDIT,
    RECORD_INVOICE_REVIEW,
    RESOLVE_EXCEPTION_RECORD,
    ArrivalOrder,
    EscalateExceptionInput,
    ExceptionOpened,
    InvoiceReviewInput,
    OpenExceptionInput,
    PaymentKnown,
    PaymentLookUp,
    ResolveExceptionInput,
    StepInput,
)
from ledger import ExceptionIn
from ledger.models import ExceptionStatus


class LedgerActivities(StepActivities):
    @activity.defn(name=RECORD_AUDIT)
    async def record_audit(self, step: StepInput) -> None:
        """Write audit entries that no business step has carried yet."""
        await self.write_audit(step.contract_id, step.audit, step.open_exceptions)

    @activity.defn(name=RECORD_ARRIVAL_ORDER)
    async def record_arrival_order(self, step: ArrivalOrder) -> ArrivalOrder:
        """Keep, in the workflow's history, the order in which messages that arrived together
        were first received: a replay takes it from there (see the workflow's inbox)."""
        await self.write_audit(step.contract_id, step.audit, step.open_exceptions)
        return ArrivalOrder(contract_id=step.contract_id, arrivals=step.arrivals)

    @activity.defn(name=RECORD_INVOICE_REVIEW)
    async def record_invoice_review(self, step: InvoiceReviewInput) -> None:
        """Record a draft invoice's rejection: it leaves the drafts waiting for review."""
        await self.write_audit(step.contract_id, step.audit, step.open_exceptions)
        await asyncio.to_thread(
            self.ledger.review_draft,
            step.draft_id,
            "rejected",
            at=step.at,
            by=step.operator,
            reason=step.reason,
        )

    @activity.defn(name=LOOK_UP_PAYMENT)
    async def look_up_payment(self, step: PaymentLookUp) -> PaymentKnown:
        """Whether the contract applied the payment before: a contract that continued as new
        carries only its latest payment ids, and the ledger holds every one it applied."""
        await self.write_audit(step.contract_id, step.audit, step.open_exceptions)
        known = await asyncio.to_thread(
            self.ledger.payment_recorded, step.contract_id, step.payment_id
        )
        return PaymentKnown(known=known)

    @activity.defn(name=OPEN_EXCEPTION)
    async def open_exception(self, step: OpenExceptionInput) -> ExceptionOpened:
        """Put the exception in the queue that owns the fix (configuration decides which)."""
        await self.write_audit(step.contract_id, step.audit, step.open_exceptions)
        queue = self.settings.queue_for(step.system, step.code)
        record = await asyncio.to_thread(
            self.ledger.open_exception,
            ExceptionIn(
                exception_id=step.exception_id,
                contract_id=step.contract_id,
                workflow_id=workflow_run()[0],
                stage=step.stage,
                system=step.system,
                code=step.code,
                message=step.message,
                queue=queue,
                step=step.step,
                retryable=step.retryable,
                opened_at=step.opened_at,
            ),
        )
        record_exception_opened(queue=record.queue, system=record.system, code=record.code)
        return ExceptionOpened(
            exception=OpenException(
                exception_id=record.exception_id,
                stage=Stage(record.stage),
                system=record.system,
                code=record.code,
                message=record.message,
                queue=ExceptionQueue(record.queue),
                opened_at=record.opened_at,
                step=record.step,
                retryable=record.retryable,
                sla_due_at=_sla_due(record.opened_at, self.settings.sla_for(queue)),
            )
        )

    @activity.defn(name=ESCALATE_EXCEPTION)
    async def escalate_exception(self, step: EscalateExceptionInput) -> None:
        """Mark an exception escalated: it outlived its queue's SLA."""
        await self.write_audit(step.contract_id, step.audit, step.open_exceptions)
        await asyncio.to_thread(self.ledger.escalate_exception, step.exception_id, step.at)

    @activity.defn(name=RESOLVE_EXCEPTION_RECORD)
    async def resolve_exception_record(self, step: ResolveExceptionInput) -> None:
        """Record the operator's decision on an exception."""
        await self.write_audit(step.contract_id, step.audit, step.open_exceptions)
        record = await asyncio.to_thread(
            self.ledger.resolve_exception,
            step.exception_id,
            ExceptionStatus.after(step.action),
            step.operator,
            step.note,
            step.at,
        )
        record_exception_resolved(queue=record.queue, action=step.action)


def _sla_due(opened_at: datetime, hours: float | None) -> datetime | None:
    return None if hours is None else opened_at + timedelta(hours=hours)
