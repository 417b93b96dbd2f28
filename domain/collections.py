"""Collections: due dates, dunning, and the cash book of a contract's receivables.

The cash book is workflow state: a pydantic model that round-trips through JSON, so it can be
carried across continue-as-new. It holds one row per invoice and one per receipt of cash, never
one per application; at each hand-over the rows that nothing can change any more (settled
invoices, fully applied receipts) fold into two sums, so what is carried grows with what is
open, not with the months of the contract.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal

from pydantic import BaseModel, Field

from domain.money import ZERO, Money

DEFAULT_DUNNING_OFFSETS: tuple[int, ...] = (7, 14, 30)


def due_on(invoice_date: date, payment_terms_days: int) -> date:
    """The day an invoice falls due: ``payment_terms_days`` after its date (net terms)."""
    if payment_terms_days < 0:
        raise ValueError(f"payment_terms_days must not be negative, got {payment_terms_days}")
    return invoice_date + timedelta(days=payment_terms_days)


def dunning_dates(due: date, offsets: Sequence[int]) -> list[tuple[int, date]]:
    """The reminders of an unpaid invoice: ``(level, date)``, level 1 first.

    Args:
        due: the invoice's due date.
        offsets: days after ``due`` of each reminder; positive and distinct, in any order.

    Raises:
        ValueError: an offset is not positive or appears twice.
    """
    seen: set[int] = set()
    for offset in offsets:
        if offset <= 0:
            raise ValueError(f"dunning offsets must be positive days after the due date: {offset}")
        if offset in seen:
            raise ValueError(f"dunning offset {offset} appears twice")
        seen.add(offset)
    return [
        (level, due + timedelta(days=offset))
        for level, offset in enumerate(sorted(offsets), start=1)
    ]


class Application(BaseModel):
    """Cash of one payment (or credit) applied to one invoice."""

    payment_id: str
    invoice_id: str
    amount: Money


class Receivable(BaseModel):
    """An issued invoice and what settled it.

    ``credited`` is only the part of credit notes that reduced the balance; the part beyond it
    became unapplied cash. ``credit_notes`` is the whole of them, which cannot exceed the total.
    """

    invoice_id: str
    total: Money
    paid: Money = ZERO
    credited: Money = ZERO
    credit_notes: Money = ZERO
    credit_count: int = 0

    @property
    def balance(self) -> Decimal:
        """What is still owed on the invoice."""
        return self.total - self.paid - self.credited


class Receipt(BaseModel):
    """Cash received: a payment, or the excess of a credit note over an invoice's balance."""

    payment_id: str
    amount: Money
    unapplied: Money


