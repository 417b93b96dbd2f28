"""Payment gateway connector. c2c reads payments from the gateway's webhooks; this client
creates payments for demos and tests, as a customer paying an invoice would."""

from __future__ import annotations

from decimal import Decimal

from connectors.http import HttpConnector
from connectors.records import GatewayCollection, GatewayPayment, InvoiceCollection


class HttpPayments(HttpConnector):
    system = "payments"

    async def create_payment(
        self, invoice_id: str, amount: Decimal, currency: str, *, idempotency_key: str
    ) -> GatewayPayment:
        return await self.send(
            GatewayPayment,
            "POST",
            "/payments",
            json={"invoice_id": invoice_id, "amount": format(amount, "f"), "currency": currency},
            idempotency_key=idempotency_key,
        )

    async def collect_invoice(
        self, invoice: InvoiceCollection, *, idempotency_key: str
    ) -> GatewayCollection | None:
        """Nothing to open: the reference gateway takes a payment of any invoice it is given
        and reports it by its webhook."""
        return None
