"""Cash and collections of one contract: payments, unapplied cash, credit notes, dunning.

The cash book (``domain.collections.CashBook``) decides where each amount goes; activities
record it in the ERP. An overpayment waits as unapplied cash for the next invoice; a repeated
payment id changes nothing. An unpaid invoice becomes ``overdue`` the day after it is due, and
reminders go out at the configured offsets after the due date, each recorded on the CRM
account; the last one raises an exception to the finance queue; a payment stops dunning.
Each decision is a generator function of the contract's state (``ContractState``), the message
and a clock (``workflows.commands``): it changes ``state.collections`` and yields the steps to
run, the exceptions to open or close and the lines to record; it holds no reference to the
workflow, and tests drive it without one.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.collections import Application, dunning_dates
    from domain.contract_state import ContractState, instant
    from domain.models import (
        CreditInvoice,
        InvoiceStatus,
        InvoiceSummary,
        PaymentReceived,
        ResolveException,
    )
    from domain.money import round_money
    from domain.names import ExceptionAction
    from domain.periods import Period
    from domain.revenue import revenue_method
    from domain.steps import (
        APPLY_CASH,
        APPLY_PAYMENT,
        ISSUE_CREDIT_NOTE,
        LOOK_UP_PAYMENT,
        RECORD_SECTION_PAYMENT,
        SEND_DUNNING_REMINDER,
        ApplyCashInput,
        ApplyPaymentInput,
        CashApplication,
        CreditNoteInput,
        CreditNoteIssued,
        DunningInput,
        PaymentApplied,
        PaymentKnown,
        PaymentLookUp,
        RevenuePlan,
    )
    from workflows.commands import (
        Clock,
        CloseException,
        Decision,
        OpenException,
        ReadLedger,
        Record,
        RunStep,
        Wake,
    )

ZERO = Decimal(0)


#: The step name of a dunning escalation, as operators see it in the exception queue.
DUNNING_STEP = "dunning"

#: The step name of cash c2c cannot apply (another currency, or left at closing).
CASH_STEP = "cash"


def _add(items: list[str], item: str) -> None:
    """Add ``item`` to a list kept as a set."""
    if item not in items:
        items.append(item)


# ------------------------------------------------------------------ views


def invoice_views(s: ContractState) -> list[InvoiceSummary]:
    col, views = s.collections, []
    for inv in col.invoices:
        r = next(r for r in col.book.invoices if r.invoice_id == inv.invoice_id)
        status: InvoiceStatus = "issued"
        if r.credit_notes >= r.total:
            status = "credited"
        elif r.balance <= 0:
            status = "paid"
        elif inv.invoice_id in col.overdue:
            status = "overdue"
        elif r.paid > 0:
            status = "partially_paid"
        views.append(
            inv.model_copy(
                update={
                    "amount_paid": r.paid,
                    "amount_credited": r.credit_notes,
                    "status": status,
                    "dunning_level": col.dunned.get(inv.invoice_id, 0),
                }
            )
        )
    return views


def holds(s: ContractState, invoice_id: str) -> bool:
    """Whether this run holds ``invoice_id`` (not folded as settled in an earlier run)."""
    return _invoice(s, invoice_id) is not None


def _invoice(s: ContractState, invoice_id: str) -> InvoiceSummary | None:
    return next((i for i in s.collections.invoices if i.invoice_id == invoice_id), None)


# ------------------------------------------------------------------ cash


def issued(s: ContractState, now: Clock, invoice: InvoiceSummary) -> Decision[None]:
    """A new invoice: apply cash that was waiting for it."""
    col = s.collections
    if _invoice(s, invoice.invoice_id) is not None:
        return
    col.invoices.append(invoice)
    applications = col.book.issue(invoice.invoice_id, invoice.total)
    yield Wake()
    if (yield from _apply_cash(s, applications, f"to {invoice.number}")):
        applied = sum((a.amount for a in applications), ZERO)
        yield Record(
            f"unapplied cash of {applied} {s.contract.currency} applied to invoice {invoice.number}"
        )
        yield from _settled(s, invoice.invoice_id)


def _apply_cash(s: ContractState, applications: list[Application], what: str) -> Decision[bool]:
    """Apply held cash in the ERP; whether there was any to apply."""
    if not applications:
        return False
    yield RunStep(
        APPLY_CASH,
        ApplyCashInput(
            contract_id=s.contract.contract_id,
            applications=[
                CashApplication(
                    source_id=a.payment_id,
                    invoice_id=a.invoice_id,
                    amount=a.amount,
                    credit_note_id=s.collections.credit_receipts.get(a.payment_id),
                )
                for a in applications
            ],
        ),
        None,
        summary=f"apply unapplied cash {what}",
    )
    return True


def receive(s: ContractState, now: Clock, payment: PaymentReceived) -> Decision[None]:
    col, ccy = s.collections, s.contract.currency
    pid = payment.payment_id
    if pid not in col.payments_seen and col.payments_forgotten:
        # Earlier runs forgot some ids: the ledger holds every payment the contract applied.
        seen: PaymentKnown = yield ReadLedger(
            LOOK_UP_PAYMENT,
            PaymentLookUp(contract_id=s.contract.contract_id, payment_id=pid),
            PaymentKnown,
            f"look up payment {pid}",
        )
        if seen.known:
            _add(col.payments_seen, pid)
    if pid in col.payments_seen:
        yield Record(f"payment {pid} already applied: ignored")
        return
    if payment.currency != ccy:
        _add(col.payments_seen, pid)
        _add(col.payments_off_ledger, pid)
        yield Record(
            f"payment {pid} is in {payment.currency}, the contract in {ccy}: not applied; "
            "refund or convert it in the ERP"
        )
        if s.ordered:
            # Never in silence: the cash is the customer's, and finance must act on it.
            yield OpenException(
                CASH_STEP,
                "c2c",
                "payment_currency_mismatch",
                f"payment {pid} of {payment.amount} {payment.currency} received on "
                f"{payment.received_on} cannot be applied to a contract in {ccy}: refund or "
                "convert it in the ERP, then skip to close this exception",
                subject=pid,
            )
        return
    target = _target(s, payment)
    # A part of a consolidated invoice's payment: the customer's billing workflow recorded
    # the payment in the ERP, on the consolidated invoice; the contract records its part.
    consolidated = payment.consolidated_invoice_id is not None
    applied: PaymentApplied | None = yield RunStep(
        RECORD_SECTION_PAYMENT if consolidated else APPLY_PAYMENT,
        ApplyPaymentInput(
            contract_id=s.contract.contract_id,
            payment=payment,
            invoice_id=target,
            erp_contract_id=s.refs["erp_contract_id"],
        ),
        PaymentApplied,
        summary=f"apply payment {pid}",
    )
    _add(col.payments_seen, pid)
    if applied is None:
        _add(col.payments_off_ledger, pid)
    # An operator's skip means the payment was recorded by hand: the book still counts it.
    applications = col.book.receive(pid, payment.amount, payment.invoice_id)
    yield Wake()
    # The ERP applied the payment to its target; what is left goes to the other open
    # invoices, oldest first.
    others = [a for a in applications if a.invoice_id != target]
    if applied is not None and not consolidated:
        yield from _apply_cash(s, others, f"of payment {pid}")
    inv = _invoice(s, target) if target else None
    if applied is None:
        yield Record(f"payment {pid} recorded by operator outside c2c")
    elif inv is None:
        yield Record(
            f"payment {pid} of {payment.amount} {ccy} matches no open invoice: "
            "kept as unapplied cash for the next invoice"
        )
    else:
        extra = f"; {applied.unapplied} {ccy} kept as unapplied cash" if applied.unapplied else ""
        yield Record(
            f"payment {pid}: {applied.applied} {ccy} applied to invoice {inv.number}{extra}"
        )
    for invoice_id in dict.fromkeys(a.invoice_id for a in applications):
        yield from _settled(s, invoice_id)


def _target(s: ContractState, payment: PaymentReceived) -> str | None:
    """The invoice a payment goes to: the one it names, else the oldest with a balance."""
    if payment.invoice_id is not None:
        known = _invoice(s, payment.invoice_id) is not None
        return payment.invoice_id if known else None
    return next((r.invoice_id for r in s.collections.book.invoices if r.balance > 0), None)


def _settled(s: ContractState, invoice_id: str) -> Decision[None]:
    """When an invoice is settled, its dunning stops and its escalation closes."""
    col = s.collections
    if col.book.balance(invoice_id) > 0:
        return
    if invoice_id in col.overdue:
        col.overdue.remove(invoice_id)
    for exception_id, dunned in list(col.escalations.items()):
        if dunned == invoice_id:
            del col.escalations[exception_id]
            yield CloseException(
                exception_id,
                default=ResolveException(
                    exception_id=exception_id,
                    action=ExceptionAction.SKIP,
                    operator="c2c",
                    note="invoice settled: dunning stopped",
                ),
            )


# ------------------------------------------------------------------ credit notes


def credit(s: ContractState, now: Clock, request: CreditInvoice) -> Decision[None]:
    """An operator's correction of an issued invoice, by credit note."""
    col, ccy = s.collections, s.contract.currency
    inv = _invoice(s, request.invoice_id)
    if inv is None:
        # An invoice settled before the contract last continued as new is folded into sums:
        # what is left to credit on it is no longer known here, so c2c does not guess.
        yield Record(
            f"credit of invoice {request.invoice_id} refused: not an open or recent invoice "
            "of this contract (invoices settled in earlier runs are credited in the ERP)"
        )
        return
    if request.credit_note_id and any(
        n.credit_note_id == request.credit_note_id for n in col.credit_notes
    ):
        yield Record(f"credit note {request.credit_note_id} already issued: ignored")
        return
    left = inv.subtotal - col.credited_subtotal.get(inv.invoice_id, ZERO)
    if round_money(request.amount, ccy) != request.amount:
        yield Record(
            f"credit of {request.amount} {ccy} on invoice {inv.number} refused: "
            f"more decimals than {ccy} has"
        )
        return
    if request.amount > left or request.amount <= 0:
        yield Record(
            f"credit of {request.amount} {ccy} on invoice {inv.number} refused: "
            f"between 0 and {left} {ccy} (before tax) is left to credit"
        )
        return
    yield from issue_credit(
        s, now, inv.invoice_id, request.amount, request.reason, request.credit_note_id, reverse=True
    )


