"""Payment gateway connector. c2c reads payments from the gateway's webhooks; this client
creates payments for demos and tests, as a customer paying an invoice would."""

from __future__ import annotations

from connectors.http import HttpConnector
from connectors.records import GatewayCollection, GatewayPayment, GatewayRefund
from domain.errors import BusinessError, Rejection
from domain.write_models import InvoiceCollection, PaymentRequest, RefundRequest


class HttpPayments(HttpConnector):
    system = "payments"

    async def create_payment(
        self, payment: PaymentRequest, *, idempotency_key: str
    ) -> GatewayPayment:
        return await self.send(
            GatewayPayment,
            "POST",
            "/payments",
            json=payment.model_dump(mode="json"),
            idempotency_key=idempotency_key,
        )

    async def collect_invoice(
        self, invoice: InvoiceCollection, *, idempotency_key: str
    ) -> GatewayCollection | None:
        """Nothing to open: the reference gateway takes a payment of any invoice it is given
        and reports it by its webhook."""
        return None

    async def refund_payment(self, refund: RefundRequest, *, idempotency_key: str) -> GatewayRefund:
        """The reference gateway takes no refunds: a refund is finance's to make by hand."""
        raise BusinessError(
            Rejection(
                system=self.system,
                code="refund_unsupported",
                message=f"the reference gateway cannot refund payment {refund.payment_id}",
                field="payment_id",
            )
        )
