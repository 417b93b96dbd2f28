"""Stripe's amounts and events as c2c reads them: shared by the Stripe connector (what c2c
writes) and the ``/webhooks/stripe`` route (what c2c reads), which may not import each other.

Stripe counts money in integers of the currency's minor unit (cents; yen have none, and the
three-decimal currencies are sent in thousandths). c2c's amounts are exact decimals, so a
conversion that would lose a fraction is refused, never rounded.

The metadata keys below are written on every PaymentIntent c2c creates; an event's object
carries them back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

#: The metadata keys c2c writes on the objects it creates in Stripe.
INVOICE_ID_KEY = "c2c_invoice_id"
CONTRACT_ID_KEY = "c2c_contract_id"

PAYMENT_INTENT_SUCCEEDED = "payment_intent.succeeded"
INVOICE_PAID = "invoice.paid"
CHARGE_REFUNDED = "charge.refunded"
#: The events ``/webhooks/stripe`` takes; others are answered ``200`` and ignored.
EVENT_TYPES = (PAYMENT_INTENT_SUCCEEDED, INVOICE_PAID, CHARGE_REFUNDED)

#: Stripe's zero-decimal currencies.
ZERO_DECIMAL = frozenset({
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
    "XAF", "XOF", "XPF",
})  # fmt: skip
#: Stripe's three-decimal currencies.
THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})


def minor_places(currency: str) -> int:
    code = currency.upper()
    if code in ZERO_DECIMAL:
        return 0
    return 3 if code in THREE_DECIMAL else 2


def to_minor(amount: Decimal, currency: str) -> int:
    """``amount`` in ``currency``'s minor unit, as Stripe takes it.

    Raises:
        ValueError: ``amount`` has a fraction of the minor unit.
    """
    scaled = amount.scaleb(minor_places(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} {currency.upper()} is not a whole number of minor units")
    return int(scaled)


def from_minor(amount: int, currency: str) -> Decimal:
    """Stripe's integer ``amount`` as an exact decimal of ``currency``."""
    places = minor_places(currency)
    return Decimal(amount).scaleb(-places).quantize(Decimal(1).scaleb(-places))


@dataclass(frozen=True)
class StripePayment:
    """What a paid event says: the payment, the c2c invoice and contract it pays."""

    payment_id: str
    invoice_id: str | None
    contract_id: str | None
    amount: Decimal
    currency: str
    received_on: date


def _day(seconds: Any) -> date:
    return datetime.fromtimestamp(int(seconds), UTC).date()


def payment_of(
    event_type: str, obj: dict[str, Any], event_created: int | None = None
) -> StripePayment:
    """The payment a ``payment_intent.succeeded`` or ``invoice.paid`` event's object reports.

    A PaymentIntent is its own payment, received the day its event was created (the intent's
    own ``created`` is when c2c opened it); a paid Stripe invoice is named by its
    PaymentIntent where it has one, so the two events of one payment are applied once, and
    received when it was paid.

    Raises:
        KeyError, TypeError, ValueError: the object lacks what Stripe always sends.
    """
    metadata = obj.get("metadata") or {}
    currency = str(obj["currency"]).upper()
    if event_type == INVOICE_PAID:
        payment_id = obj.get("payment_intent") or obj["id"]
        amount = obj["amount_paid"]
        at = (obj.get("status_transitions") or {}).get("paid_at") or obj["created"]
    else:
        payment_id = obj["id"]
        amount = obj["amount_received"]
        at = event_created or obj["created"]
    return StripePayment(
        payment_id=str(payment_id),
        invoice_id=metadata.get(INVOICE_ID_KEY),
        contract_id=metadata.get(CONTRACT_ID_KEY),
        amount=from_minor(int(amount), currency),
        currency=currency,
        received_on=_day(at),
    )
