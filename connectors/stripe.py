"""Stripe as c2c's payment gateway (``C2C_PAYMENTS=stripe``), through Stripe's own ``stripe``
client (``StripeClient``, its API base pointed at ``C2C_STRIPE_URL``).

An issued invoice is collected as a PaymentIntent for its total in its currency (integers of
the minor unit, ``c2c.stripe_events``), with c2c's invoice and contract ids in its
``metadata``; the customer pays it and Stripe's ``payment_intent.succeeded`` event reaches
``/webhooks/stripe``. Refunds are ``POST /v1/refunds`` on the PaymentIntent.

Stripe keeps an idempotency key for about 24 hours; c2c's step may be retried much later
(an operator's retry after a hold, a reset). So every create first looks for the object it
would make by its business key, searching PaymentIntents by ``metadata['c2c_invoice_id']``,
and creates with the ``Idempotency-Key`` only when there is none. Within the key's life the
key covers what search does not see yet (Stripe's search index trails writes by up to a
minute); after it, search does.
"""

from __future__ import annotations

import ssl
from typing import Any

import stripe
from stripe.params import PaymentIntentCreateParams, RefundCreateParams

from c2c.settings import Settings
from c2c.stripe_events import CONTRACT_ID_KEY, INVOICE_ID_KEY, from_minor, to_minor
from connectors.http import GovernedClient
from connectors.records import (
    GatewayCollection,
    GatewayPayment,
    GatewayRefund,
)
from domain.errors import BusinessError, NotFound, Rejection, TransientError
from domain.write_models import InvoiceCollection, PaymentRequest, RefundRequest

SYSTEM = "payments"
#: Stripe as ``C2C_CALL_LIMITS`` names it.
VENDOR = "stripe"


def _collection(intent: Any) -> GatewayCollection:
    currency = str(intent["currency"]).upper()
    return GatewayCollection(
        collection_id=intent["id"],
        invoice_id=intent["metadata"][INVOICE_ID_KEY],
        amount=from_minor(int(intent["amount"]), currency),
        currency=currency,
        status=intent["status"],
    )


