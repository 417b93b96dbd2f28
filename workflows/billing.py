"""What a contract bills, when, and the revenue each bill carries: the workflow's decisions.

Every billing model goes through one activity (``bill_period``) that freezes, prices, caps,
taxes and issues one invoice under a business reference, so the same bill is never made twice:

- time and materials: approved time at the rate card on each work date, expenses passed
  through (with the contract's markup), at each period close; revenue as invoiced;
- fixed fee: completed milestones at the next period close (or at once, if the contract says
  so); revenue by milestones completed (output method), posted as a cumulative catch-up;
- retainer: the monthly fee in advance (the first month at activation, each next month at a
  period close) prorated by days, with approved hours beyond the included ones billed as
  overage; revenue ratably, month by month.

A not-to-exceed cap holds back what would exceed it and asks the delivery queue what to do.
Each decision is a generator function of the contract's state (``ContractState``), the message
and a clock (``workflows.commands``): it changes ``state.billing`` and yields the steps to run
and the lines to record; it holds no reference to the workflow, and tests drive it without one.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from decimal import Decimal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.amendments import Terms, check_amendment
    from domain.billing import (
        RetainerTerms,
        held_fee_part,
        included_hours_for,
        milestone_line,
        prorate,
        release_line,
        release_lines,
        retainer_fee_line,
        split_release,
    )
    from domain.consolidation import section_id
    from domain.contract_state import FINISHED, ContractState
    from domain.models import (
        Amendment,
        ClosePeriod,
        InvoiceSummary,
        MilestoneCompleted,
        MilestoneStatus,
        ResolveException,
        ReviewInvoice,
        WriteOffSummary,
    )
    from domain.names import BillingModel, ExceptionAction
    from domain.periods import Period
    from domain.pricing import InvoiceLine
    from domain.revenue import (
        catch_up,
        fixed_fee_recognised_to_date,
        retainer_revenue,
        revenue_method,
    )
    from domain.steps import (
        BILL_PERIOD,
        CLOSE_TIME_ENTRY,
        RECORD_INVOICE_REVIEW,
        RECORD_WRITE_OFF,
        BillPeriodInput,
        BillPeriodResult,
        CloseTimeEntryInput,
        InvoiceReviewInput,
        RevenuePlan,
        TimeEntryClosed,
        TimePricing,
        WriteOffInput,
        WriteOffRecorded,
    )
    from workflows.collections import holds, issue_credit, issued
    from workflows.commands import Clock, Decision, Hold, OpenException, Patched, Record, RunStep
    from workflows.consolidation import consolidates, section_made

ZERO = Decimal(0)


#: Marks runs that release a retainer fee held back under the cap as a fee: billed on a
#: ``retainer`` line, deferred, and recognised ratably in the month it pays for. A run recorded
#: before it released the fee as work, recognised at once.
PATCH_RATABLE_RELEASE = "retainer-release-ratable"

#: Marks runs that close time entry in the PSA after a termination's last day (and report the
#: time it already holds for later days). A run recorded before it left time entry open.
PATCH_CLOSE_TIME_ENTRY = "termination-closes-time-entry"

#: Marks runs that tell the ERP about work written off above the cap (a step after the
#: decision that wrote it off). New in 0.11: answered by the release gate.
WRITE_OFFS_TO_ERP = "write-offs-to-erp"

#: The step name of a not-to-exceed hold, as operators see it in the exception queue.
CAP_STEP = "not_to_exceed"
#: The step of the notice about time dated after a terminated contract's last day.
WORK_AFTER_END_STEP = "work_after_end"
#: The step of a draft invoice's review, and of a rejected draft, in the exception queue.
REVIEW_STEP = "invoice_review"
REJECTED_STEP = "invoice_rejected"


# ------------------------------------------------------------------ views


def terms_for_amendment(s: ContractState) -> Terms:
    """The terms with what is already invoiced, which an amendment may not change."""
    b = s.billing
    return s.terms.model_copy(
        update={
            "invoiced_periods": list(b.closed_periods),
            "invoiced_milestones": sorted(b.milestone_invoice),
        }
    )


def amendment_refusal(s: ContractState, amendment: Amendment) -> str | None:
    """Why ``amendment`` cannot be applied now, or ``None``: the contract is finishing, the
    amendment would change what is already invoiced, or its cap is below what is."""
    if s.stage in FINISHED:
        return f"the contract is {s.stage.value}: it takes no more amendments"
    reason = check_amendment(terms_for_amendment(s), amendment)
    if reason is None and amendment.not_to_exceed is not None:
        billed = s.billing.billed_to_date
        if amendment.not_to_exceed < billed:
            reason = (
                f"not_to_exceed {amendment.not_to_exceed} is below the {billed} "
                f"{s.contract.currency} already invoiced."
            )
    return reason


def _retainer(s: ContractState) -> RetainerTerms | None:
    c = s.contract
    if c.billing_model is not BillingModel.RETAINER or c.retainer_monthly_amount is None:
        return None
    return RetainerTerms(
        monthly_amount=c.retainer_monthly_amount,
        included_hours=c.retainer_included_hours or ZERO,
        start_date=c.start_date,
        end_date=s.end_date,
    )


def milestone_views(s: ContractState) -> list[MilestoneStatus]:
    b, views = s.billing, []
    for m in s.terms.milestones:
        invoice_id = b.milestone_invoice.get(m.milestone_id)
        completed = b.completed.get(m.milestone_id)
        views.append(
            MilestoneStatus(
                milestone_id=m.milestone_id,
                name=m.name,
                amount=m.amount,
                due_date=m.due_date,
                status="invoiced" if invoice_id else "completed" if completed else "open",
                completed_on=completed,
                invoice_id=invoice_id,
            )
        )
    return views


# ------------------------------------------------------------------ bills


def on_activation(s: ContractState, now: Clock) -> Decision[None]:
    """A retainer is billed in advance: its first month's fee as soon as it is active."""
    b, c = s.billing, s.contract
    retainer = _retainer(s)
    if retainer is None:
        return
    first = Period.of(c.start_date)
    fee = retainer_fee_line(retainer, first, c.currency)
    if fee is None or str(first) in b.fees:
        return
    reference = f"{first}:advance"
    result = yield from _bill(s, now, reference=reference, period=first, charges=[fee])
    if result is not None:
        b.fees[str(first)] = (
            fee.amount,
            result.invoice.invoice_id if result.invoice else "",
        )
        yield from _after_bill(s, now, reference, first, result, fees=fee.amount)


