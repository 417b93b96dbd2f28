"""What the vendor ERP connectors share: JSON bodies with exact numbers, and a contract's
balances summed from the documents an ERP holds for it."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from connectors.records import (
    ErpContractBalances,
    ErpCreditNote,
    ErpInvoice,
    ErpPayment,
    RevenueEntry,
)

ZERO = Decimal(0)


def dec(value: Any) -> Decimal:
    """An amount as an exact decimal; nothing is zero."""
    return ZERO if value in (None, "") else Decimal(str(value))


def wire(value: Any) -> Any:
    """A body as the vendors take it: amounts as JSON numbers, dates as ISO text, no nulls."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {k: wire(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [wire(v) for v in value]
    return value


def dumps(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def loads(content: bytes) -> Any:
    """A vendor's JSON with every number read exactly (``parse_float=Decimal``)."""
    return json.loads(content, parse_float=Decimal)


def balances(
    contract_id: str,
    currency: str,
    invoices: Sequence[ErpInvoice],
    notes: Sequence[ErpCreditNote],
    payments: Sequence[ErpPayment],
    revenue: Sequence[RevenueEntry],
) -> ErpContractBalances:
    """A contract's position from its invoices, credit notes, payments and revenue entries."""
    billed = sum((i.subtotal for i in invoices), ZERO) - sum((n.subtotal for n in notes), ZERO)
    recognised = sum((r.amount for r in revenue), ZERO)
    return ErpContractBalances(
        contract_id=contract_id,
        currency=currency,
        billed_to_date=billed,
        recognised_to_date=recognised,
        contract_asset=max(ZERO, recognised - billed),
        contract_liability=max(ZERO, billed - recognised),
        receivable=sum((i.balance for i in invoices), ZERO),
        unapplied_cash=sum((p.unapplied_amount for p in payments), ZERO)
        + sum((n.unapplied_amount for n in notes), ZERO),
    )