class CashBook(BaseModel):
    """A contract's invoices and cash, with cash applied oldest payment to oldest invoice.

    Invariant: ``received == applied + unapplied``, exactly, after every operation; no invoice
    balance is ever negative. Amounts are taken as exact at the currency's scale (payloads are
    validated before they get here), so no operation rounds.
    """

    invoices: list[Receivable] = Field(default_factory=list)  # in order of issue
    receipts: list[Receipt] = Field(default_factory=list)  # in order of arrival
    #: Cash applied to the invoices folded away by ``fold``.
    folded_applied: Money = ZERO
    #: Cash of the receipts folded away by ``fold``: all of it applied.
    folded_received: Money = ZERO

    def _invoice(self, invoice_id: str) -> Receivable | None:
        return next((i for i in self.invoices if i.invoice_id == invoice_id), None)

    def _receivable(self, invoice_id: str) -> Receivable:
        invoice = self._invoice(invoice_id)
        if invoice is None:
            raise KeyError(f"invoice {invoice_id!r} is not in the cash book")
        return invoice

    def _apply(self, receipt: Receipt, invoice: Receivable) -> Application | None:
        amount = min(receipt.unapplied, invoice.balance)
        if amount <= 0:
            return None
        receipt.unapplied -= amount
        invoice.paid += amount
        return Application(
            payment_id=receipt.payment_id, invoice_id=invoice.invoice_id, amount=amount
        )

    def issue(self, invoice_id: str, total: Decimal) -> list[Application]:
        """Register an issued invoice and apply waiting cash to it, oldest receipt first.

        An invoice already registered is left as it is and nothing is applied, so a step that
        reports the same invoice twice does not apply cash twice.

        Returns:
            The applications to make in the ERP.
        """
        if total < 0:
            raise ValueError(f"invoice total must not be negative, got {total}")
        if self._invoice(invoice_id) is not None:
            return []
        invoice = Receivable(invoice_id=invoice_id, total=total)
        self.invoices.append(invoice)
        applications = []
        for receipt in self.receipts:
            application = self._apply(receipt, invoice)
            if application is not None:
                applications.append(application)
        return applications

    def receive(
        self, payment_id: str, amount: Decimal, invoice_id: str | None
    ) -> list[Application]:
        """Record a payment and apply it.

        A payment that names an invoice goes to that invoice, up to its balance; what is left
        is an overpayment and stays unapplied until the next invoice is issued: c2c does not
        guess which other invoice it was meant for. A payment that names no invoice (a
        remittance without a reference) settles the open invoices oldest first, and only what
        exceeds them all stays unapplied. A payment naming an invoice the book does not know
        yet stays unapplied too, and ``issue`` picks it up.

        Returns:
            The applications to make; ``[]`` for a ``payment_id`` already received.
        """
        if amount <= 0:
            raise ValueError(f"payment amount must be greater than zero, got {amount}")
        if any(r.payment_id == payment_id for r in self.receipts):
            return []
        receipt = Receipt(payment_id=payment_id, amount=amount, unapplied=amount)
        self.receipts.append(receipt)
        if invoice_id is not None:
            named = self._invoice(invoice_id)
            targets = [] if named is None else [named]
        else:
            targets = [i for i in self.invoices if i.balance > 0]
        applications = []
        for target in targets:
            application = self._apply(receipt, target)
            if application is not None:
                applications.append(application)
        return applications

    def credit(self, invoice_id: str, amount: Decimal) -> Decimal:
        """Record a credit note on an invoice.

        The credit reduces the invoice's balance; any part of it beyond the balance (the
        invoice was already paid) becomes unapplied cash under ``credit:{invoice_id}:{n}``,
        ``n`` counting the invoice's credit notes from 1.

        Returns:
            The excess that became unapplied cash (0 when the balance absorbed the credit).

        Raises:
            KeyError: the invoice is not in the book.
            ValueError: the amount is not positive, or the invoice's credit notes would exceed
                its total.
        """
        invoice = self._receivable(invoice_id)
        if amount <= 0:
            raise ValueError(f"credit amount must be greater than zero, got {amount}")
        creditable = invoice.total - invoice.credit_notes
        if amount > creditable:
            raise ValueError(
                f"credit of {amount} exceeds what is left to credit on {invoice_id} ({creditable})"
            )
        reduce = min(amount, invoice.balance)
        excess = amount - reduce
        invoice.credited += reduce
        invoice.credit_notes += amount
        invoice.credit_count += 1
        if excess > 0:
            receipt_id = f"credit:{invoice_id}:{invoice.credit_count}"
            self.receipts.append(Receipt(payment_id=receipt_id, amount=excess, unapplied=excess))
        return excess

    def credit_settled(self, receipt_id: str, amount: Decimal) -> None:
        """Record a credit note on an invoice folded away as settled: nothing is owed on it,
        so all of the credit becomes unapplied cash, under ``receipt_id``."""
        if amount <= 0:
            raise ValueError(f"credit amount must be greater than zero, got {amount}")
        self.receipts.append(Receipt(payment_id=receipt_id, amount=amount, unapplied=amount))

    def holds(self, invoice_id: str) -> bool:
        """Whether the book has a row for ``invoice_id`` (it may have been folded away)."""
        return self._invoice(invoice_id) is not None

    def fold(self, invoice_ids: set[str]) -> list[Receivable]:
        """Fold settled invoices and fully applied receipts into the book's sums.

        Folding changes no figure: ``balance_due``, ``unapplied``, ``received`` and ``applied``
        are the same before and after, so the invariant holds. Only invoices with nothing owed
        fold, and only receipts with nothing left to apply, so no later ``issue`` or ``receive``
        would have touched them (repeated payment ids are the caller's to remember).

        Args:
            invoice_ids: the invoices to fold; each must be settled.

        Returns:
            The invoices folded, in order of issue.

        Raises:
            ValueError: an invoice in ``invoice_ids`` still has a balance.
        """
        folded = [i for i in self.invoices if i.invoice_id in invoice_ids]
        owing = [i.invoice_id for i in folded if i.balance != 0]
        if owing:
            raise ValueError(f"only settled invoices fold; still owed on {', '.join(owing)}")
        self.invoices = [i for i in self.invoices if i.invoice_id not in invoice_ids]
        self.folded_applied += sum((i.paid for i in folded), ZERO)
        spent = [r for r in self.receipts if r.unapplied == 0]
        self.receipts = [r for r in self.receipts if r.unapplied != 0]
        self.folded_received += sum((r.amount for r in spent), ZERO)
        return folded

    def balance(self, invoice_id: str) -> Decimal:
        """What is still owed on ``invoice_id``.

        Raises:
            KeyError: the invoice is not in the book.
        """
        return self._receivable(invoice_id).balance

    @property
    def balance_due(self) -> Decimal:
        """What is owed on all invoices."""
        return sum((i.balance for i in self.invoices), ZERO)

    @property
    def unapplied(self) -> Decimal:
        """Cash received and not yet applied to an invoice."""
        return sum((r.unapplied for r in self.receipts), ZERO)

    @property
    def received(self) -> Decimal:
        """All payments, and the credit excesses that became cash."""
        return self.folded_received + sum((r.amount for r in self.receipts), ZERO)

    @property
    def applied(self) -> Decimal:
        """All cash applied to invoices."""
        return self.folded_applied + sum((i.paid for i in self.invoices), ZERO)