def bill_period(
    s: ContractState, now: Clock, period: Period, request: ClosePeriod | None = None
) -> Decision[None]:
    """Close ``period``: bill its work, its charges and the next month's retainer fee.

    A ``request`` to close it (a ``close_period`` message) is refused while the period has
    not ended in the legal entity's time zone, unless it forces the close with a reason.
    """
    b, c, name = s.billing, s.contract, str(period)
    if name in b.closed_periods:
        yield Record(f"period {name} already closed: nothing to do")
        return
    if period < Period.of(c.start_date) or period > s.final_period:
        yield Record(f"period {name} is outside the contract's dates: ignored")
        return
    if period.first_day > now().date():
        yield Record(f"period {name} has not started: not closed")
        return
    if period == s.final_period and not s.ended(now()):
        # Closing the last period early would leave later work unbilled for good.
        yield Record(
            f"period {name} is the contract's last: it closes once the end date "
            f"{s.end_date} has passed"
        )
        return
    if request is not None and not s.period_over(period, now()):
        if not request.force:
            yield Record(
                f"period {name} has not ended (its last day is {period.last_day}): not "
                f"closed; close it from {period.next().first_day}, or force it with a reason"
            )
            return
        yield Record(f"period {name} closed before its end, by force: {request.reason}")
    charges: list[InvoiceLine] = []
    milestones = _milestones_due(s, period)
    charges.extend(
        milestone_line(m.milestone_id, m.name, m.amount)
        for m in s.terms.milestones
        if m.milestone_id in milestones
    )
    fees = _fees_due(s, period)
    charges.extend(line for _, line in fees)
    retainer = _retainer(s)
    time_pricing: TimePricing = "rate_card"
    if c.billing_model is BillingModel.FIXED_FEE:
        time_pricing = "none"
    elif retainer is not None:
        time_pricing = "overage"
    result = yield from _bill(
        s,
        now,
        reference=name,
        period=period,
        charges=charges,
        through_date=min(period.last_day, s.end_date),
        time_pricing=time_pricing,
        included_hours=included_hours_for(retainer, period) if retainer else ZERO,
        revenue=(plan := _revenue_plan(s, period)),
        section=(yield from consolidates(s)),
    )
    b.closed_periods.append(name)
    if result is None:
        yield Record(f"period {name} closed by operator without billing")
        return
    if plan.method == "milestone_output":
        b.recognised_fixed_fee += plan.amount
    invoice_id = result.invoice.invoice_id if result.invoice else ""
    if result.section is not None:
        yield from section_made(s, now, name, result)
        invoice_id = "" if result.section.empty else result.section.section_id
    for mid in milestones:
        b.milestone_invoice[mid] = invoice_id
    for month, line in fees:
        b.fees[month] = (line.amount, invoice_id)
    b.ratable_months = sorted({*b.ratable_months, *_ratable_due(s, period)})
    if result.invoice is None and result.section is None and not result.held_back:
        yield Record(f"period {name} closed: nothing to invoice")
    yield from _after_bill(
        s,
        now,
        name,
        period,
        result,
        hours=result.hours,
        fees=sum((f.amount for _, f in fees), ZERO),
    )