def issue_credit(
    s: ContractState,
    now: Clock,
    invoice_id: str,
    amount: Decimal,
    reason: str,
    credit_note_id: str | None = None,
    *,
    reverse: bool = False,
) -> Decision[None]:
    """Credit ``amount`` (before tax) of an issued invoice; any excess becomes cash.

    With ``reverse``, revenue that followed the invoice (time and materials) is reversed
    by the same amount; a retainer's unused days were never recognised, so they are not.
    """
    col, c = s.collections, s.contract
    count = sum(1 for n in col.credit_notes if n.invoice_id == invoice_id)
    note_id = credit_note_id or f"{invoice_id}-CN{count + 1}"
    method = revenue_method(c.billing_model)
    plan = None
    if reverse and method == "as_invoiced":
        period = str(Period.of(now().date()))
        plan = RevenuePlan(
            entry_id=f"{c.contract_id}:credit:{note_id}",
            period=period,
            method=method,
            amount=-amount,
            description=f"credit note on {invoice_id}: {reason}",
        )
    issued: CreditNoteIssued | None = yield RunStep(
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
            customer_tax_id=s.validated.customer_tax_id if s.validated else None,
            seller_country=s.validated.legal_entity_country if s.validated else None,
            on=now().date(),
            erp_contract_id=s.refs.get("erp_contract_id"),
            revenue=plan,
            revenue_method=method,
        ),
        CreditNoteIssued,
        summary=f"credit note on {invoice_id}",
    )
    if issued is None:
        yield Record(f"credit of {amount} on invoice {invoice_id} handled by operator outside c2c")
        return
    note = issued.credit_note
    col.credit_notes.append(note)
    if issued.revenue is not None:
        s.billing.revenue = issued.revenue
    col.credited_subtotal[invoice_id] = col.credited_subtotal.get(invoice_id, ZERO) + note.subtotal
    if col.book.holds(invoice_id):
        excess = col.book.credit(invoice_id, note.total)
    else:
        # Settled and folded in an earlier run: nothing is owed on it, the credit is cash.
        excess = note.total
        col.book.credit_settled(f"credit:{note.credit_note_id}", excess)
    if excess > 0:
        receipt = col.book.receipts[-1].payment_id
        col.credit_receipts[receipt] = note.credit_note_id
    # What the not-to-exceed cap is measured against: invoices less credit notes.
    s.billing.billed_to_date -= note.subtotal
    yield Wake()
    yield Record(
        f"credit note {note.number} on invoice {invoice_id}: {note.subtotal} + tax {note.tax} "
        f"= {note.total} {c.currency} ({reason})"
        + (f"; {excess} {c.currency} becomes customer credit" if excess else "")
    )
    yield from _settled(s, invoice_id)


