"""Corrections: an issued invoice is never edited; it is credited by a credit note."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

from temporalio import activity

from activities.base import StepActivities, error_classes, idempotency_key
from activities.billing import post_revenue
from domain.models import CreditNoteSummary
from domain.steps import ISSUE_CREDIT_NOTE, CreditNoteInput, CreditNoteIssued
from ledger import CreditNoteFactIn


class CreditNoteActivities(StepActivities):
    @activity.defn(name=ISSUE_CREDIT_NOTE)
    async def issue_credit_note(self, step: CreditNoteInput) -> CreditNoteIssued:
        """Credit ``step.amount`` of an invoice, with the tax the engine gives that amount."""
        await self.write_audit(step.contract_id, step.audit)
        async with error_classes(ISSUE_CREDIT_NOTE):
            quote = await self.connectors.tax.calculate(
                country=step.country,
                region=step.region,
                legal_entity=step.legal_entity,
                currency=step.currency,
                on=step.on,
                lines=[("1", step.amount)],
                document_id=step.credit_note_id,
            )
            tax = quote.total_tax
            note = await self.connectors.erp.create_credit_note(
                step.invoice_id,
                {
                    "credit_note_id": step.credit_note_id,
                    "reason": step.reason,
                    "lines": [
                        {
                            "line_id": "1",
                            "description": step.reason,
                            "amount": format(step.amount, "f"),
                            "tax_amount": format(tax, "f"),
                        }
                    ],
                    "subtotal": format(step.amount, "f"),
                    "tax": format(tax, "f"),
                    "total": format(step.amount + tax, "f"),
                },
                idempotency_key=idempotency_key("credit-note", step.credit_note_id),
            )
            revenue = None
            if step.erp_contract_id is not None:
                plan = step.revenue
                revenue = await post_revenue(
                    self.connectors.erp,
                    step.erp_contract_id,
                    plan,
                    plan.amount if plan else Decimal(0),
                    step.revenue_method,
                )
        await self.record_ref(step.contract_id, "erp", "credit_note", note.credit_note_id)
        fact = CreditNoteFactIn(
            credit_note_id=note.credit_note_id,
            contract_id=step.contract_id,
            invoice_id=note.invoice_id,
            currency=note.currency,
            total=note.total,
            issued_on=step.on,
            issued_at=datetime.now(UTC),
        )
        await asyncio.to_thread(self.ledger.record_credit_note_fact, fact)
        return CreditNoteIssued(
            credit_note=CreditNoteSummary(
                credit_note_id=note.credit_note_id,
                number=note.number,
                invoice_id=note.invoice_id,
                subtotal=note.subtotal,
                tax=note.tax,
                total=note.total,
                reason=step.reason,
            ),
            applied=note.applied_amount,
            unapplied=note.unapplied_amount,
            revenue=revenue,
        )