def milestone_completed(
    s: ContractState, now: Clock, message: MilestoneCompleted
) -> Decision[None]:
    b, mid = s.billing, message.milestone_id
    milestone = next((m for m in s.terms.milestones if m.milestone_id == mid), None)
    if milestone is None:
        yield Record(f"milestone {mid} is not in the contract: completion ignored")
        return
    if mid in b.completed:
        yield Record(f"milestone {mid} already completed on {b.completed[mid]}")
        return
    b.completed[mid] = message.completed_on
    yield Record(f"milestone {mid} ({milestone.name}) completed on {message.completed_on}")
    if s.contract.milestone_invoicing != "on_completion" or mid in b.milestone_invoice:
        return
    reference = f"milestone:{mid}"
    result = yield from _bill(
        s,
        now,
        reference=reference,
        period=Period.of(message.completed_on),
        charges=[milestone_line(mid, milestone.name, milestone.amount)],
        milestone_id=mid,
    )
    if result is not None:
        b.milestone_invoice[mid] = result.invoice.invoice_id if result.invoice else ""
        yield from _after_bill(
            s, now, reference, Period.of(message.completed_on), result, what=f"milestone {mid}"
        )


def _milestones_due(s: ContractState, period: Period) -> list[str]:
    b = s.billing
    # A milestone an amendment removed after it was completed is not billed.
    current = {m.milestone_id for m in s.terms.milestones}
    return [
        mid
        for mid, completed_on in sorted(b.completed.items())
        if completed_on <= period.last_day and mid not in b.milestone_invoice and mid in current
    ]


def _fees_due(s: ContractState, period: Period) -> list[tuple[str, InvoiceLine]]:
    """Retainer fees not yet billed up to the month after ``period`` (in advance)."""
    retainer = _retainer(s)
    if retainer is None:
        return []
    due = []
    month = Period.of(s.contract.start_date)
    last = min(period.next(), s.final_period)
    while month <= last:
        line = retainer_fee_line(retainer, month, s.contract.currency)
        if str(month) not in s.billing.fees and line is not None:
            due.append((str(month), line))
        month = month.next()
    return due


def _ratable_due(s: ContractState, period: Period) -> list[str]:
    """Months of a retainer whose revenue has not been recognised, up to ``period``."""
    if _retainer(s) is None:
        return []
    months, month = [], Period.of(s.contract.start_date)
    while month <= period:
        if str(month) not in s.billing.ratable_months:
            months.append(str(month))
        month = month.next()
    return months


def _revenue_plan(s: ContractState, period: Period) -> RevenuePlan:
    c, name = s.amended_contract(), str(period)
    if c.billing_model is BillingModel.FIXED_FEE:
        completed = sum(
            (
                m.amount
                for m in s.terms.milestones
                if (done := s.billing.completed.get(m.milestone_id)) and done <= period.last_day
            ),
            ZERO,
        )
        price = c.contract_value
        target = fixed_fee_recognised_to_date(price, completed, price, c.currency)
        return RevenuePlan(
            entry_id=f"{c.contract_id}:{name}",
            period=name,
            method="milestone_output",
            amount=catch_up(target, s.billing.recognised_fixed_fee),
            add_as_invoiced=True,
            description=f"{name}: milestones completed {completed} of {price}",
        )
    retainer = _retainer(s)
    if retainer is not None:
        months = _ratable_due(s, period)
        amount = sum(
            (retainer_revenue(retainer, Period.parse(m), c.currency) for m in months), ZERO
        )
        return RevenuePlan(
            entry_id=f"{c.contract_id}:{name}",
            period=name,
            method="ratable",
            amount=amount,
            add_as_invoiced=True,
            description=f"{name}: retainer {', '.join(months)} ratably, overage as invoiced",
        )
    return RevenuePlan(
        entry_id=f"{c.contract_id}:{name}",
        period=name,
        method="as_invoiced",
        add_as_invoiced=True,
        description=f"{name}: time and expenses as invoiced",
    )