def _quoted(value: str) -> str:
    """``value`` inside a quoted string of Stripe's search language."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _rejection(exc: stripe.StripeError, what: str) -> Rejection:
    error = exc.error
    code = (error.code if error else None) or exc.code or (error.type if error else None)
    return Rejection(
        system=SYSTEM,
        code=str(code or "stripe_error"),
        message=f"Stripe {what}: {exc.user_message or str(exc)}",
        field=error.param if error else None,
        status=exc.http_status,
    )


def _governed_http(timeout_s: float) -> stripe.HTTPXClient:
    """Stripe's httpx client, its requests sent by a ``GovernedClient``: each request (the
    client's own network retries too) holds a slot of Stripe's call limits."""
    http = stripe.HTTPXClient(timeout=timeout_s)
    verify = ssl.create_default_context(cafile=stripe.ca_bundle_path)
    http._client_async = GovernedClient(VENDOR, verify=verify)
    return http


class StripePayments:
    """``PaymentsPort`` on Stripe's API."""

    system = SYSTEM

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str,
        timeout_s: float = 10.0,
        quick_retries: int = 0,
    ) -> None:
        self.client = stripe.StripeClient(
            api_key,
            base_addresses={"api": base_url.rstrip("/")},
            max_network_retries=quick_retries,
            http_client=_governed_http(timeout_s),
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> StripePayments:
        return cls(
            settings.stripe_base_url,
            api_key=settings.stripe_api_key.get_secret_value(),
            timeout_s=settings.connector_timeout_s,
            quick_retries=settings.connector_quick_retries,
        )

    async def aclose(self) -> None:
        """The client's connections close with the process."""

    async def _call(self, what: str, call: Any) -> Any:
        """Await ``call``; Stripe's failures as c2c's two classes."""
        try:
            return await call
        except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as exc:
            raise TransientError(
                SYSTEM, f"Stripe {what}: {exc.user_message or exc}", status=exc.http_status
            ) from exc
        except stripe.StripeError as exc:
            status = exc.http_status or 0
            if status == 429 or status >= 500:
                raise TransientError(SYSTEM, f"Stripe {what}: {exc}", status=status) from exc
            if status == 404:
                raise NotFound(_rejection(exc, what)) from exc
            raise BusinessError(_rejection(exc, what)) from exc

    async def find_invoice_intent(self, invoice_id: str) -> Any | None:
        """The PaymentIntent c2c made for ``invoice_id`` (the first one, if several)."""
        found = await self._call(
            "search PaymentIntents",
            self.client.v1.payment_intents.search_async(
                {"query": f"metadata['{INVOICE_ID_KEY}']:'{_quoted(invoice_id)}'", "limit": 10}
            ),
        )
        intents = sorted(found.data, key=lambda intent: intent["created"])
        return intents[0] if intents else None

    async def collect_invoice(
        self, invoice: InvoiceCollection, *, idempotency_key: str
    ) -> GatewayCollection:
        """The invoice's PaymentIntent: found by its invoice id, else created under
        ``idempotency_key`` for the invoice's total."""
        existing = await self.find_invoice_intent(invoice.invoice_id)
        if existing is not None:
            return _collection(existing)
        try:
            amount = to_minor(invoice.amount, invoice.currency)
        except ValueError as exc:
            raise BusinessError(
                Rejection(system=SYSTEM, code="invalid_amount", message=str(exc), field="total")
            ) from exc
        metadata = {INVOICE_ID_KEY: invoice.invoice_id, CONTRACT_ID_KEY: invoice.contract_id}
        params: PaymentIntentCreateParams = {
            "amount": amount,
            "currency": invoice.currency.lower(),
            "metadata": metadata,
            "description": f"Invoice {invoice.number or invoice.invoice_id}",
        }
        intent = await self._call(
            "create PaymentIntent",
            self.client.v1.payment_intents.create_async(
                params, {"idempotency_key": idempotency_key}
            ),
        )
        return _collection(intent)

    async def create_payment(
        self, payment: PaymentRequest, *, idempotency_key: str
    ) -> GatewayPayment:
        """A PaymentIntent for ``amount`` of an invoice (demos and tests: what a customer's
        checkout would open)."""
        intent = await self._call(
            "create PaymentIntent",
            self.client.v1.payment_intents.create_async(
                {
                    "amount": to_minor(payment.amount, payment.currency),
                    "currency": payment.currency.lower(),
                    "metadata": {INVOICE_ID_KEY: payment.invoice_id},
                },
                {"idempotency_key": idempotency_key},
            ),
        )
        return GatewayPayment(
            payment_id=intent["id"],
            invoice_id=payment.invoice_id,
            amount=payment.amount,
            currency=payment.currency.upper(),
            status=intent["status"],
        )

    async def refund_payment(self, refund: RefundRequest, *, idempotency_key: str) -> GatewayRefund:
        """``POST /v1/refunds`` on the PaymentIntent ``refund.payment_id``: ``amount`` of it,
        or what is left when ``None``.

        The refund carries ``idempotency_key`` in its metadata, and the PaymentIntent's
        refunds are read first: a retry after Stripe has forgotten the key finds the refund
        made by the first attempt rather than refunding twice.
        """
        refunds = await self._call(
            "list refunds",
            self.client.v1.refunds.list_async({"payment_intent": refund.payment_id, "limit": 100}),
        )
        for made in refunds.data:
            metadata = made["metadata"] or {}
            if "c2c_key" in metadata and metadata["c2c_key"] == idempotency_key:
                return self._refund(made)
        params: RefundCreateParams = {
            "payment_intent": refund.payment_id,
            "reason": refund.reason,
            "metadata": {"c2c_key": idempotency_key},
        }
        if refund.amount is not None:
            params["amount"] = to_minor(refund.amount, refund.currency)
        made = await self._call(
            "create refund",
            self.client.v1.refunds.create_async(params, {"idempotency_key": idempotency_key}),
        )
        return self._refund(made)

    @staticmethod
    def _refund(refund: Any) -> GatewayRefund:
        currency = str(refund["currency"]).upper()
        return GatewayRefund(
            refund_id=refund["id"],
            payment_id=refund["payment_intent"],
            amount=from_minor(int(refund["amount"]), currency),
            currency=currency,
            status=refund["status"],
        )
