"""What the vendor ERP connectors share: JSON bodies with exact numbers, the mapping of c2c's
write models that every ERP stores the same way (schedules, rate cards, amendment logs, the
accounts of an invoice line), and a contract's balances summed from the documents an ERP
holds for it."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from connectors.records import (
    ErpContractBalances,
    ErpCreditNote,
    ErpInvoice,
    ErpPayment,
    RevenueEntry,
)
from domain.write_models import (
    AmendmentDraft,
    BillingSchedule,
    InvoiceLineDraft,
    RateDraft,
    RevenueSchedule,
)

ZERO = Decimal(0)
T_co = TypeVar("T_co", covariant=True)


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


def invoice_status(*, remaining: Decimal, paid: Decimal, credited: Decimal) -> str:
    """An issued invoice's status from what remains on it, what was paid and what credited."""
    if remaining <= 0:
        return "credited" if credited > 0 and paid == 0 else "paid"
    return "partially_paid" if paid > 0 else "issued"


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


def schedule_text(schedule: BillingSchedule | RevenueSchedule) -> str:
    """A schedule as the text an ERP's c2c field keeps (sorted keys: the same schedule is
    the same text)."""
    return json.dumps(schedule.model_dump(mode="json", exclude_none=True), sort_keys=True)


def rate_card_text(rates: Sequence[RateDraft]) -> str:
    """A rate card as the text an ERP's c2c field keeps."""
    return json.dumps([r.model_dump(mode="json") for r in rates])


def amendment_entry(amendment: AmendmentDraft) -> dict[str, str]:
    """The entry an ERP's amendment log keeps of an amendment (read back as ``ErpAmendment``)."""
    return {
        "amendment_id": amendment.amendment_id,
        "effective_date": amendment.effective_date.isoformat(),
        "reason": amendment.reason,
        "applied_at": datetime.now(UTC).isoformat(),
    }


class LineMapping(Protocol[T_co]):
    """Where an ERP books a line: by the line's role (time), expense category or kind."""

    @property
    def roles(self) -> Mapping[str, T_co]: ...

    @property
    def charges(self) -> Mapping[str, T_co]: ...

    def expense(self, category: str) -> T_co | None: ...


def line_mapping(mapping: LineMapping[T_co], line: InvoiceLineDraft) -> tuple[T_co | None, str]:
    """The mapping of an invoice line (``None`` when there is none), and what it was looked
    up by, to name in the refusal."""
    if line.kind == "time":
        return mapping.roles.get(str(line.role)), f"role {line.role!r}"
    if line.kind == "expense":
        category = line.description.removeprefix("expenses: ")
        return mapping.expense(category), f"expense category {category!r}"
    return mapping.charges.get(line.kind), f"{line.kind} lines"