def _bill(
    s: ContractState,
    now: Clock,
    *,
    reference: str,
    period: Period,
    charges: list[InvoiceLine],
    through_date: date | None = None,
    time_pricing: TimePricing = "none",
    included_hours: Decimal = ZERO,
    milestone_id: str | None = None,
    revenue: RevenuePlan | None = None,
    section: bool = False,
) -> Decision[BillPeriodResult | None]:
    """Make one invoice: at once, or, where invoices are reviewed, as a draft that waits for
    an operator's approval before it is numbered and issued; with ``section``, a section of
    the customer's consolidated invoice instead (``workflows.consolidation``)."""

    def step(**review: str | None) -> BillPeriodInput:
        # Built from the state when it runs: a draft made again after a rejection takes the
        # terms (rates, purchase order, bill-to) as amended since.
        c, validated = s.contract, s.validated
        return BillPeriodInput(
            contract_id=c.contract_id,
            reference=reference,
            period=str(period),
            milestone_id=milestone_id,
            through_date=through_date,
            time_pricing=time_pricing,
            included_hours=included_hours,
            charges=charges,
            not_to_exceed=s.terms.not_to_exceed,
            billed_to_date=s.billing.billed_to_date,
            invoice_date=now().date(),
            currency=c.currency,
            legal_entity=c.legal_entity,
            functional_currency=validated.functional_currency if validated else None,
            country=c.customer.country,
            region=c.customer.region,
            customer_tax_id=validated.customer_tax_id if validated else None,
            seller_country=validated.legal_entity_country if validated else None,
            payment_terms_days=c.payment_terms_days,
            expenses_billable=c.expenses_billable and through_date is not None,
            expense_markup_percent=c.expense_markup_percent,
            rates=s.terms.rates,
            refs=s.refs,
            revenue=revenue,
            revenue_method=revenue_method(c.billing_model),
            po_number=s.terms.po_number,
            bill_to=s.terms.bill_to,
            **review,
        )

    if section:
        sid = section_id(s.contract.contract_id, reference)
        made: BillPeriodResult | None = yield RunStep(
            BILL_PERIOD, step(section_id=sid), BillPeriodResult, summary=f"section {reference}"
        )
        return made
    if not (s.ordered and s.review_required):
        result: BillPeriodResult | None = yield RunStep(
            BILL_PERIOD, step(), BillPeriodResult, summary=f"invoice {reference}"
        )
        return result
    while True:
        draft_id = _next_draft_id(s, reference)
        drafted: BillPeriodResult | None = yield RunStep(
            BILL_PERIOD, step(draft_id=draft_id), BillPeriodResult, summary=f"draft {reference}"
        )
        if drafted is None or drafted.draft is None:
            # Skipped, nothing to invoice, or issued already (by a run a reset replaced).
            return drafted
        draft = drafted.draft
        s.billing.drafts[draft_id] = draft
        ccy = s.contract.currency
        preview = f"{draft.subtotal} + tax {draft.tax} = {draft.total} {ccy}"
        yield Record(f"draft invoice {draft_id} for {reference}: {preview}, waiting for review")
        action = yield Hold(
            REVIEW_STEP,
            "c2c",
            "invoice_review",
            f"draft invoice {draft_id} for {reference} ({preview}) waits for review: approve "
            "it to number and issue it, or reject it with the reason",
            subject=draft_id,
            draft_id=draft_id,
        )
        s.billing.drafts.pop(draft_id, None)
        review = s.billing.reviews.pop(draft_id, None)
        if action is ExceptionAction.ABORT:
            return None
        if review is None or review.decision == "approve":
            approver = review.operator if review else None
            yield Record(f"draft invoice {draft_id} approved by {approver or 'an operator'}")
            result = yield RunStep(
                BILL_PERIOD,
                step(approved_draft=draft_id, approved_by=approver),
                BillPeriodResult,
                summary=f"invoice {reference}",
            )
            return result
        reason = review.reason or ""
        yield Record(f"draft invoice {draft_id} rejected by {review.operator}: {reason}")
        yield RunStep(
            RECORD_INVOICE_REVIEW,
            InvoiceReviewInput(
                contract_id=s.contract.contract_id,
                draft_id=draft_id,
                operator=review.operator,
                reason=reason,
                at=now(),
            ),
            None,
            summary=f"draft {draft_id} rejected",
        )
        action = yield Hold(
            REJECTED_STEP,
            "c2c",
            "invoice_rejected",
            f"draft invoice {draft_id} for {reference} was rejected by {review.operator}: "
            f"{reason}. Fix what is wrong (the rates, the purchase order or the bill-to, by "
            "amendment) and retry to draft it again, skip to bill nothing for it, or abort",
            subject=draft_id,
        )
        if action is not ExceptionAction.RETRY:
            return None


