"""Applying cash to invoices in the ERP."""

from __future__ import annotations

from temporalio import activity

from activities.base import StepActivities, error_classes, idempotency_key
from domain.steps import APPLY_PAYMENT, ApplyPaymentInput, PaymentApplied


class PaymentActivities(StepActivities):
    @activity.defn(name=APPLY_PAYMENT)
    async def apply_payment(self, step: ApplyPaymentInput) -> PaymentApplied:
        """Record the payment against the invoice; the gateway's payment id keys it once."""
        await self.write_audit(step.contract_id, step.audit)
        p = step.payment
        async with error_classes(APPLY_PAYMENT):
            payment = await self.connectors.erp.record_payment(
                {
                    "payment_id": p.payment_id,
                    "invoice_id": step.invoice_id,
                    "amount": format(p.amount, "f"),
                    "currency": p.currency,
                    "received_on": p.received_on.isoformat(),
                },
                idempotency_key=idempotency_key("payment", p.payment_id),
            )
            invoice = await self.connectors.erp.get_invoice(step.invoice_id)
        await self.record_ref(step.contract_id, "erp", "payment", payment.payment_id)
        return PaymentApplied(
            invoice_id=step.invoice_id,
            applied=payment.applied_amount,
            unapplied=payment.unapplied_amount,
            amount_paid=invoice.amount_paid if invoice else payment.applied_amount,
            invoice_status=invoice.status if invoice else "partially_paid",
        )
