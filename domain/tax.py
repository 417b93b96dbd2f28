"""Tax on c2c's documents: the tax code of each invoice line, the tax an invoice carries, and
the tax of a credit note.

The tax engine computes tax; c2c decides only what no engine can know alone. A credit note is
one of several against the same invoice, and each is rounded on its own: left to the engine,
0.10 credited and then the rest of an invoice can ask for one cent more tax than the invoice
carried (0.10 at 7.25 % rounds up to 0.01, the rest rounds to the invoice's own figure), or
leave one cent of tax that no note ever credits. ``credit_note_tax`` closes that gap: a note
never takes more tax than is left on the invoice, and the note that credits what remains of
the subtotal takes exactly the tax that remains.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TypeVar

from domain.money import MoneyError, check_minor_units
from domain.write_models import CreditNoteDraft, InvoiceDraft, TaxResult

ZERO = Decimal(0)

#: The tax code c2c sends with each invoice line, by the line's kind. Everything c2c bills is
#: a professional service (the engine taxes a reimbursed expense as the service it belongs to);
#: the codes name the kind so that an engine with other rules for them can tell them apart.
TAX_CODES: dict[str, str] = {
    "time": "SV-PROFESSIONAL",
    "milestone": "SV-PROFESSIONAL",
    "retainer": "SV-PROFESSIONAL",
    "overage": "SV-PROFESSIONAL",
    "release": "SV-PROFESSIONAL",
    "expense": "SV-EXPENSE",
}
#: The tax code of a line of a kind not listed, and of a credit note's line.
DEFAULT_TAX_CODE = "SV-PROFESSIONAL"


def tax_code(kind: str) -> str:
    """The tax code of an invoice line of ``kind``."""
    return TAX_CODES.get(kind, DEFAULT_TAX_CODE)


#: A document that carries tax: an invoice draft or a credit note draft.
Taxable = TypeVar("Taxable", InvoiceDraft, CreditNoteDraft)


def apply_tax(draft: Taxable, result: TaxResult) -> Taxable:
    """``draft`` with the engine's tax on each line, and its sums: the document's tax is the
    sum of its lines' taxes, each rounded by the engine on its own.

    The one place where tax goes on an invoice or a credit note: every path that taxes a
    document builds its draft untaxed and passes it here.

    Raises:
        ValueError: the engine gave no tax for a line, or a tax with more decimals than the
            draft's currency.
    """
    line_taxes = result.line_taxes()
    missing = [line.line_id for line in draft.lines if line.line_id not in line_taxes]
    if missing:
        raise ValueError(f"the tax engine gave no tax for line(s) {', '.join(missing)}")
    taxes: dict[str, Decimal] = {}
    for line in draft.lines:
        try:
            taxes[line.line_id] = check_minor_units(line_taxes[line.line_id], draft.currency)
        except MoneyError as exc:
            raise ValueError(f"tax of line {line.line_id}: {exc}") from None
    subtotal = sum((line.amount for line in draft.lines), ZERO)
    tax = sum(taxes.values(), ZERO)
    lines = tuple(
        line.model_copy(update={"tax_amount": taxes[line.line_id]}) for line in draft.lines
    )
    return draft.model_copy(
        update={"lines": lines, "subtotal": subtotal, "tax": tax, "total": subtotal + tax}
    )


def credit_note_tax(
    *,
    invoice_subtotal: Decimal,
    invoice_tax: Decimal,
    credited_subtotal: Decimal,
    credited_tax: Decimal,
    amount: Decimal,
    quoted_tax: Decimal,
    currency: str,
) -> Decimal:
    """The tax of a credit note of ``amount`` (before tax) on an invoice.

    Args:
        invoice_subtotal: The invoice's subtotal (the sum of its lines, before tax).
        invoice_tax: The invoice's tax (the sum of its tax lines).
        credited_subtotal: What earlier credit notes on the invoice credited, before tax.
        credited_tax: The tax of those earlier credit notes.
        amount: What this note credits, before tax.
        quoted_tax: The tax the engine gives ``amount`` at the invoice's tax date and rates.
        currency: The invoice's currency.

    Returns:
        ``invoice_tax - credited_tax`` when the note credits what remains of the subtotal;
        otherwise ``quoted_tax``, but never more than the tax that remains.

    Raises:
        ValueError: an amount has more decimals than ``currency``, is negative, or ``amount``
            is not above zero or more than remains to credit; or the earlier notes already
            credited more than the invoice in subtotal or tax.
    """
    figures = {
        "invoice_subtotal": invoice_subtotal,
        "invoice_tax": invoice_tax,
        "credited_subtotal": credited_subtotal,
        "credited_tax": credited_tax,
        "amount": amount,
        "quoted_tax": quoted_tax,
    }
    for name, value in figures.items():
        try:
            check_minor_units(value, currency)
        except MoneyError as exc:
            raise ValueError(f"{name}: {exc}") from None
        if value < 0:
            raise ValueError(f"{name}: must not be negative, got {value}")
    subtotal_left = invoice_subtotal - credited_subtotal
    tax_left = invoice_tax - credited_tax
    if subtotal_left < 0 or tax_left < 0:
        raise ValueError(
            f"earlier credit notes ({credited_subtotal} + tax {credited_tax}) exceed the invoice "
            f"({invoice_subtotal} + tax {invoice_tax})"
        )
    if amount <= 0 or amount > subtotal_left:
        raise ValueError(
            f"amount: between 0 and {subtotal_left} {currency} is left to credit, got {amount}"
        )
    if amount == subtotal_left:
        return tax_left
    return min(quoted_tax, tax_left)