def _next_draft_id(s: ContractState, reference: str) -> str:
    """The id of the next draft of the invoice ``reference``: derived again by a reset."""
    count = s.billing.draft_counts[reference] = s.billing.draft_counts.get(reference, 0) + 1
    seed = f"{s.contract.contract_id}:{reference}:{count}"
    return f"DRAFT-{hashlib.sha256(seed.encode()).hexdigest()[:12].upper()}"


def review_refusal(s: ContractState, review: ReviewInvoice) -> str | None:
    """Why an operator's review of a draft cannot be taken now, or ``None``."""
    exception_id = s.billing.draft_holds.get(review.invoice_id)
    if exception_id is None or exception_id not in s.open:
        return f"invoice {review.invoice_id} is not a draft waiting for review on this contract"
    if exception_id in s.decisions or review.invoice_id in s.billing.reviews:
        return f"draft {review.invoice_id} is already being reviewed"
    return None


def review(s: ContractState, message: ReviewInvoice) -> ResolveException:
    """Take an operator's review in its turn: the decision that ends the draft's hold.

    Assumes ``review_refusal`` found nothing wrong.
    """
    s.billing.reviews[message.invoice_id] = message
    exception_id = s.billing.draft_holds[message.invoice_id]
    note = "approved" if message.decision == "approve" else f"rejected: {message.reason}"
    decision = ResolveException(
        exception_id=exception_id,
        action=ExceptionAction.RETRY,
        operator=message.operator,
        note=f"draft {message.invoice_id} {note}",
    )
    s.decisions[exception_id] = decision
    return decision


def _after_bill(
    s: ContractState,
    now: Clock,
    reference: str,
    period: Period,
    result: BillPeriodResult,
    *,
    hours: Decimal | None = None,
    what: str | None = None,
    fees: Decimal = ZERO,
) -> Decision[None]:
    """Record a bill's invoice and revenue; hold what it held back above the cap.

    ``period`` is the period the bill belongs to, ``what`` how operators read what was
    billed (work in the period, unless it says otherwise), ``fees`` the retainer fees
    among its charges.
    """
    b, ccy = s.billing, s.contract.currency
    if result.revenue is not None:
        b.revenue = result.revenue
    if result.invoice is not None:
        inv = result.invoice
        b.billed_to_date += inv.subtotal
        worked = f"{hours} h, " if hours else ""
        yield Record(
            f"invoice {inv.number} issued for {reference}: {worked}"
            f"{inv.subtotal} + tax {inv.tax} = {inv.total} {ccy}, due {inv.due_on}"
            + _functional(inv)
        )
        yield from issued(s, now, inv)
    if result.revenue_posted:
        yield Record(f"revenue {result.revenue_posted} {ccy} recognised for {reference}")
    if result.held_back > 0:
        b.held_back += result.held_back
        b.held_fees += held_fee_part(result.held_back, fees)
        yield from _hold_above_cap(s, now, reference, period, what or f"work in {period}")