def void_unpaid(s: ContractState, now: Clock, reason: str) -> Decision[None]:
    """Credit every invoice nothing was paid on, newest first: the void of an issued
    invoice is a credit note for what is left of it."""
    col = s.collections
    for inv in reversed(col.invoices):
        r = next(r for r in col.book.invoices if r.invoice_id == inv.invoice_id)
        left = inv.subtotal - col.credited_subtotal.get(inv.invoice_id, ZERO)
        if r.paid == 0 and left > 0:
            yield from issue_credit(s, now, inv.invoice_id, left, reason, reverse=True)


# ------------------------------------------------------------------ overdue and dunning


def _events(s: ContractState) -> list[tuple[date, str, int]]:
    """The next calendar event of each unpaid invoice: (day, invoice id, level).

    Level 0 marks the invoice overdue (the day after its due date); 1… are reminders.
    """
    col, events = s.collections, []
    offsets = s.dunning_offsets
    for inv in col.invoices:
        iid = inv.invoice_id
        if iid in col.dunning_stopped or col.book.balance(iid) <= 0:
            continue
        if iid not in col.overdue:
            events.append((inv.due_on + timedelta(days=1), iid, 0))
            continue
        sent = col.dunned.get(iid, 0)
        upcoming = [(d, level) for level, d in dunning_dates(inv.due_on, offsets) if level > sent]
        if upcoming:
            day, level = upcoming[0]
            events.append((day, iid, level))
    return events


