"""The write models c2c sends to the systems of record: immutable, strict about their fields,
exact about money, and taxed in one place."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.tax import apply_tax
from domain.write_models import (
    CustomerChanges,
    InvoiceDraft,
    InvoiceLineDraft,
    PaymentDraft,
    TaxLineResult,
    TaxResult,
    invoice_business_key,
)

CENTS = st.integers(min_value=0, max_value=10**9).map(lambda c: Decimal(c).scaleb(-2))


def draft(amounts: list[Decimal], **fields: object) -> InvoiceDraft:
    values: dict[str, object] = {
        "contract_id": "K-1",
        "customer_id": "C-1",
        "legal_entity": "US01",
        "currency": "USD",
        "period": "2026-10",
        "invoice_date": date(2026, 10, 31),
        "due_on": date(2026, 11, 30),
        "lines": [
            {"line_id": str(n), "kind": "time", "amount": amount}
            for n, amount in enumerate(amounts, start=1)
        ],
    }
    return InvoiceDraft.model_validate(values | fields)


def test_a_write_model_is_immutable_and_refuses_unknown_fields() -> None:
    payment = PaymentDraft(
        payment_id="P-1",
        contract_id="K-1",
        amount=Decimal("10.00"),
        currency="USD",
        received_on=date(2026, 11, 1),
    )
    with pytest.raises(ValidationError):
        payment.amount = Decimal(0)  # type: ignore[misc]
    with pytest.raises(ValidationError, match="invoice"):
        PaymentDraft.model_validate(payment.model_dump() | {"invoice": "INV-1"})
    with pytest.raises(ValidationError, match="float"):
        PaymentDraft.model_validate(payment.model_dump() | {"amount": 10.1})


@pytest.mark.parametrize(
    ("reference", "milestone_id", "period", "key"),
    [
        ("2026-10:advance", "M1", "2026-10", "2026-10:advance"),
        (None, "M1", "2026-10", "milestone:M1"),
        (None, None, "2026-10", "2026-10"),
        (None, None, None, None),
    ],
)
def test_an_invoice_is_unique_by_its_reference_milestone_or_period(
    reference: str | None, milestone_id: str | None, period: str | None, key: str | None
) -> None:
    assert invoice_business_key(reference, milestone_id, period) == key


def test_customer_changes_send_only_what_is_set_and_none_clears() -> None:
    changes = CustomerChanges.model_validate({"name": "Globex UK", "tax_id": None})
    assert changes.changed() == {"name": "Globex UK", "tax_id": None}
    assert CustomerChanges().changed() == {}


@given(st.lists(st.tuples(CENTS, CENTS), min_size=1, max_size=8))
def test_a_taxed_invoice_is_the_sum_of_its_lines(lines: list[tuple[Decimal, Decimal]]) -> None:
    invoice = draft([amount for amount, _ in lines])
    engine = TaxResult(
        lines=tuple(
            TaxLineResult(number=str(n), amount=amount, tax=tax)
            for n, (amount, tax) in enumerate(lines, start=1)
        )
    )

    taxed = apply_tax(invoice, engine)

    assert taxed.subtotal == sum((line.amount for line in taxed.lines), Decimal(0))
    assert taxed.tax == sum((line.tax_amount for line in taxed.lines), Decimal(0))
    assert taxed.total == taxed.subtotal + taxed.tax
    assert [line.tax_amount for line in taxed.lines] == [tax for _, tax in lines]
    assert invoice.tax == 0  # the draft it came from is unchanged
    assert apply_tax(taxed, engine) == taxed


def test_a_line_keeps_its_kind_quantity_and_role_through_tax() -> None:
    line = InvoiceLineDraft(
        line_id="1",
        kind="time",
        role="Analyst",
        quantity=Decimal(6),
        unit_price=Decimal("120.10"),
        amount=Decimal("720.60"),
    )
    taxed = apply_tax(
        draft([]).model_copy(update={"lines": (line,)}),
        TaxResult(lines=(TaxLineResult(number="1", amount=line.amount, tax=Decimal("52.24")),)),
    )
    assert taxed.lines[0] == line.model_copy(update={"tax_amount": Decimal("52.24")})
