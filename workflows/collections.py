"""Cash and collections of one contract: payments, unapplied cash, credit notes, dunning.

The cash book (``domain.collections.CashBook``) decides where each amount goes; activities
record it in the ERP. An overpayment waits as unapplied cash for the next invoice; a repeated
payment id changes nothing. An unpaid invoice becomes ``overdue`` the day after it is due, and
reminders go out at the configured offsets after the due date, each recorded on the CRM
account; the last one raises an exception to the finance queue; a payment stops dunning.
This class is part of the workflow: deterministic, no I/O except through activities.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.carried import CollectionsState
    from domain.collections import Application, CashBook, dunning_dates
    from domain.models import (
        CreditInvoice,
        CreditNoteSummary,
        InvoiceStatus,
        InvoiceSummary,
        PaymentReceived,
        ResolveException,
        SettledInvoices,
    )
    from domain.money import round_money
    from domain.names import ExceptionAction
    from domain.periods import Period
    from domain.revenue import revenue_method
    from domain.steps import (
        APPLY_CASH,
        APPLY_PAYMENT,
        ISSUE_CREDIT_NOTE,
        SEND_DUNNING_REMINDER,
        ApplyCashInput,
        ApplyPaymentInput,
        CashApplication,
        CreditNoteInput,
        CreditNoteIssued,
        DunningInput,
        PaymentApplied,
        RevenuePlan,
    )

if TYPE_CHECKING:
    from workflows.contract_to_cash import ContractToCash

ZERO = Decimal(0)


def instant(day: date) -> datetime:
    """The first moment of ``day`` (UTC): when a calendar event of that day is due."""
    return datetime.combine(day, time(), tzinfo=UTC)


class Collections:
    """The receivables of one contract and the steps that collect them."""

    #: The step name of a dunning escalation, as operators see it in the exception queue.
    DUNNING_STEP = "dunning"
    #: The step name of cash c2c cannot apply (another currency, or left at closing).
    CASH_STEP = "cash"

    def __init__(self, wf: ContractToCash) -> None:
        self.wf = wf
        self.book = CashBook()
        self._invoices: list[InvoiceSummary] = []
        self._payments_seen: set[str] = set()
        self._credit_notes: list[CreditNoteSummary] = []
        self._credited_subtotal: dict[str, Decimal] = {}
        #: Cash-book receipt id of a credit note's excess → the credit note in the ERP.
        self._credit_receipts: dict[str, str] = {}
        self._overdue: set[str] = set()
        self._dunned: dict[str, int] = {}
        self._dunning_stopped: set[str] = set()
        #: Open dunning escalations: exception id → invoice id.
        self._escalations: dict[str, str] = {}
        #: Invoices settled in earlier runs, folded into sums at a hand-over.
        self.settled = SettledInvoices()

    def state(self, keep: Collection[str] = ()) -> CollectionsState:
        """Receivables, cash and dunning, to carry into the contract's next run: settled
        invoices folded into sums, except those in ``keep``."""
        return CollectionsState(
            book=self.book.model_copy(deep=True),
            invoices=list(self._invoices),
            payments_seen=sorted(self._payments_seen),
            credit_notes=list(self._credit_notes),
            credited_subtotal=dict(self._credited_subtotal),
            credit_receipts=dict(self._credit_receipts),
            overdue=sorted(self._overdue),
            dunned=dict(self._dunned),
            dunning_stopped=sorted(self._dunning_stopped),
            escalations=dict(self._escalations),
            settled=self.settled,
        ).folded(keep)

    def restore(self, state: CollectionsState) -> None:
        """Take up the receivables a previous run of the contract ended with."""
        self.book = state.book.model_copy(deep=True)
        self._invoices = list(state.invoices)
        self._payments_seen = set(state.payments_seen)
        self._credit_notes = list(state.credit_notes)
        self._credited_subtotal = dict(state.credited_subtotal)
        self._credit_receipts = dict(state.credit_receipts)
        self._overdue = set(state.overdue)
        self._dunned = dict(state.dunned)
        self._dunning_stopped = set(state.dunning_stopped)
        self._escalations = dict(state.escalations)
        self.settled = state.settled

    # ------------------------------------------------------------------ views

    def balance_due(self) -> Decimal:
        return self.book.balance_due

    def unapplied(self) -> Decimal:
        return self.book.unapplied

    def credit_notes(self) -> list[CreditNoteSummary]:
        return list(self._credit_notes)

    def invoice_views(self) -> list[InvoiceSummary]:
        views = []
        for inv in self._invoices:
            r = next(r for r in self.book.invoices if r.invoice_id == inv.invoice_id)
            status: InvoiceStatus = "issued"
            if r.credit_notes >= r.total:
                status = "credited"
            elif r.balance <= 0:
                status = "paid"
            elif inv.invoice_id in self._overdue:
                status = "overdue"
            elif r.paid > 0:
                status = "partially_paid"
            views.append(
                inv.model_copy(
                    update={
                        "amount_paid": r.paid,
                        "amount_credited": r.credit_notes,
                        "status": status,
                        "dunning_level": self._dunned.get(inv.invoice_id, 0),
                    }
                )
            )
        return views

    def holds(self, invoice_id: str) -> bool:
        """Whether this run holds ``invoice_id`` (not folded as settled in an earlier run)."""
        return self._invoice(invoice_id) is not None

    def _invoice(self, invoice_id: str) -> InvoiceSummary | None:
        return next((i for i in self._invoices if i.invoice_id == invoice_id), None)

    # ------------------------------------------------------------------ cash

    async def issued(self, invoice: InvoiceSummary) -> None:
        """A new invoice: apply cash that was waiting for it."""
        if self._invoice(invoice.invoice_id) is not None:
            return
        self._invoices.append(invoice)
        applications = self.book.issue(invoice.invoice_id, invoice.total)
        self.wf.changed()
        if await self._apply_cash(applications, f"to {invoice.number}"):
            applied = sum((a.amount for a in applications), ZERO)
            self.wf.record(
                f"unapplied cash of {applied} {self.wf.c.currency} applied to invoice "
                f"{invoice.number}"
            )
            await self._settled(invoice.invoice_id)

    async def _apply_cash(self, applications: list[Application], what: str) -> bool:
        """Apply held cash in the ERP; whether there was any to apply."""
        if not applications:
            return False
        await self.wf.step(
            APPLY_CASH,
            ApplyCashInput(
                contract_id=self.wf.c.contract_id,
                applications=[
                    CashApplication(
                        source_id=a.payment_id,
                        invoice_id=a.invoice_id,
                        amount=a.amount,
                        credit_note_id=self._credit_receipts.get(a.payment_id),
                    )
                    for a in applications
                ],
            ),
            None,
            summary=f"apply unapplied cash {what}",
        )
        return True

    async def receive(self, payment: PaymentReceived) -> None:
        wf, ccy = self.wf, self.wf.c.currency
        pid = payment.payment_id
        if pid in self._payments_seen:
            wf.record(f"payment {pid} already applied: ignored")
            return
        if payment.currency != ccy:
            self._payments_seen.add(pid)
            wf.record(
                f"payment {pid} is in {payment.currency}, the contract in {ccy}: not applied; "
                "refund or convert it in the ERP"
            )
            if wf.ordered:
                # Never in silence: the cash is the customer's, and finance must act on it.
                await wf.open_exception(
                    self.CASH_STEP,
                    "c2c",
                    "payment_currency_mismatch",
                    f"payment {pid} of {payment.amount} {payment.currency} received on "
                    f"{payment.received_on} cannot be applied to a contract in {ccy}: refund or "
                    "convert it in the ERP, then skip to close this exception",
                    blocking=False,
                    subject=pid,
                )
            return
        target = self._target(payment)
        applied = await wf.step(
            APPLY_PAYMENT,
            ApplyPaymentInput(
                contract_id=wf.c.contract_id,
                payment=payment,
                invoice_id=target,
                erp_contract_id=wf.refs["erp_contract_id"],
            ),
            PaymentApplied,
            summary=f"apply payment {pid}",
        )
        self._payments_seen.add(pid)
        # An operator's skip means the payment was recorded by hand: the book still counts it.
        applications = self.book.receive(pid, payment.amount, payment.invoice_id)
        wf.changed()
        # The ERP applied the payment to its target; what is left goes to the other open
        # invoices, oldest first.
        others = [a for a in applications if a.invoice_id != target]
        if applied is not None:
            await self._apply_cash(others, f"of payment {pid}")
        inv = self._invoice(target) if target else None
        if applied is None:
            wf.record(f"payment {pid} recorded by operator outside c2c")
        elif inv is None:
            wf.record(
                f"payment {pid} of {payment.amount} {ccy} matches no open invoice: "
                "kept as unapplied cash for the next invoice"
            )
        else:
            extra = (
                f"; {applied.unapplied} {ccy} kept as unapplied cash" if applied.unapplied else ""
            )
            wf.record(
                f"payment {pid}: {applied.applied} {ccy} applied to invoice {inv.number}{extra}"
            )
        for invoice_id in dict.fromkeys(a.invoice_id for a in applications):
            await self._settled(invoice_id)

    def _target(self, payment: PaymentReceived) -> str | None:
        """The invoice a payment goes to: the one it names, else the oldest with a balance."""
        if payment.invoice_id is not None:
            known = self._invoice(payment.invoice_id) is not None
            return payment.invoice_id if known else None
        return next((r.invoice_id for r in self.book.invoices if r.balance > 0), None)

    async def _settled(self, invoice_id: str) -> None:
        """When an invoice is settled, its dunning stops and its escalation closes."""
        if self.book.balance(invoice_id) > 0:
            return
        self._overdue.discard(invoice_id)
        for exception_id, dunned in list(self._escalations.items()):
            if dunned == invoice_id:
                del self._escalations[exception_id]
                await self.wf.close_exception(
                    exception_id,
                    default=ResolveException(
                        exception_id=exception_id,
                        action=ExceptionAction.SKIP,
                        operator="c2c",
                        note="invoice settled: dunning stopped",
                    ),
                )

    # ------------------------------------------------------------------ credit notes

    async def credit(self, request: CreditInvoice) -> None:
        """An operator's correction of an issued invoice, by credit note."""
        wf, ccy = self.wf, self.wf.c.currency
        inv = self._invoice(request.invoice_id)
        if inv is None:
            # An invoice settled before the contract last continued as new is folded into sums:
            # what is left to credit on it is no longer known here, so c2c does not guess.
            wf.record(
                f"credit of invoice {request.invoice_id} refused: not an open or recent invoice "
                "of this contract (invoices settled in earlier runs are credited in the ERP)"
            )
            return
        if request.credit_note_id and any(
            n.credit_note_id == request.credit_note_id for n in self._credit_notes
        ):
            wf.record(f"credit note {request.credit_note_id} already issued: ignored")
            return
        left = inv.subtotal - self._credited_subtotal.get(inv.invoice_id, ZERO)
        if round_money(request.amount, ccy) != request.amount:
            wf.record(
                f"credit of {request.amount} {ccy} on invoice {inv.number} refused: "
                f"more decimals than {ccy} has"
            )
            return
        if request.amount > left or request.amount <= 0:
            wf.record(
                f"credit of {request.amount} {ccy} on invoice {inv.number} refused: "
                f"between 0 and {left} {ccy} (before tax) is left to credit"
            )
            return
        await self.issue_credit(
            inv.invoice_id, request.amount, request.reason, request.credit_note_id, reverse=True
        )

    async def issue_credit(
        self,
        invoice_id: str,
        amount: Decimal,
        reason: str,
        credit_note_id: str | None = None,
        *,
        reverse: bool = False,
    ) -> None:
        """Credit ``amount`` (before tax) of an issued invoice; any excess becomes cash.

        With ``reverse``, revenue that followed the invoice (time and materials) is reversed
        by the same amount; a retainer's unused days were never recognised, so they are not.
        """
        wf, c = self.wf, self.wf.c
        count = sum(1 for n in self._credit_notes if n.invoice_id == invoice_id)
        note_id = credit_note_id or f"{invoice_id}-CN{count + 1}"
        method = revenue_method(c.billing_model)
        plan = None
        if reverse and method == "as_invoiced":
            period = str(Period.of(workflow.now().date()))
            plan = RevenuePlan(
                entry_id=f"{c.contract_id}:credit:{note_id}",
                period=period,
                method=method,
                amount=-amount,
                description=f"credit note on {invoice_id}: {reason}",
            )
        issued = await wf.step(
            ISSUE_CREDIT_NOTE,
            CreditNoteInput(
                contract_id=c.contract_id,
                credit_note_id=note_id,
                invoice_id=invoice_id,
                amount=amount,
                reason=reason,
                currency=c.currency,
                legal_entity=c.legal_entity,
                country=c.customer.country,
                region=c.customer.region,
                customer_tax_id=wf.validated.customer_tax_id if wf.validated else None,
                seller_country=wf.validated.legal_entity_country if wf.validated else None,
                on=workflow.now().date(),
                erp_contract_id=wf.refs.get("erp_contract_id"),
                revenue=plan,
                revenue_method=method,
            ),
            CreditNoteIssued,
            summary=f"credit note on {invoice_id}",
        )
        if issued is None:
            wf.record(f"credit of {amount} on invoice {invoice_id} handled by operator outside c2c")
            return
        note = issued.credit_note
        self._credit_notes.append(note)
        if issued.revenue is not None:
            wf.billing.revenue = issued.revenue
        self._credited_subtotal[invoice_id] = (
            self._credited_subtotal.get(invoice_id, ZERO) + note.subtotal
        )
        if self.book.holds(invoice_id):
            excess = self.book.credit(invoice_id, note.total)
        else:
            # Settled and folded in an earlier run: nothing is owed on it, the credit is cash.
            excess = note.total
            self.book.credit_settled(f"credit:{note.credit_note_id}", excess)
        if excess > 0:
            receipt = self.book.receipts[-1].payment_id
            self._credit_receipts[receipt] = note.credit_note_id
        wf.billing.credited(note.subtotal)
        wf.changed()
        wf.record(
            f"credit note {note.number} on invoice {invoice_id}: {note.subtotal} + tax {note.tax} "
            f"= {note.total} {c.currency} ({reason})"
            + (f"; {excess} {c.currency} becomes customer credit" if excess else "")
        )
        await self._settled(invoice_id)

    async def void_unpaid(self, reason: str) -> None:
        """Credit every invoice nothing was paid on, newest first: the void of an issued
        invoice is a credit note for what is left of it."""
        for inv in reversed(self._invoices):
            r = next(r for r in self.book.invoices if r.invoice_id == inv.invoice_id)
            left = inv.subtotal - self._credited_subtotal.get(inv.invoice_id, ZERO)
            if r.paid == 0 and left > 0:
                await self.issue_credit(inv.invoice_id, left, reason, reverse=True)

    # ------------------------------------------------------------------ overdue and dunning

    def _events(self) -> list[tuple[date, str, int]]:
        """The next calendar event of each unpaid invoice: (day, invoice id, level).

        Level 0 marks the invoice overdue (the day after its due date); 1… are reminders.
        """
        events = []
        offsets = self.wf.dunning_offsets
        for inv in self._invoices:
            iid = inv.invoice_id
            if iid in self._dunning_stopped or self.book.balance(iid) <= 0:
                continue
            if iid not in self._overdue:
                events.append((inv.due_on + timedelta(days=1), iid, 0))
                continue
            sent = self._dunned.get(iid, 0)
            upcoming = [
                (d, level) for level, d in dunning_dates(inv.due_on, offsets) if level > sent
            ]
            if upcoming:
                day, level = upcoming[0]
                events.append((day, iid, level))
        return events

    def next_wake(self) -> datetime | None:
        days = [day for day, _, _ in self._events()]
        return instant(min(days)) if days else None

    def work_due(self) -> bool:
        today = workflow.now().date()
        decided = any(self.wf.decision(eid) for eid in self._escalations)
        return decided or any(day <= today for day, _, _ in self._events())

    async def do_due_work(self) -> None:
        await self._decide_escalations()
        today = workflow.now().date()
        for day, iid, level in self._events():
            if day > today:
                continue
            inv = self._invoice(iid)
            assert inv is not None
            if level == 0:
                self._overdue.add(iid)
                self.wf.record(f"invoice {inv.number} is overdue (due {inv.due_on})")
                continue
            # After a long pause only the latest reminder due goes out, not the whole series.
            levels = dunning_dates(inv.due_on, self.wf.dunning_offsets)
            level = max(lv for lv, d in levels if d <= today)
            await self._remind(inv, level, final=level == len(levels))

    async def _remind(self, inv: InvoiceSummary, level: int, *, final: bool) -> None:
        wf, c = self.wf, self.wf.c
        balance = self.book.balance(inv.invoice_id)
        self._dunned[inv.invoice_id] = level
        await wf.step(
            SEND_DUNNING_REMINDER,
            DunningInput(
                contract_id=c.contract_id,
                crm_account_id=c.customer.crm_account_id,
                invoice_id=inv.invoice_id,
                invoice_number=inv.number,
                level=level,
                final=final,
                balance=balance,
                currency=c.currency,
                due_on=inv.due_on,
                # The reminder's scheduled day, not today: a re-run sends the same reminder.
                on=dict(dunning_dates(inv.due_on, wf.dunning_offsets)).get(
                    level, workflow.now().date()
                ),
            ),
            None,
            summary=f"dunning reminder {level} for {inv.number}",
        )
        wf.record(
            f"{'final ' if final else ''}reminder {level} for invoice {inv.number} recorded in "
            f"CRM: {balance} {c.currency} outstanding"
        )
        if final and inv.invoice_id not in self._escalations.values():
            exception_id = await wf.open_exception(
                self.DUNNING_STEP,
                "c2c",
                "dunning_exhausted",
                f"invoice {inv.number} is unpaid after the final reminder: {balance} "
                f"{c.currency} due since {inv.due_on}. Retry sends the final reminder again; "
                "skip stops dunning this invoice (collected outside c2c)",
                blocking=False,
                subject=inv.invoice_id,
            )
            self._escalations[exception_id] = inv.invoice_id

    async def _decide_escalations(self) -> None:
        for exception_id, iid in list(self._escalations.items()):
            if self.wf.decision(exception_id) is None:
                continue
            del self._escalations[exception_id]
            decision = await self.wf.close_exception(exception_id)
            inv = self._invoice(iid)
            assert inv is not None
            if decision.action is ExceptionAction.RETRY:
                levels = len(self.wf.dunning_offsets)
                self._dunned[iid] = levels
                await self._remind(inv, levels + 1, final=True)
            elif decision.action is ExceptionAction.SKIP:
                self._dunning_stopped.add(iid)
                self.wf.record(
                    f"dunning of invoice {inv.number} stopped by {decision.operator}"
                    + (f": {decision.note}" if decision.note else "")
                )
