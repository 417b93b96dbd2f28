"""Consolidated invoicing: the steps between contracts, their customer's billing and the ERP.

A contract reaches its customer's billing workflow by signal-with-start (the first contract
starts it); the customer's workflow makes one ERP invoice of its contracts' sections (found by
its reference before it is made under a key of the same name, then issued, the sections' tax
documents committed) and records each payment of it on it; each contract records its section
as the invoice it holds, and its part of each payment, in the ledger (the books see every
section once, and the consolidated invoice never beside them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial

from temporalio import activity
from temporalio.common import WorkflowIDConflictPolicy

from activities.base import StepActivities, error_classes, idempotency_key, workflow_run
from connectors.ports import TaxPort
from domain.consolidation import (
    ConsolidatedInvoiceIssued,
    InvoiceSection,
    SectionShare,
    consolidated_invoice_data,
)
from domain.errors import NotFound
from domain.money import round_money
from domain.names import (
    CUSTOMER_BILLING_WORKFLOW_TYPE,
    SIGNAL_JOIN_BILLING,
    SIGNAL_LEAVE_BILLING,
    SIGNAL_SUBMIT_SECTION,
)
from domain.steps import (
    APPLY_CONSOLIDATED_PAYMENT,
    ISSUE_CONSOLIDATED_INVOICE,
    LOOK_UP_CONSOLIDATED_PAYMENT,
    RECORD_CONSOLIDATED_INVOICE_PAID,
    RECORD_SECTION_INVOICED,
    SEND_TO_CUSTOMER_BILLING,
    ConsolidatedInvoiceInput,
    ConsolidatedInvoicePaidInput,
    ConsolidatedPaymentInput,
    CustomerBillingMessage,
    PaymentApplied,
    PaymentKnown,
    PaymentLookUp,
    SectionInvoicedInput,
)
from domain.write_models import (
    InvoiceDraft,
    InvoiceLineDraft,
    InvoiceSectionDraft,
    PaymentDraft,
)
from ledger import InvoiceIssuedIn, OutboundEventType


async def tax_mentions(
    tax: TaxPort, legal_entity: str, sections: Sequence[InvoiceSection]
) -> list[str]:
    """The mentions the tax engine requires on an invoice of ``sections`` (a reverse
    charge's legal text), each once, read from the sections' tax documents."""
    mentions: list[str] = []
    for section in sections:
        if section.tax_code is None:
            continue
        document = await tax.get_document(legal_entity, section.tax_code)
        mentions += [m for m in (document.messages if document else []) if m not in mentions]
    return mentions


class ConsolidationActivities(StepActivities):
    @activity.defn(name=SEND_TO_CUSTOMER_BILLING)
    async def send_to_customer_billing(self, step: CustomerBillingMessage) -> None:
        """Signal the customer's billing workflow, starting it if it is not running. The
        message's ids (contract, section) make a resend a no-op there."""
        await self.write_audit(step.contract_id, step.audit)
        start = step.start.model_copy(
            update={
                "cutoff_s": self.settings.consolidation_cutoff_s,
                "continue_as_new_events": self.settings.continue_as_new_events,
            }
        )
        if step.join is not None:
            name, message = SIGNAL_JOIN_BILLING, step.join.model_dump(mode="json")
        elif step.section is not None:
            name, message = SIGNAL_SUBMIT_SECTION, step.section.model_dump(mode="json")
        else:
            assert step.leave is not None
            name, message = SIGNAL_LEAVE_BILLING, step.leave.model_dump(mode="json")
        await activity.client().start_workflow(
            CUSTOMER_BILLING_WORKFLOW_TYPE,
            start,
            id=step.workflow_id,
            task_queue=activity.info().task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            start_signal=name,
            start_signal_args=[message],
        )

    @activity.defn(name=RECORD_SECTION_INVOICED)
    async def record_section_invoiced(self, step: SectionInvoicedInput) -> None:
        """The section's work marked invoiced in the PSA (by the consolidated invoice), and the
        section recorded in the ledger as the invoice the contract holds."""
        await self.write_audit(step.contract_id, step.audit)
        answer = step.invoiced
        psa, erp = self.connectors.psa, self.connectors.erp
        async with error_classes(RECORD_SECTION_INVOICED):
            project_id = step.refs.get("psa_project_id")
            if project_id:
                batch_id = f"{workflow_run()[0]}.{answer.period}"
                try:
                    await psa.mark_batch_invoiced(
                        project_id,
                        batch_id,
                        answer.consolidated_invoice_id,
                        idempotency_key=idempotency_key("batch", answer.period, "invoiced"),
                    )
                except NotFound:
                    activity.logger.info("no billing batch %s: nothing frozen", batch_id)
            invoice = await erp.get_invoice(answer.consolidated_invoice_id)
        await self.write_together(
            partial(
                self.ledger.record_invoice_issued,
                InvoiceIssuedIn(
                    contract_id=step.contract_id,
                    reference=answer.period,
                    invoice_id=answer.section_id,
                    invoice_date=answer.invoice_date,
                    due_on=answer.due_on,
                    total=answer.total,
                    subtotal=answer.subtotal,
                    tax=answer.tax,
                    functional_currency=invoice.functional_currency if invoice else None,
                    exchange_rate=invoice.exchange_rate if invoice else None,
                    issued_at=datetime.now(UTC),
                ),
            ),
        )

    @activity.defn(name=ISSUE_CONSOLIDATED_INVOICE)
    async def issue_consolidated_invoice(
        self, step: ConsolidatedInvoiceInput
    ) -> ConsolidatedInvoiceIssued:
        """One ERP invoice of the sections, one section per contract, issued; each section's
        tax document committed. Safe to repeat: the invoice is found by its reference first,
        and made under a key of the same name."""
        erp, tax = self.connectors.erp, self.connectors.tax
        key = step.key
        async with error_classes(ISSUE_CONSOLIDATED_INVOICE):
            invoice = await erp.find_invoice(step.contract_id, reference=step.reference)
            if invoice is None:
                draft = await self._draft(step)
                invoice = await erp.create_invoice(
                    draft, idempotency_key=idempotency_key("invoice", step.reference)
                )
            if invoice.status == "draft":
                invoice = await erp.issue_invoice(
                    invoice.invoice_id,
                    idempotency_key=idempotency_key("invoice", step.reference, "issue"),
                )
            for section in step.sections:
                if section.tax_code is None:
                    continue
                try:
                    await tax.commit_document(
                        key.legal_entity,
                        section.tax_code,
                        idempotency_key=idempotency_key(section.section_id, "tax-commit"),
                    )
                except NotFound:
                    activity.logger.info("no tax document %s", section.tax_code)
        assert invoice.number is not None  # issued
        issued = ConsolidatedInvoiceIssued(
            invoice_id=invoice.invoice_id,
            number=invoice.number,
            invoice_date=invoice.invoice_date,
            due_on=invoice.due_on,
            subtotal=invoice.subtotal,
            tax=invoice.tax,
            total=invoice.total,
        )
        shares = [
            SectionShare(section_id=s.section_id, contract_id=s.contract_id, total=s.total)
            for s in step.sections
        ]
        data = consolidated_invoice_data(step.contract_id, key, step.period, issued, shares)
        # The invoice's cross-reference and its event, in one transaction.
        await self.write_together(
            partial(self.ledger.record_xref, step.contract_id, "erp", "invoice", issued.invoice_id),
            partial(
                self.ledger.record_consolidated_invoice_event,
                OutboundEventType.CONSOLIDATED_INVOICE_ISSUED,
                data,
                datetime.now(UTC),
            ),
        )
        return issued

    async def _draft(self, step: ConsolidatedInvoiceInput) -> InvoiceDraft:
        """The consolidated invoice: the sections' lines as the ledger keeps them, each named
        by its section; due at the shortest payment terms of its sections."""
        ccy = step.key.currency
        lines: list[InvoiceLineDraft] = []
        sections: list[InvoiceSectionDraft] = []
        for n, section in enumerate(step.sections, start=1):
            row = await asyncio.to_thread(self.ledger.get_draft, section.section_id)
            if row is None or section.erp_contract_id is None:
                continue
            sections.append(
                InvoiceSectionDraft(
                    section_id=section.section_id,
                    contract_id=section.contract_id,
                    erp_contract_id=section.erp_contract_id,
                    subtotal=row.subtotal,
                    tax=row.tax,
                    total=row.total,
                )
            )
            for line in row.lines:
                drafted = InvoiceLineDraft.model_validate(line)
                lines.append(
                    drafted.model_copy(
                        update={
                            "line_id": f"{n}.{drafted.line_id}",
                            "description": f"{section.contract_id}: {drafted.description}",
                            "section_id": section.section_id,
                        }
                    )
                )
        terms = min(s.payment_terms_days for s in step.sections)
        subtotal = sum((s.subtotal for s in sections), Decimal(0))
        tax = sum((s.tax for s in sections), Decimal(0))
        first = next(s for s in step.sections if s.erp_contract_id)
        draft = InvoiceDraft(
            contract_id=step.contract_id,
            reference=step.reference,
            erp_contract_id=first.erp_contract_id,
            customer_id=step.erp_customer_id,
            project_id=first.erp_project_id,
            legal_entity=step.key.legal_entity,
            currency=ccy,
            period=step.period,
            invoice_date=step.invoice_date,
            due_on=step.invoice_date + timedelta(days=terms),
            lines=tuple(lines),
            subtotal=subtotal,
            tax=tax,
            total=subtotal + tax,
            po_number=step.key.po_number,
            sections=tuple(sections),
            notes=tuple(
                await tax_mentions(self.connectors.tax, step.key.legal_entity, step.sections)
            ),
        )
        entity = await self.connectors.erp.get_legal_entity(step.key.legal_entity)
        functional = entity.functional_currency if entity else None
        if functional:
            rate = Decimal(1)
            if functional != ccy:
                rate = await self.connectors.erp.get_exchange_rate(
                    ccy, functional, step.invoice_date
                )
            f_subtotal = round_money(subtotal * rate, functional)
            f_tax = round_money(tax * rate, functional)
            draft = draft.model_copy(
                update={
                    "functional_currency": functional,
                    "exchange_rate": rate,
                    "functional_subtotal": f_subtotal,
                    "functional_tax": f_tax,
                    "functional_total": f_subtotal + f_tax,
                }
            )
        return draft

    @activity.defn(name=APPLY_CONSOLIDATED_PAYMENT)
    async def apply_consolidated_payment(self, step: ConsolidatedPaymentInput) -> PaymentApplied:
        """Record a payment on the consolidated invoice in the ERP; its id makes it once. The
        ledger's payment facts are the contracts' parts of it (``record_section_payment``)."""
        p = step.payment
        async with error_classes(APPLY_CONSOLIDATED_PAYMENT):
            payment = await self.connectors.erp.record_payment(
                PaymentDraft(
                    payment_id=p.payment_id,
                    contract_id=step.contract_id,
                    invoice_id=step.invoice_id,
                    amount=p.amount,
                    currency=p.currency,
                    received_on=p.received_on,
                ),
                idempotency_key=idempotency_key("payment", p.payment_id),
            )
        await asyncio.to_thread(
            self.ledger.record_xref, step.contract_id, "erp", "payment", payment.payment_id
        )
        return PaymentApplied(
            invoice_id=step.invoice_id,
            applied=payment.applied_amount,
            unapplied=payment.unapplied_amount,
            amount_paid=payment.applied_amount,
            invoice_status="applied",
        )

    @activity.defn(name=RECORD_CONSOLIDATED_INVOICE_PAID)
    async def record_consolidated_invoice_paid(self, step: ConsolidatedInvoicePaidInput) -> None:
        """Record in the ledger that a consolidated invoice is paid (its sections' balance
        reached zero): its ``consolidated_invoice.paid`` event, once by the invoice's id."""
        invoice = step.invoice
        data = consolidated_invoice_data(
            step.contract_id, step.key, invoice.period, invoice, invoice.sections
        )
        data |= {
            "amount_paid": str(sum((s.paid for s in invoice.sections), Decimal(0))),
            "credited": str(sum((s.credited for s in invoice.sections), Decimal(0))),
            "paid_on": step.paid_on.isoformat(),
        }
        await asyncio.to_thread(
            self.ledger.record_consolidated_invoice_event,
            OutboundEventType.CONSOLIDATED_INVOICE_PAID,
            data,
            datetime.now(UTC),
        )

    @activity.defn(name=LOOK_UP_CONSOLIDATED_PAYMENT)
    async def look_up_consolidated_payment(self, step: PaymentLookUp) -> PaymentKnown:
        """Whether the customer's billing recorded the payment in the ERP before: a run
        carries only its latest payment ids, and the ledger keeps the cross-reference of every
        payment ``apply_consolidated_payment`` recorded."""
        owner = await asyncio.to_thread(
            self.ledger.find_contract_by_xref, "erp", "payment", step.payment_id
        )
        return PaymentKnown(known=owner == step.contract_id)
