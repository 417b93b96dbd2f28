"""Reconciliation of consolidated invoices: a customer's invoice in the ERP against the
sections its contracts hold and their parts of its payments.

A consolidating contract holds each section as an invoice (``SEC-{contract}-{period}``) and
each part of a payment under a derived id (``domain.consolidation.allocation_payment_id``);
the ERP holds one invoice per customer and period, with its ``sections``, and the customer's
payments on it. ``compare_consolidated`` is pure: the activity reads both sides and hands
them over. Differences about the invoice as a whole (voided, its total, its payments) name
the contract of its first section, so whichever batch finds one finds the same difference;
differences about a section name the section's contract and are reported by its batch.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from connectors.records import ErpCreditNote, ErpInvoice, ErpInvoiceSection, ErpPayment
from domain.consolidation import allocation_payment_id, is_section
from domain.reconcile import Difference
from ledger import BillingFact, PaymentFact

ZERO = Decimal(0)
#: ERP invoice statuses of an invoice voided or cancelled (by hand: c2c never does it).
VOIDED = frozenset({"void", "voided", "cancelled"})


@dataclass
class ConsolidatedComparison:
    """What comparing the consolidated invoices found, and for each contract of the batch
    whose sections are all accounted for (each on an ERP invoice that is not void, with
    the ERP's figures equal to the ledger's), the ERP's subtotal of those sections: what its
    billed to date has beside its ERP contract's own balance."""

    differences: list[Difference] = field(default_factory=list)
    sections_billed: dict[str, Decimal] = field(default_factory=dict)
    #: The ERP's credit notes on the consolidated invoices, by the contract whose section
    #: they credit: each note's total, and the subtotal the contract's sections lost.
    section_notes: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    sections_credited: dict[str, Decimal] = field(default_factory=dict)

    def take_notes(self, invoice: ErpInvoice, notes: Sequence[ErpCreditNote]) -> None:
        """Credit notes on ``invoice``, each counted for the contract whose section its
        lines name (a note credits one section: c2c makes one per section)."""
        owners = {s.section_id: s.contract_id for s in invoice.sections or []}
        for note in notes:
            named = {line.section_id for line in note.lines if line.section_id in owners}
            for section_id in named:
                contract_id = owners[section_id or ""]
                self.section_notes.setdefault(contract_id, {})[note.credit_note_id] = note.total
                credited = sum(
                    (line.amount for line in note.lines if line.section_id == section_id), ZERO
                )
                self.sections_credited[contract_id] = (
                    self.sections_credited.get(contract_id, ZERO) + credited
                )


def _difference(contract_id: str, kind: str, record_id: str, code: str, message: str) -> Difference:
    return Difference(
        contract_id=contract_id, kind=kind, record_id=record_id, code=code, message=message
    )


def _label(invoice: ErpInvoice) -> str:
    number = f" (number {invoice.number})" if invoice.number else ""
    return f"consolidated invoice {invoice.invoice_id}{number}"


def _figures(subtotal: Decimal | None, tax: Decimal | None, total: Decimal | None) -> str:
    return f"subtotal {subtotal}, tax {tax}, total {total}"


def _section_differs(theirs: ErpInvoiceSection, ours: BillingFact) -> bool:
    return (theirs.subtotal, theirs.tax, theirs.total) != (ours.subtotal, ours.tax, ours.total)


def compare_consolidated(
    batch: Collection[str],
    invoices: Sequence[ErpInvoice],
    payments: Sequence[tuple[ErpInvoice, ErpPayment]],
    sections: Sequence[BillingFact],
    parts: Sequence[PaymentFact],
) -> ConsolidatedComparison:
    """Every difference between the ERP's consolidated invoices of the batch's customers and
    the ledger's sections and payment parts.

    Args:
        batch: The contracts compared now; a section's difference is reported for these.
        invoices: The customers' consolidated invoices in the ERP, drafts left out.
        payments: The ERP's payments on them, each with the invoice it was listed under.
        sections: The ledger's issued sections of the batch's contracts and of every contract
            with a section on those invoices.
        parts: The ledger's payment facts of the same contracts.
    """
    found = ConsolidatedComparison()
    ours = {s.invoice_id: s for s in sections if s.invoice_id and is_section(s.invoice_id)}
    # Where each section is in the ERP; a section also on a voided invoice is where it is
    # still issued.
    placed: dict[str, tuple[ErpInvoice, ErpInvoiceSection]] = {}
    for invoice in sorted(invoices, key=lambda i: i.status not in VOIDED):
        for theirs in invoice.sections or []:
            placed[theirs.section_id] = (invoice, theirs)
    unaccounted: set[str] = set()
    for invoice in invoices:
        if invoice.sections:
            found.differences += _compare_invoice(batch, invoice, ours, unaccounted)
    for section_id, fact in sorted(ours.items()):
        if fact.contract_id not in batch:
            continue
        if section_id not in placed:
            unaccounted.add(fact.contract_id)
            found.differences.append(
                _difference(
                    fact.contract_id,
                    "section",
                    section_id,
                    "section_missing_in_erp",
                    f"section {section_id} of contract {fact.contract_id} "
                    f"({_figures(fact.subtotal, fact.tax, fact.total)}) is in c2c's ledger "
                    "and on no consolidated invoice in the ERP",
                )
            )
    found.differences += _compare_payments(batch, placed, ours, payments, parts)
    for section_id, fact in ours.items():
        if fact.contract_id not in batch or fact.contract_id in unaccounted:
            continue
        invoice, theirs = placed[section_id]
        if invoice.status in VOIDED:
            unaccounted.add(fact.contract_id)
            continue
        billed = found.sections_billed.get(fact.contract_id, ZERO)
        found.sections_billed[fact.contract_id] = billed + theirs.subtotal
    for contract_id in unaccounted:
        found.sections_billed.pop(contract_id, None)
    return found