def _hold_above_cap(
    s: ContractState, now: Clock, reference: str, period: Period, what: str
) -> Decision[None]:
    """Ask the delivery queue about work above the cap: raise it and retry, or write off."""
    b, ccy = s.billing, s.contract.currency
    while b.held_back > 0:
        cap = s.terms.not_to_exceed
        decision: ResolveException = yield Hold(
            CAP_STEP,
            "c2c",
            "not_to_exceed_reached",
            f"{b.held_back} {ccy} of {what} is above the not-to-exceed "
            f"{cap} ({b.billed_to_date} already invoiced): raise the cap by amendment "
            "and retry to bill it, or skip to write it off",
            subject=reference,
            decision=True,
        )
        action = decision.action
        if action is ExceptionAction.SKIP:
            amount = b.held_back
            b.written_off += amount
            yield Record(f"{amount} {ccy} above the cap written off")
            b.held_back = b.held_fees = ZERO
            if (yield Patched(WRITE_OFFS_TO_ERP)):
                yield from _write_off_to_erp(s, now, reference, period, amount, decision)
            return
        if action is ExceptionAction.ABORT:
            return
        cap = s.terms.not_to_exceed
        headroom = b.held_back if cap is None else min(b.held_back, cap - b.billed_to_date)
        if headroom <= 0:
            continue
        b.releases += 1
        release = f"{period}:release-{b.releases}"
        plan = None
        if s.contract.billing_model is not BillingModel.FIXED_FEE:
            plan = RevenuePlan(
                entry_id=f"{s.contract.contract_id}:{release}",
                period=str(period),
                method="as_invoiced",
                add_as_invoiced=True,
                description=f"{period}: work above the cap released",
            )
        charges, fee = [release_line(headroom, str(period))], ZERO
        if plan is not None and _retainer(s) and (yield Patched(PATCH_RATABLE_RELEASE)):
            work, fee = split_release(headroom, b.held_back, b.held_fees)
            charges = release_lines(work, fee, str(period))
            plan = plan.model_copy(
                update={
                    "method": "ratable",
                    "description": f"{period}: work above the cap released, as invoiced; "
                    "retainer fees ratably, in the months they pay for",
                }
            )
        result = yield from _bill(
            s, now, reference=release, period=period, charges=charges, revenue=plan
        )
        if result is None:
            continue
        b.held_back -= headroom
        b.held_fees = min(b.held_fees - fee, b.held_back)
        yield from _after_bill(
            s, now, release, period, result.model_copy(update={"held_back": ZERO}), what=what
        )


def _write_off_to_erp(
    s: ContractState,
    now: Clock,
    reference: str,
    period: Period,
    amount: Decimal,
    decision: ResolveException,
) -> Decision[None]:
    """Tell the ERP about work written off above the cap, once: the write-off's id follows
    from the contract and how many it wrote off before, so a reset or a retry finds it."""
    b, c = s.billing, s.contract
    write_off = WriteOffSummary(
        write_off_id=f"{c.contract_id}:write-off-{len(b.write_offs) + 1}",
        reference=reference,
        period=str(period),
        amount=amount,
        operator=decision.operator,
        written_off_on=now().date(),
    )
    b.write_offs.append(write_off)
    recorded: WriteOffRecorded | None = yield RunStep(
        RECORD_WRITE_OFF,
        WriteOffInput(
            contract_id=c.contract_id,
            write_off_id=write_off.write_off_id,
            legal_entity=c.legal_entity,
            period=write_off.period,
            amount=amount,
            currency=c.currency,
            reason=decision.note or f"work above the not-to-exceed cap of {reference}",
            operator=decision.operator,
            on=write_off.written_off_on,
            refs=s.refs,
        ),
        WriteOffRecorded,
        summary=f"write-off {write_off.write_off_id}",
    )
    if recorded is None:
        yield Record(f"write-off {write_off.write_off_id} left out of the ERP by an operator")
        return
    b.write_offs[-1] = write_off.model_copy(update={"erp_ref": recorded.erp_ref})
    yield Record(f"write-off {write_off.write_off_id} recorded in the ERP as {recorded.erp_ref}")


# ------------------------------------------------------------------ endings


def _fee_credits(s: ContractState) -> list[tuple[str, str, Decimal]]:
    """Retainer fees billed in advance for days after the contract's (new) end."""
    retainer = _retainer(s)
    if retainer is None:
        return []
    credits = []
    for month, (billed, invoice_id) in sorted(s.billing.fees.items()):
        owed = prorate(
            retainer.monthly_amount,
            Period.parse(month),
            retainer.start_date,
            retainer.end_date,
            s.contract.currency,
        )
        if billed > owed and invoice_id:
            credits.append((month, invoice_id, billed - owed))
    return credits


