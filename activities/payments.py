"""Cash: payments recorded against invoices in the ERP, and unapplied cash applied later."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import partial

from temporalio import activity

from activities.base import StepActivities, error_classes, idempotency_key
from connectors.records import ErpInvoice
from domain.steps import (
    APPLY_CASH,
    APPLY_PAYMENT,
    RECORD_SECTION_PAYMENT,
    ApplyCashInput,
    ApplyPaymentInput,
    PaymentApplied,
)
from domain.write_models import CashApplicationDraft, PaymentDraft
from ledger import CashApplicationFactIn, PaymentFactIn


class PaymentActivities(StepActivities):
    @activity.defn(name=APPLY_PAYMENT)
    async def apply_payment(self, step: ApplyPaymentInput) -> PaymentApplied:
        """Record the payment, against an invoice or as unapplied cash; its id keys it once."""
        await self.audit_if_retried(step.contract_id, step.audit)
        p = step.payment
        erp = self.connectors.erp
        async with error_classes(APPLY_PAYMENT):
            payment = await erp.record_payment(
                PaymentDraft(
                    payment_id=p.payment_id,
                    invoice_id=step.invoice_id,
                    contract_id=step.contract_id,
                    amount=p.amount,
                    currency=p.currency,
                    received_on=p.received_on,
                ),
                idempotency_key=idempotency_key("payment", p.payment_id),
            )
            invoice = await erp.get_invoice(step.invoice_id) if step.invoice_id else None
            functional, rate = await self._rate(
                step.contract_id, invoice, p.currency, p.received_on
            )
        fact = PaymentFactIn(
            payment_id=payment.payment_id,
            contract_id=step.contract_id,
            invoice_id=step.invoice_id,
            currency=payment.currency,
            amount=payment.amount,
            received_on=p.received_on,
            recorded_at=datetime.now(UTC),
            applied_amount=payment.applied_amount,
            functional_currency=functional,
            exchange_rate=rate,
        )
        await self.record_results(
            step.contract_id,
            step.audit,
            self.xref_write(step.contract_id, "erp", "payment", payment.payment_id),
            partial(self.ledger.record_payment_fact, fact),
        )
        return PaymentApplied(
            invoice_id=step.invoice_id,
            applied=payment.applied_amount,
            unapplied=payment.unapplied_amount,
            amount_paid=invoice.amount_paid if invoice else payment.applied_amount,
            invoice_status=invoice.status if invoice else "unapplied",
        )

    @activity.defn(name=RECORD_SECTION_PAYMENT)
    async def record_section_payment(self, step: ApplyPaymentInput) -> PaymentApplied:
        """Record the contract's part of a consolidated invoice's payment in the ledger: the
        customer's billing workflow recorded the payment itself on that invoice in the ERP."""
        await self.write_audit(step.contract_id, step.audit)
        p = step.payment
        async with error_classes(RECORD_SECTION_PAYMENT):
            functional, rate = await self._rate(step.contract_id, None, p.currency, p.received_on)
        fact = PaymentFactIn(
            payment_id=p.payment_id,
            contract_id=step.contract_id,
            invoice_id=step.invoice_id,
            currency=p.currency,
            amount=p.amount,
            received_on=p.received_on,
            recorded_at=datetime.now(UTC),
            applied_amount=p.amount if step.invoice_id else Decimal(0),
            functional_currency=functional,
            exchange_rate=rate,
        )
        await asyncio.to_thread(self.ledger.record_payment_fact, fact)
        return PaymentApplied(
            invoice_id=step.invoice_id,
            applied=fact.applied_amount or Decimal(0),
            unapplied=p.amount - (fact.applied_amount or Decimal(0)),
            amount_paid=fact.applied_amount or Decimal(0),
            invoice_status="applied",
        )

    async def _rate(
        self, contract_id: str, invoice: ErpInvoice | None, currency: str, on: date
    ) -> tuple[str | None, Decimal | None]:
        """The legal entity's currency and the payment's rate to it on the day received (for
        the books: the realised FX gain or loss against the invoice's rate); ``None`` when the
        entity is not known."""
        functional = invoice.functional_currency if invoice else None
        if functional is None:
            contract = await asyncio.to_thread(self.ledger.get_contract, contract_id)
            entity = contract.legal_entity if contract else None
            found = await self.reference.legal_entity(entity) if entity else None
            functional = found.functional_currency if found else None
        if functional is None:
            return None, None
        if functional == currency:
            return functional, Decimal(1)
        return functional, await self.connectors.erp.get_exchange_rate(currency, functional, on)

    @activity.defn(name=APPLY_CASH)
    async def apply_unapplied_cash(self, step: ApplyCashInput) -> None:
        """Apply cash held for the contract (overpayments, credit) to a new invoice."""
        await self.write_audit(step.contract_id, step.audit)
        erp = self.connectors.erp
        async with error_classes(APPLY_CASH):
            for a in step.applications:
                application = CashApplicationDraft(
                    application_id=f"{a.source_id}:{a.invoice_id}",
                    invoice_id=a.invoice_id,
                    amount=a.amount,
                )
                key = idempotency_key("apply", a.source_id, a.invoice_id)
                if a.credit_note_id is not None:
                    await erp.apply_credit(a.credit_note_id, application, idempotency_key=key)
                else:
                    await erp.apply_payment(a.source_id, application, idempotency_key=key)
        # For the books: the AR aging sees the invoice settled by cash held before it.
        issued = await asyncio.to_thread(self.ledger.issued_invoices, step.contract_id)
        currencies = {i.invoice_id: i.currency for i in issued}
        now = datetime.now(UTC)
        for a in step.applications:
            currency = currencies.get(a.invoice_id)
            if currency is None:
                async with error_classes(APPLY_CASH):
                    invoice = await erp.get_invoice(a.invoice_id)
                if invoice is None:
                    continue  # the ERP took the application; it knows the invoice's books
                currency = invoice.currency
            fact = CashApplicationFactIn(
                application_id=f"{a.source_id}:{a.invoice_id}",
                contract_id=step.contract_id,
                invoice_id=a.invoice_id,
                source_id=a.source_id,
                credit_note_id=a.credit_note_id,
                currency=currency,
                amount=a.amount,
                applied_on=now.date(),
                recorded_at=now,
            )
            await asyncio.to_thread(self.ledger.record_cash_application_fact, fact)