def _compare_invoice(
    batch: Collection[str],
    invoice: ErpInvoice,
    ours: dict[str, BillingFact],
    unaccounted: set[str],
) -> list[Difference]:
    """One consolidated invoice: voided, its sections' figures, its total."""
    assert invoice.sections
    owner = invoice.sections[0].contract_id
    label = _label(invoice)
    if not ({s.contract_id for s in invoice.sections} & set(batch)):
        return []
    if invoice.status in VOIDED:
        listed = ", ".join(
            f"{s.section_id} of contract {s.contract_id} ({s.total})" for s in invoice.sections
        )
        return [
            _difference(
                owner,
                "consolidated_invoice",
                invoice.invoice_id,
                "consolidated_invoice_voided_in_erp",
                f"{label} ({invoice.total}) is {invoice.status} in the ERP; c2c issued "
                f"it with the sections {listed}, which their contracts hold open",
            )
        ]
    found: list[Difference] = []
    for theirs in invoice.sections:
        fact = ours.get(theirs.section_id)
        if theirs.contract_id not in batch:
            continue
        erp_figures = _figures(theirs.subtotal, theirs.tax, theirs.total)
        if fact is None:
            code = "section_unknown_to_c2c"
            message = (
                f"the ERP has section {theirs.section_id} ({erp_figures}) of contract "
                f"{theirs.contract_id} on {label}; c2c's ledger does not hold it"
            )
        elif _section_differs(theirs, fact):
            code = "section_amount_differs"
            message = (
                f"section {theirs.section_id} of contract {theirs.contract_id} on {label} is "
                f"{erp_figures} in the ERP and "
                f"{_figures(fact.subtotal, fact.tax, fact.total)} in c2c's ledger"
            )
        else:
            continue
        unaccounted.add(theirs.contract_id)
        found.append(_difference(theirs.contract_id, "section", theirs.section_id, code, message))
    held = [ours.get(s.section_id) for s in invoice.sections]
    if any(
        f is None or f.total is None or _section_differs(s, f)
        for s, f in zip(invoice.sections, held, strict=True)
    ):
        # A section differs, or is not in the ledger: said once, by its contract's batch.
        return found
    total = sum((f.total or ZERO for f in held if f is not None), ZERO)
    if total != invoice.total:
        found.append(
            _difference(
                owner,
                "consolidated_invoice",
                invoice.invoice_id,
                "consolidated_invoice_amount_differs",
                f"{label} is {invoice.total} in the ERP; its sections in c2c's ledger "
                f"total {total} ("
                + ", ".join(f"{f.invoice_id} {f.total}" for f in held if f is not None)
                + ")",
            )
        )
    return found


def _compare_payments(
    batch: Collection[str],
    placed: dict[str, tuple[ErpInvoice, ErpInvoiceSection]],
    ours: dict[str, BillingFact],
    payments: Sequence[tuple[ErpInvoice, ErpPayment]],
    parts: Sequence[PaymentFact],
) -> list[Difference]:
    """The ERP's payments on the consolidated invoices against the parts the contracts
    applied: every part of a payment has the id ``allocation_payment_id(payment, section)``
    of one of the customer's sections, on whichever of its invoices it went to."""
    section_ids = sorted(set(placed) | set(ours))
    part_of: dict[str, str] = {}
    on: dict[str, tuple[ErpInvoice, ErpPayment]] = {}
    for invoice, payment in payments:
        if payment.payment_id in on or not invoice.sections:
            continue
        on[payment.payment_id] = (invoice, payment)
        for section_id in section_ids:
            part_of[allocation_payment_id(payment.payment_id, section_id)] = payment.payment_id
    applied: dict[str, list[PaymentFact]] = {}
    found: list[Difference] = []
    for part in sorted(parts, key=lambda p: p.payment_id):
        paid = part_of.get(part.payment_id)
        if paid is not None:
            applied.setdefault(paid, []).append(part)
        elif is_section(part.invoice_id) and part.contract_id in batch:
            found.append(
                _difference(
                    part.contract_id,
                    "consolidated_payment",
                    part.payment_id,
                    "consolidated_payment_missing_in_erp",
                    f"c2c's ledger has {part.amount} applied to section "
                    f"{part.invoice_id} of contract {part.contract_id} (part "
                    f"{part.payment_id} of a customer's payment); the ERP has no payment on "
                    "the customer's consolidated invoices of which it is a part",
                )
            )
    for payment_id, (invoice, payment) in sorted(on.items()):
        assert invoice.sections
        if not ({s.contract_id for s in invoice.sections} & set(batch)):
            continue
        label = _label(invoice)
        owner = invoice.sections[0].contract_id
        mine = applied.get(payment_id, [])
        if not mine:
            found.append(
                _difference(
                    owner,
                    "consolidated_payment",
                    payment_id,
                    "consolidated_payment_unknown_to_c2c",
                    f"the ERP has payment {payment_id} ({payment.amount}) on {label}; "
                    "c2c applied none of it to the sections",
                )
            )
            continue
        allocated = sum((p.amount for p in mine), ZERO)
        if allocated != payment.amount:
            shares = ", ".join(f"{p.amount} to {p.invoice_id}" for p in mine)
            found.append(
                _difference(
                    owner,
                    "consolidated_payment",
                    payment_id,
                    "consolidated_payment_amount_differs",
                    f"payment {payment_id} on {label} is {payment.amount} in the ERP; "
                    f"c2c's ledger applied {allocated} of it to the sections ({shares})",
                )
            )
    return found