def next_wake(s: ContractState) -> datetime | None:
    days = [day for day, _, _ in _events(s)]
    return instant(min(days)) if days else None


def work_due(s: ContractState, now: datetime) -> bool:
    today = now.date()
    decided = any(s.decisions.get(eid) for eid in s.collections.escalations)
    return decided or any(day <= today for day, _, _ in _events(s))


def do_due_work(s: ContractState, now: Clock) -> Decision[None]:
    yield from _decide_escalations(s, now)
    today = now().date()
    for day, iid, level in _events(s):
        if day > today:
            continue
        inv = _invoice(s, iid)
        assert inv is not None
        if level == 0:
            _add(s.collections.overdue, iid)
            yield Record(f"invoice {inv.number} is overdue (due {inv.due_on})")
            continue
        # After a long pause only the latest reminder due goes out, not the whole series.
        levels = dunning_dates(inv.due_on, s.dunning_offsets)
        level = max(lv for lv, d in levels if d <= today)
        yield from _remind(s, now, inv, level, final=level == len(levels))


def _remind(
    s: ContractState, now: Clock, inv: InvoiceSummary, level: int, *, final: bool
) -> Decision[None]:
    col, c = s.collections, s.contract
    balance = col.book.balance(inv.invoice_id)
    col.dunned[inv.invoice_id] = level
    yield RunStep(
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
            on=dict(dunning_dates(inv.due_on, s.dunning_offsets)).get(level, now().date()),
            consolidated_invoice_id=inv.consolidated_invoice_id,
        ),
        None,
        summary=f"dunning reminder {level} for {inv.number}",
    )
    what = f"{'final ' if final else ''}reminder {level} for invoice {inv.number}"
    if inv.consolidated_invoice_id is not None:
        # One reminder per consolidated invoice and level, whichever contract sends it.
        what += f" (consolidated; this contract's section owes {balance} {c.currency})"
        yield Record(f"{what} recorded in CRM")
    else:
        yield Record(f"{what} recorded in CRM: {balance} {c.currency} outstanding")
    if final and inv.invoice_id not in col.escalations.values():
        exception_id: str = yield OpenException(
            DUNNING_STEP,
            "c2c",
            "dunning_exhausted",
            f"invoice {inv.number} is unpaid after the final reminder: {balance} "
            f"{c.currency} due since {inv.due_on}. Retry sends the final reminder again; "
            "skip stops dunning this invoice (collected outside c2c)",
            subject=inv.invoice_id,
        )
        col.escalations[exception_id] = inv.invoice_id


def _decide_escalations(s: ContractState, now: Clock) -> Decision[None]:
    col = s.collections
    for exception_id, iid in list(col.escalations.items()):
        if s.decisions.get(exception_id) is None:
            continue
        del col.escalations[exception_id]
        decision: ResolveException = yield CloseException(exception_id)
        inv = _invoice(s, iid)
        assert inv is not None
        if decision.action is ExceptionAction.RETRY:
            levels = len(s.dunning_offsets)
            col.dunned[iid] = levels
            yield from _remind(s, now, inv, levels + 1, final=True)
        elif decision.action is ExceptionAction.SKIP:
            _add(col.dunning_stopped, iid)
            yield Record(
                f"dunning of invoice {inv.number} stopped by {decision.operator}"
                + (f": {decision.note}" if decision.note else "")
            )
