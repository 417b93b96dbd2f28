"""Corrections: an issued invoice is never edited; it is credited by a credit note."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from functools import partial

from temporalio import activity

from activities.base import StepActivities, business_error, error_classes, idempotency_key
from activities.billing import invoice_tax_code, post_revenue, revenue_fact
from domain.errors import Rejection
from domain.models import CreditNoteSummary
from domain.money import money_sum
from domain.steps import ISSUE_CREDIT_NOTE, CreditNoteInput, CreditNoteIssued
from domain.tax import DEFAULT_TAX_CODE, apply_tax, credit_note_tax
from domain.write_models import (
    CreditNoteDraft,
    CreditNoteLineDraft,
    TaxLineRequest,
    TaxLineResult,
    TaxRequest,
    TaxResult,
)
from ledger import CreditNoteFactIn


class CreditNoteActivities(StepActivities):
    @activity.defn(name=ISSUE_CREDIT_NOTE)
    async def issue_credit_note(self, step: CreditNoteInput) -> CreditNoteIssued:
        """Credit ``step.amount`` of an invoice, taxed at the invoice's tax date and rates.

        The tax engine quotes the note on a return document that refers to the invoice's;
        ``credit_note_tax`` then bounds it by the tax left on the invoice (the note that
        credits the rest takes exactly the rest), the document takes that figure, and it is
        committed once the ERP holds the note.
        """
        await self.audit_if_retried(step.contract_id, step.audit)
        erp, engine = self.connectors.erp, self.connectors.tax
        async with error_classes(ISSUE_CREDIT_NOTE):
            invoice = await erp.get_invoice(step.invoice_id)
            if invoice is None:
                raise business_error(
                    Rejection(
                        system="erp",
                        code="invoice_not_found",
                        message=f"invoice {step.invoice_id} does not exist",
                        field="invoice_id",
                    )
                )
            # Notes made before this one (a retried attempt's own note is this one).
            notes = await erp.list_credit_notes(step.contract_id, invoice_id=invoice.invoice_id)
            earlier = [n for n in notes if n.credit_note_id != step.credit_note_id]
            code = idempotency_key("credit-note", step.credit_note_id)
            document = TaxRequest(
                code=code,
                type="ReturnInvoice",
                company=step.legal_entity,
                on=step.on,
                tax_date=invoice.invoice_date,
                customer_code=invoice.customer_id or step.contract_id,
                customer_tax_id=step.customer_tax_id,
                ship_from_country=step.seller_country,
                ship_to_country=step.country,
                ship_to_region=step.region,
                currency=step.currency,
                lines=[
                    TaxLineRequest(
                        number="1",
                        amount=-step.amount,
                        tax_code=DEFAULT_TAX_CODE,
                        description=step.reason,
                    )
                ],
                reference_code=invoice_tax_code(invoice.reference) if invoice.reference else None,
            )
            quote = await engine.create_or_adjust(document)
            try:
                tax = credit_note_tax(
                    invoice_subtotal=invoice.subtotal,
                    invoice_tax=invoice.tax,
                    credited_subtotal=money_sum([n.subtotal for n in earlier], step.currency),
                    credited_tax=money_sum([n.tax for n in earlier], step.currency),
                    amount=step.amount,
                    quoted_tax=max(-quote.total_tax, Decimal(0)),
                    currency=step.currency,
                )
            except ValueError as exc:
                raise business_error(
                    Rejection(
                        system="erp",
                        code="exceeds_invoice",
                        message=f"credit note {step.credit_note_id} on {invoice.invoice_id}: {exc}",
                        field="amount",
                    )
                ) from exc
            if -tax != quote.total_tax:
                [line] = document.lines
                document = document.model_copy(
                    update={"lines": (line.model_copy(update={"tax_amount": -tax}),)}
                )
                await engine.create_or_adjust(document)
            draft = CreditNoteDraft(
                credit_note_id=step.credit_note_id,
                reason=step.reason,
                currency=step.currency,
                lines=(
                    CreditNoteLineDraft(line_id="1", description=step.reason, amount=step.amount),
                ),
            )
            draft = apply_tax(
                draft,
                TaxResult(
                    code=code, lines=(TaxLineResult(number="1", amount=step.amount, tax=tax),)
                ),
            )
            note = await erp.create_credit_note(
                step.invoice_id,
                draft,
                idempotency_key=idempotency_key("credit-note", step.credit_note_id),
            )
            await engine.commit_document(
                step.legal_entity,
                code,
                idempotency_key=idempotency_key("credit-note", step.credit_note_id, "tax-commit"),
            )
            revenue = posting = None
            if step.erp_contract_id is not None:
                plan = step.revenue
                amount = plan.amount if plan else Decimal(0)
                revenue = await post_revenue(
                    self.connectors.erp, step.erp_contract_id, plan, amount, step.revenue_method
                )
                posting = await revenue_fact(
                    self.connectors.erp,
                    step.contract_id,
                    plan,
                    amount,
                    currency=step.currency,
                    functional_currency=invoice.functional_currency,
                )
        fact = CreditNoteFactIn(
            credit_note_id=note.credit_note_id,
            contract_id=step.contract_id,
            invoice_id=note.invoice_id,
            currency=note.currency,
            total=note.total,
            subtotal=note.subtotal,
            tax=note.tax,
            issued_on=step.on,
            issued_at=datetime.now(UTC),
        )
        await self.record_results(
            step.contract_id,
            step.audit,
            self.xref_write(step.contract_id, "erp", "credit_note", note.credit_note_id),
            partial(self.ledger.record_credit_note_fact, fact),
            None if posting is None else partial(self.ledger.record_revenue_fact, posting),
        )
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