def final_billing_due(s: ContractState, now: datetime) -> bool:
    """Whether a terminated contract's last period is due to be billed: the termination has
    taken effect, so nothing worked up to that date goes unbilled."""
    return (
        s.terminate is not None
        and s.ended(now)
        and str(s.final_period) not in s.billing.closed_periods
    )


def true_up_due(s: ContractState, now: datetime) -> bool:
    return (
        s.ended(now) and str(s.final_period) in s.billing.closed_periods and bool(_fee_credits(s))
    )


def fee_invoices_to_keep(s: ContractState, today: date) -> set[str]:
    """Invoices of retainer fees for this month on: a termination may still credit part of
    them, so they are carried whole even when settled."""
    this_month = str(Period.of(today))
    return {iid for month, (_, iid) in s.billing.fees.items() if month >= this_month and iid}


def true_up(s: ContractState, now: Clock) -> Decision[None]:
    """Credit the part of advance fees after the end date: never an edit of the invoice."""
    for month, invoice_id, amount in _fee_credits(s):
        billed, _ = s.billing.fees[month]
        s.billing.fees[month] = (billed - amount, invoice_id)
        # A fee invoice folded in an earlier run (a termination dated before that run) has
        # no count of its credit notes here: the month keys its credit note instead.
        note_id = None if holds(s, invoice_id) else f"{invoice_id}-CN-{month}"
        yield from issue_credit(
            s,
            now,
            invoice_id,
            amount,
            f"retainer {month}: days after the contract ended on {s.end_date}",
            note_id,
        )


def sweep_late_work(s: ContractState, now: Clock) -> Decision[None]:
    """Before the contract closes, bill work approved after its final period was closed.

    Time approved late (a timesheet corrected after the month end) would otherwise never
    be invoiced: the PSA project closes with the contract. Runs once, just before closing.
    """
    s.billing.swept = True
    c, final = s.contract, s.final_period
    tm = c.billing_model is BillingModel.TIME_AND_MATERIALS
    if not tm and not c.expenses_billable:
        return
    reference = f"{final}:late"
    result = yield from _bill(
        s,
        now,
        reference=reference,
        period=final,
        charges=[],
        through_date=s.end_date,
        time_pricing="rate_card" if tm else "none",
        revenue=RevenuePlan(
            entry_id=f"{c.contract_id}:{reference}",
            period=str(final),
            method="as_invoiced",
            add_as_invoiced=True,
            description=f"{final}: work approved after the period closed, as invoiced",
        ),
    )
    if result is not None and (result.invoice is not None or result.held_back):
        yield from _after_bill(s, now, reference, final, result, hours=result.hours)


def close_time_entry(s: ContractState, now: Clock) -> Decision[None]:
    """After a termination, close time entry in the PSA after the contract's last day.

    Time the PSA already holds for later days is never billed (every bill stops at the last
    day): it is reported, in the history and as an exception for the delivery queue, which
    closes it (skip) once the time is moved or agreed otherwise.
    """
    if "psa_project_id" not in s.refs or not (yield Patched(PATCH_CLOSE_TIME_ENTRY)):
        return
    last = s.end_date
    closed: TimeEntryClosed | None = yield RunStep(
        CLOSE_TIME_ENTRY,
        CloseTimeEntryInput(contract_id=s.contract.contract_id, refs=s.refs, last_day=last),
        TimeEntryClosed,
        summary=f"close time entry in the PSA after {last}",
    )
    if closed is None:
        return
    yield Record(f"time entry closed in the PSA after {last}")
    if closed.entries_after:
        entries = "entry" if closed.entries_after == 1 else "entries"
        found = (
            f"{closed.entries_after} approved time {entries} ({closed.hours_after} h) dated "
            f"after the last day {last}, from {closed.first_day_after},"
        )
        yield Record(f"{found} not billed: reported to delivery")
        yield OpenException(
            WORK_AFTER_END_STEP,
            "psa",
            "work_after_termination",
            f"{found} held in the PSA: the contract was terminated and bills nothing after "
            f"{last}. Move the time to another project or agree it with the customer, then "
            "skip to close this exception",
            subject=str(last),
        )


def _functional(inv: InvoiceSummary) -> str:
    if inv.functional_currency is None or inv.functional_total is None:
        return ""
    return f" ({inv.functional_total} {inv.functional_currency} at {inv.exchange_rate})"
