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
This class is part of the workflow: deterministic, no I/O except through activities.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.amendments import Terms
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
    from domain.carried import BillingState
    from domain.models import (
        ClosePeriod,
        ContractApproved,
        InvoiceSummary,
        MilestoneCompleted,
        MilestoneStatus,
        RevenueStatus,
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
        BillPeriodInput,
        BillPeriodResult,
        CloseTimeEntryInput,
        RevenuePlan,
        TimeEntryClosed,
        TimePricing,
    )

if TYPE_CHECKING:
    from workflows.contract_to_cash import ContractToCash

ZERO = Decimal(0)

#: Marks runs that release a retainer fee held back under the cap as a fee: billed on a
#: ``retainer`` line, deferred, and recognised ratably in the month it pays for. A run recorded
#: before it released the fee as work, recognised at once.
PATCH_RATABLE_RELEASE = "retainer-release-ratable"

#: Marks runs that close time entry in the PSA after a termination's last day (and report the
#: time it already holds for later days). A run recorded before it left time entry open.
PATCH_CLOSE_TIME_ENTRY = "termination-closes-time-entry"


class Billing:
    """The billing state of one contract and the steps that move it."""

    #: The step name of a not-to-exceed hold, as operators see it in the exception queue.
    CAP_STEP = "not_to_exceed"
    #: The step of the notice about time dated after a terminated contract's last day.
    WORK_AFTER_END_STEP = "work_after_end"

    def __init__(self, wf: ContractToCash) -> None:
        self.wf = wf
        self.closed_periods: list[str] = []
        #: Invoice subtotals less credit notes: what the not-to-exceed cap is measured against.
        self.billed_to_date = ZERO
        self.held_back = ZERO
        #: The part of ``held_back`` that is retainer fees (the rest is work).
        self.held_fees = ZERO
        self.written_off = ZERO
        self.revenue: RevenueStatus | None = None
        #: Milestone revenue recognised so far: the base of the next cumulative catch-up.
        self.recognised_fixed_fee = ZERO
        self._completed: dict[str, date] = {}
        self._milestone_invoice: dict[str, str] = {}
        #: Retainer fees billed, by the month they pay for: (amount, invoice id).
        self._fees: dict[str, tuple[Decimal, str]] = {}
        self._ratable_months: set[str] = set()
        self._releases = 0
        #: Whether work approved after the final period closed has been looked for.
        self.swept = False

    def state(self) -> BillingState:
        """The billing position, to carry into the contract's next run."""
        return BillingState(
            closed_periods=list(self.closed_periods),
            billed_to_date=self.billed_to_date,
            held_back=self.held_back,
            held_fees=self.held_fees,
            written_off=self.written_off,
            revenue=self.revenue,
            recognised_fixed_fee=self.recognised_fixed_fee,
            completed=dict(self._completed),
            milestone_invoice=dict(self._milestone_invoice),
            fees=dict(self._fees),
            ratable_months=sorted(self._ratable_months),
            releases=self._releases,
            swept=self.swept,
        )

    def restore(self, state: BillingState) -> None:
        """Take up the billing position a previous run of the contract ended with."""
        self.closed_periods = list(state.closed_periods)
        self.billed_to_date = state.billed_to_date
        self.held_back = state.held_back
        self.held_fees = state.held_fees
        self.written_off = state.written_off
        self.revenue = state.revenue
        self.recognised_fixed_fee = state.recognised_fixed_fee
        self._completed = dict(state.completed)
        self._milestone_invoice = dict(state.milestone_invoice)
        self._fees = dict(state.fees)
        self._ratable_months = set(state.ratable_months)
        self._releases = state.releases
        self.swept = state.swept

    # ------------------------------------------------------------------ terms

    @property
    def c(self) -> ContractApproved:
        """The contract as amended so far."""
        return self.amended_contract(self.wf.terms)

    def amended_contract(self, terms: Terms) -> ContractApproved:
        """The approved contract as it reads with ``terms``: end date, cap and milestones."""
        return self.wf.c.model_copy(
            update={
                "end_date": terms.end_date,
                "not_to_exceed": terms.not_to_exceed,
                "milestones": list(terms.milestones),
            }
        )

    def terms_for_amendment(self) -> Terms:
        """The terms with what is already invoiced, which an amendment may not change."""
        return self.wf.terms.model_copy(
            update={
                "invoiced_periods": list(self.closed_periods),
                "invoiced_milestones": sorted(self._milestone_invoice),
            }
        )

    def _retainer(self) -> RetainerTerms | None:
        c = self.wf.c
        if c.billing_model is not BillingModel.RETAINER or c.retainer_monthly_amount is None:
            return None
        return RetainerTerms(
            monthly_amount=c.retainer_monthly_amount,
            included_hours=c.retainer_included_hours or ZERO,
            start_date=c.start_date,
            end_date=self.wf.end_date,
        )

    def milestone_views(self) -> list[MilestoneStatus]:
        views = []
        for m in self.wf.terms.milestones:
            invoice_id = self._milestone_invoice.get(m.milestone_id)
            completed = self._completed.get(m.milestone_id)
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

    async def on_activation(self) -> None:
        """A retainer is billed in advance: its first month's fee as soon as it is active."""
        retainer = self._retainer()
        if retainer is None:
            return
        first = Period.of(self.wf.c.start_date)
        fee = retainer_fee_line(retainer, first, self.wf.c.currency)
        if fee is None or str(first) in self._fees:
            return
        reference = f"{first}:advance"
        result = await self._bill(reference=reference, period=first, charges=[fee])
        if result is not None:
            self._fees[str(first)] = (
                fee.amount,
                result.invoice.invoice_id if result.invoice else "",
            )
            await self._after_bill(reference, first, result, fees=fee.amount)

    async def bill_period(self, period: Period, request: ClosePeriod | None = None) -> None:
        """Close ``period``: bill its work, its charges and the next month's retainer fee.

        A ``request`` to close it (a ``close_period`` message) is refused while the period has
        not ended in the legal entity's time zone, unless it forces the close with a reason.
        """
        wf, c, name = self.wf, self.wf.c, str(period)
        if name in self.closed_periods:
            wf.record(f"period {name} already closed: nothing to do")
            return
        if period < Period.of(c.start_date) or period > wf.final_period:
            wf.record(f"period {name} is outside the contract's dates: ignored")
            return
        if period.first_day > workflow.now().date():
            wf.record(f"period {name} has not started: not closed")
            return
        if period == wf.final_period and not wf.ended():
            # Closing the last period early would leave later work unbilled for good.
            wf.record(
                f"period {name} is the contract's last: it closes once the end date "
                f"{wf.end_date} has passed"
            )
            return
        if request is not None and not wf.period_over(period):
            if not request.force:
                wf.record(
                    f"period {name} has not ended (its last day is {period.last_day}): not "
                    f"closed; close it from {period.next().first_day}, or force it with a reason"
                )
                return
            wf.record(f"period {name} closed before its end, by force: {request.reason}")
        charges: list[InvoiceLine] = []
        milestones = self._milestones_due(period)
        charges.extend(
            milestone_line(m.milestone_id, m.name, m.amount)
            for m in wf.terms.milestones
            if m.milestone_id in milestones
        )
        fees = self._fees_due(period)
        charges.extend(line for _, line in fees)
        retainer = self._retainer()
        time_pricing: TimePricing = "rate_card"
        if c.billing_model is BillingModel.FIXED_FEE:
            time_pricing = "none"
        elif retainer is not None:
            time_pricing = "overage"
        result = await self._bill(
            reference=name,
            period=period,
            charges=charges,
            through_date=min(period.last_day, wf.end_date),
            time_pricing=time_pricing,
            included_hours=included_hours_for(retainer, period) if retainer else ZERO,
            revenue=(plan := self._revenue_plan(period)),
        )
        self.closed_periods.append(name)
        if result is None:
            wf.record(f"period {name} closed by operator without billing")
            return
        if plan.method == "milestone_output":
            self.recognised_fixed_fee += plan.amount
        invoice_id = result.invoice.invoice_id if result.invoice else ""
        for mid in milestones:
            self._milestone_invoice[mid] = invoice_id
        for month, line in fees:
            self._fees[month] = (line.amount, invoice_id)
        self._ratable_months.update(self._ratable_due(period))
        if result.invoice is None and not result.held_back:
            wf.record(f"period {name} closed: nothing to invoice")
        await self._after_bill(
            name, period, result, hours=result.hours, fees=sum((f.amount for _, f in fees), ZERO)
        )

    async def milestone_completed(self, message: MilestoneCompleted) -> None:
        wf, mid = self.wf, message.milestone_id
        milestone = next((m for m in wf.terms.milestones if m.milestone_id == mid), None)
        if milestone is None:
            wf.record(f"milestone {mid} is not in the contract: completion ignored")
            return
        if mid in self._completed:
            wf.record(f"milestone {mid} already completed on {self._completed[mid]}")
            return
        self._completed[mid] = message.completed_on
        wf.record(f"milestone {mid} ({milestone.name}) completed on {message.completed_on}")
        if self.wf.c.milestone_invoicing != "on_completion" or mid in self._milestone_invoice:
            return
        reference = f"milestone:{mid}"
        result = await self._bill(
            reference=reference,
            period=Period.of(message.completed_on),
            charges=[milestone_line(mid, milestone.name, milestone.amount)],
            milestone_id=mid,
        )
        if result is not None:
            self._milestone_invoice[mid] = result.invoice.invoice_id if result.invoice else ""
            await self._after_bill(
                reference, Period.of(message.completed_on), result, what=f"milestone {mid}"
            )

    def _milestones_due(self, period: Period) -> list[str]:
        # A milestone an amendment removed after it was completed is not billed.
        current = {m.milestone_id for m in self.wf.terms.milestones}
        return [
            mid
            for mid, completed_on in sorted(self._completed.items())
            if completed_on <= period.last_day
            and mid not in self._milestone_invoice
            and mid in current
        ]

    def _fees_due(self, period: Period) -> list[tuple[str, InvoiceLine]]:
        """Retainer fees not yet billed up to the month after ``period`` (in advance)."""
        retainer = self._retainer()
        if retainer is None:
            return []
        due = []
        month = Period.of(self.wf.c.start_date)
        last = min(period.next(), self.wf.final_period)
        while month <= last:
            line = retainer_fee_line(retainer, month, self.wf.c.currency)
            if str(month) not in self._fees and line is not None:
                due.append((str(month), line))
            month = month.next()
        return due

    def _ratable_due(self, period: Period) -> list[str]:
        """Months of a retainer whose revenue has not been recognised, up to ``period``."""
        if self._retainer() is None:
            return []
        months, month = [], Period.of(self.wf.c.start_date)
        while month <= period:
            if str(month) not in self._ratable_months:
                months.append(str(month))
            month = month.next()
        return months

    def _revenue_plan(self, period: Period) -> RevenuePlan:
        c, name = self.c, str(period)
        if c.billing_model is BillingModel.FIXED_FEE:
            completed = sum(
                (
                    m.amount
                    for m in self.wf.terms.milestones
                    if (done := self._completed.get(m.milestone_id)) and done <= period.last_day
                ),
                ZERO,
            )
            price = c.contract_value
            target = fixed_fee_recognised_to_date(price, completed, price, c.currency)
            return RevenuePlan(
                entry_id=f"{c.contract_id}:{name}",
                period=name,
                method="milestone_output",
                amount=catch_up(target, self.recognised_fixed_fee),
                add_as_invoiced=True,
                description=f"{name}: milestones completed {completed} of {price}",
            )
        retainer = self._retainer()
        if retainer is not None:
            months = self._ratable_due(period)
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

    async def _bill(
        self,
        *,
        reference: str,
        period: Period,
        charges: list[InvoiceLine],
        through_date: date | None = None,
        time_pricing: TimePricing = "none",
        included_hours: Decimal = ZERO,
        milestone_id: str | None = None,
        revenue: RevenuePlan | None = None,
    ) -> BillPeriodResult | None:
        wf, c = self.wf, self.wf.c
        validated = wf.validated
        return await wf.step(
            BILL_PERIOD,
            BillPeriodInput(
                contract_id=c.contract_id,
                reference=reference,
                period=str(period),
                milestone_id=milestone_id,
                through_date=through_date,
                time_pricing=time_pricing,
                included_hours=included_hours,
                charges=charges,
                not_to_exceed=wf.terms.not_to_exceed,
                billed_to_date=self.billed_to_date,
                invoice_date=workflow.now().date(),
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
                rates=wf.terms.rates,
                refs=wf.refs,
                revenue=revenue,
                revenue_method=revenue_method(c.billing_model),
            ),
            BillPeriodResult,
            summary=f"invoice {reference}",
        )

    async def _after_bill(
        self,
        reference: str,
        period: Period,
        result: BillPeriodResult,
        *,
        hours: Decimal | None = None,
        what: str | None = None,
        fees: Decimal = ZERO,
    ) -> None:
        """Record a bill's invoice and revenue; hold what it held back above the cap.

        ``period`` is the period the bill belongs to, ``what`` how operators read what was
        billed (work in the period, unless it says otherwise), ``fees`` the retainer fees
        among its charges.
        """
        wf, ccy = self.wf, self.wf.c.currency
        if result.revenue is not None:
            self.revenue = result.revenue
        if result.invoice is not None:
            inv = result.invoice
            self.billed_to_date += inv.subtotal
            worked = f"{hours} h, " if hours else ""
            wf.record(
                f"invoice {inv.number} issued for {reference}: {worked}"
                f"{inv.subtotal} + tax {inv.tax} = {inv.total} {ccy}, due {inv.due_on}"
                + _functional(inv)
            )
            await wf.collections.issued(inv)
        if result.revenue_posted:
            wf.record(f"revenue {result.revenue_posted} {ccy} recognised for {reference}")
        if result.held_back > 0:
            self.held_back += result.held_back
            self.held_fees += held_fee_part(result.held_back, fees)
            await self._hold_above_cap(reference, period, what or f"work in {period}")

    async def _hold_above_cap(self, reference: str, period: Period, what: str) -> None:
        """Ask the delivery queue about work above the cap: raise it and retry, or write off."""
        wf, ccy = self.wf, self.wf.c.currency
        while self.held_back > 0:
            cap = wf.terms.not_to_exceed
            action = await wf.hold(
                self.CAP_STEP,
                "c2c",
                "not_to_exceed_reached",
                f"{self.held_back} {ccy} of {what} is above the not-to-exceed "
                f"{cap} ({self.billed_to_date} already invoiced): raise the cap by amendment "
                "and retry to bill it, or skip to write it off",
                subject=reference,
            )
            if action is ExceptionAction.SKIP:
                self.written_off += self.held_back
                wf.record(f"{self.held_back} {ccy} above the cap written off")
                self.held_back = self.held_fees = ZERO
                return
            if action is ExceptionAction.ABORT:
                return
            cap = wf.terms.not_to_exceed
            headroom = (
                self.held_back if cap is None else min(self.held_back, cap - self.billed_to_date)
            )
            if headroom <= 0:
                continue
            self._releases += 1
            release = f"{period}:release-{self._releases}"
            plan = None
            if self.wf.c.billing_model is not BillingModel.FIXED_FEE:
                plan = RevenuePlan(
                    entry_id=f"{self.wf.c.contract_id}:{release}",
                    period=str(period),
                    method="as_invoiced",
                    add_as_invoiced=True,
                    description=f"{period}: work above the cap released",
                )
            charges, fee = [release_line(headroom, str(period))], ZERO
            if plan is not None and self._retainer() and workflow.patched(PATCH_RATABLE_RELEASE):
                work, fee = split_release(headroom, self.held_back, self.held_fees)
                charges = release_lines(work, fee, str(period))
                plan = plan.model_copy(
                    update={
                        "method": "ratable",
                        "description": f"{period}: work above the cap released, as invoiced; "
                        "retainer fees ratably, in the months they pay for",
                    }
                )
            result = await self._bill(
                reference=release, period=period, charges=charges, revenue=plan
            )
            if result is None:
                continue
            self.held_back -= headroom
            self.held_fees = min(self.held_fees - fee, self.held_back)
            await self._after_bill(
                release, period, result.model_copy(update={"held_back": ZERO}), what=what
            )

    # ------------------------------------------------------------------ endings

    def _fee_credits(self) -> list[tuple[str, str, Decimal]]:
        """Retainer fees billed in advance for days after the contract's (new) end."""
        retainer = self._retainer()
        if retainer is None:
            return []
        credits = []
        for month, (billed, invoice_id) in sorted(self._fees.items()):
            owed = prorate(
                retainer.monthly_amount,
                Period.parse(month),
                retainer.start_date,
                retainer.end_date,
                self.wf.c.currency,
            )
            if billed > owed and invoice_id:
                credits.append((month, invoice_id, billed - owed))
        return credits

    def true_up_due(self) -> bool:
        wf = self.wf
        return (
            wf.ended() and str(wf.final_period) in self.closed_periods and bool(self._fee_credits())
        )

    def fee_invoices_to_keep(self) -> set[str]:
        """Invoices of retainer fees for this month on: a termination may still credit part of
        them, so they are carried whole even when settled."""
        this_month = str(Period.of(workflow.now().date()))
        return {iid for month, (_, iid) in self._fees.items() if month >= this_month and iid}

    async def true_up(self) -> None:
        """Credit the part of advance fees after the end date: never an edit of the invoice."""
        for month, invoice_id, amount in self._fee_credits():
            billed, _ = self._fees[month]
            self._fees[month] = (billed - amount, invoice_id)
            # A fee invoice folded in an earlier run (a termination dated before that run) has
            # no count of its credit notes here: the month keys its credit note instead.
            note_id = None if self.wf.collections.holds(invoice_id) else f"{invoice_id}-CN-{month}"
            await self.wf.collections.issue_credit(
                invoice_id,
                amount,
                f"retainer {month}: days after the contract ended on {self.wf.end_date}",
                note_id,
            )

    async def sweep_late_work(self) -> None:
        """Before the contract closes, bill work approved after its final period was closed.

        Time approved late (a timesheet corrected after the month end) would otherwise never
        be invoiced: the PSA project closes with the contract. Runs once, just before closing.
        """
        self.swept = True
        c, final = self.wf.c, self.wf.final_period
        tm = c.billing_model is BillingModel.TIME_AND_MATERIALS
        if not tm and not c.expenses_billable:
            return
        reference = f"{final}:late"
        result = await self._bill(
            reference=reference,
            period=final,
            charges=[],
            through_date=self.wf.end_date,
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
            await self._after_bill(reference, final, result, hours=result.hours)

    async def close_time_entry(self) -> None:
        """After a termination, close time entry in the PSA after the contract's last day.

        Time the PSA already holds for later days is never billed (every bill stops at the last
        day): it is reported, in the history and as an exception for the delivery queue, which
        closes it (skip) once the time is moved or agreed otherwise.
        """
        wf = self.wf
        if "psa_project_id" not in wf.refs or not workflow.patched(PATCH_CLOSE_TIME_ENTRY):
            return
        last = wf.end_date
        closed = await wf.step(
            CLOSE_TIME_ENTRY,
            CloseTimeEntryInput(contract_id=wf.c.contract_id, refs=wf.refs, last_day=last),
            TimeEntryClosed,
            summary=f"close time entry in the PSA after {last}",
        )
        if closed is None:
            return
        wf.record(f"time entry closed in the PSA after {last}")
        if closed.entries_after:
            entries = "entry" if closed.entries_after == 1 else "entries"
            found = (
                f"{closed.entries_after} approved time {entries} ({closed.hours_after} h) dated "
                f"after the last day {last}, from {closed.first_day_after},"
            )
            wf.record(f"{found} not billed: reported to delivery")
            await wf.open_exception(
                self.WORK_AFTER_END_STEP,
                "psa",
                "work_after_termination",
                f"{found} held in the PSA: the contract was terminated and bills nothing after "
                f"{last}. Move the time to another project or agree it with the customer, then "
                "skip to close this exception",
                blocking=False,
                subject=str(last),
            )

    def credited(self, subtotal: Decimal) -> None:
        self.billed_to_date -= subtotal


def _functional(inv: InvoiceSummary) -> str:
    if inv.functional_currency is None or inv.functional_total is None:
        return ""
    return f" ({inv.functional_total} {inv.functional_currency} at {inv.exchange_rate})"
