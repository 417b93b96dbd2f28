"""Corrections: an issued invoice is never edited; it is credited by a credit note."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial

from temporalio import activity

from activities.base import StepActivities, business_error, error_classes, idempotency_key
from activities.billing import invoice_tax_code, post_revenue, revenue_fact
from connectors.records import ErpCreditNote, ErpInvoice
from domain.errors import Rejection
from domain.models import CreditNoteSummary, SectionCredited
from domain.money import money_sum
from domain.names import SIGNAL_SECTION_CREDITED
from domain.steps import ISSUE_CREDIT_NOTE, CreditedSection, CreditNoteInput, CreditNoteIssued
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
        section = step.section
        async with error_classes(ISSUE_CREDIT_NOTE):
            erp_invoice_id = section.consolidated_invoice_id if section else step.invoice_id
            invoice = await erp.get_invoice(erp_invoice_id)
            if invoice is None:
                raise business_error(
                    Rejection(
                        system="erp",
                        code="invoice_not_found",
                        message=f"invoice {erp_invoice_id} does not exist",
                        field="invoice_id",
                    )
                )
            # Notes made before this one (a retried attempt's own note is this one).
            owner = invoice.contract_id if section else step.contract_id
            notes = await erp.list_credit_notes(owner, invoice_id=invoice.invoice_id)
            earlier = [n for n in notes if n.credit_note_id != step.credit_note_id]
            # What the note is bounded by: the invoice, or the contract's section of it.
            bound = _Bound.of_invoice(invoice, earlier, step.currency)
            if section is not None:
                bound = _Bound.of_section(section, step.invoice_id, earlier, step.currency)
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
                reference_code=bound.reference_code,
            )
            quote = await engine.create_or_adjust(document)
            try:
                tax = credit_note_tax(
                    invoice_subtotal=bound.subtotal,
                    invoice_tax=bound.tax,
                    credited_subtotal=bound.credited_subtotal,
                    credited_tax=bound.credited_tax,
                    amount=step.amount,
                    quoted_tax=max(-quote.total_tax, Decimal(0)),
                    currency=step.currency,
                )
            except ValueError as exc:
                raise business_error(
                    Rejection(
                        system="erp",
                        code="exceeds_invoice",
                        message=f"credit note {step.credit_note_id} on {step.invoice_id}: {exc}",
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
                    CreditNoteLineDraft(
                        line_id="1",
                        description=step.reason,
                        amount=step.amount,
                        section_id=step.invoice_id if section else None,
                    ),
                ),
            )
            draft = apply_tax(
                draft,
                TaxResult(
                    code=code, lines=(TaxLineResult(number="1", amount=step.amount, tax=tax),)
                ),
            )
            note = await erp.create_credit_note(
                invoice.invoice_id,
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
            if section is not None:
                # The customer's billing workflow (the consolidated invoice's owner in the
                # ERP) allocates later payments to the section's balance less the credit.
                await self._tell_customer_billing(invoice.contract_id, step, note)
        # The invoice the contract holds: its own, or its section (never the consolidated one).
        fact = CreditNoteFactIn(
            credit_note_id=note.credit_note_id,
            contract_id=step.contract_id,
            invoice_id=step.invoice_id,
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
                invoice_id=step.invoice_id,
                subtotal=note.subtotal,
                tax=note.tax,
                total=note.total,
                reason=step.reason,
            ),
            applied=note.applied_amount,
            unapplied=note.unapplied_amount,
            revenue=revenue,
        )

    async def _tell_customer_billing(
        self, workflow_id: str, step: CreditNoteInput, note: ErpCreditNote
    ) -> None:
        """Signal the section's credit to its customer's billing workflow; the credit note's
        id makes a repeat (a retried step, a reset contract) count once there."""
        credited = SectionCredited(
            section_id=step.invoice_id,
            credit_note_id=note.credit_note_id,
            total=note.total,
        )
        await (
            activity.client()
            .get_workflow_handle(workflow_id)
            .signal(SIGNAL_SECTION_CREDITED, credited.model_dump(mode="json"))
        )


@dataclass(frozen=True)
class _Bound:
    """What a credit note may credit: an invoice's figures less its earlier notes, and the
    tax document its return document refers to."""

    subtotal: Decimal
    tax: Decimal
    credited_subtotal: Decimal
    credited_tax: Decimal
    reference_code: str | None

    @classmethod
    def of_invoice(cls, invoice: ErpInvoice, earlier: list[ErpCreditNote], ccy: str) -> _Bound:
        return cls(
            subtotal=invoice.subtotal,
            tax=invoice.tax,
            credited_subtotal=money_sum([n.subtotal for n in earlier], ccy),
            credited_tax=money_sum([n.tax for n in earlier], ccy),
            reference_code=invoice_tax_code(invoice.reference) if invoice.reference else None,
        )

    @classmethod
    def of_section(
        cls, section: CreditedSection, section_id: str, earlier: list[ErpCreditNote], ccy: str
    ) -> _Bound:
        """A section of a consolidated invoice: its own figures, less the earlier notes'
        lines that name it; its tax document is the one the contract saved for it."""
        lines = [line for n in earlier for line in n.lines if line.section_id == section_id]
        return cls(
            subtotal=section.subtotal,
            tax=section.tax,
            credited_subtotal=money_sum([line.amount for line in lines], ccy),
            credited_tax=money_sum([line.tax_amount for line in lines], ccy),
            reference_code=invoice_tax_code(section.reference),
        )
