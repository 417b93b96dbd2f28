"""The billing decider as a pure function: state, message and clock in; commands and the new
state out. No Temporal server, no activity: ``Systems`` answers the commands.

Covers each billing model's period close, the not-to-exceed hold (skip, retry, abort) and a
retainer fee released as a fee, an amendment refused for an invoiced period, a milestone an
amendment removed, a step the operator skipped, and a termination's last bill, retainer true-up
and closing of time entry.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from domain.billing import prorate
from domain.contract_state import ContractState
from domain.models import Amendment, ClosePeriod, MilestoneCompleted, TerminateContract
from domain.names import ExceptionAction, Stage
from domain.periods import Period
from domain.steps import (
    BILL_PERIOD,
    CLOSE_TIME_ENTRY,
    RECORD_WRITE_OFF,
    BillPeriodInput,
    TimeEntryClosed,
    WriteOffInput,
    WriteOffRecorded,
)
from tests.workflows.deciders.support import Systems, at, contract, lines, steps
from workflows import billing
from workflows.billing import (
    CAP_STEP,
    PATCH_CLOSE_TIME_ENTRY,
    PATCH_RATABLE_RELEASE,
    WORK_AFTER_END_STEP,
    WRITE_OFFS_TO_ERP,
)
from workflows.commands import Command, Hold, OpenException

pytestmark = pytest.mark.unit

OCTOBER = Period.parse("2026-10")
MILESTONES = [
    {"milestone_id": "M1", "name": "Discovery", "amount": "4000.00"},
    {"milestone_id": "M2", "name": "Build", "amount": "6000.00"},
]


def bill_arg(command: object) -> BillPeriodInput:
    arg = getattr(command, "arg", None)
    assert isinstance(arg, BillPeriodInput)
    return arg


# ------------------------------------------------------------------ time and materials


def test_time_and_materials_period_close_bills_the_month_at_the_rate_card() -> None:
    s, systems = contract(), Systems(hours={"2026-10": Decimal("10")})
    commands = systems.run(billing.bill_period(s, systems, OCTOBER, ClosePeriod(period="2026-10")))

    (bill,) = steps(commands)
    arg = bill_arg(bill)
    assert (bill.name, bill.summary) == (BILL_PERIOD, "invoice 2026-10")
    assert (arg.reference, arg.time_pricing, arg.through_date) == (
        "2026-10",
        "rate_card",
        date(2026, 10, 31),
    )
    assert (arg.invoice_date, arg.billed_to_date, arg.not_to_exceed) == (
        date(2026, 11, 2),
        0,
        Decimal("50000.00"),
    )
    assert arg.revenue is not None and arg.revenue.method == "as_invoiced"
    assert s.billing.closed_periods == ["2026-10"]
    assert s.billing.billed_to_date == Decimal("1000")
    assert lines(commands)[0].startswith("invoice N-1 issued for 2026-10: 10 h, 1000 + tax")
    assert [i.invoice_id for i in s.collections.invoices] == ["INV-1"]
    assert s.collections.book.balance_due == Decimal("1100.00")


def test_a_closed_period_closes_once() -> None:
    s, systems = contract(), Systems()
    systems.run(billing.bill_period(s, systems, OCTOBER))
    commands = systems.run(billing.bill_period(s, systems, OCTOBER))
    assert steps(commands) == []
    assert lines(commands) == ["period 2026-10 already closed: nothing to do"]


def test_a_period_not_over_closes_only_by_force_with_a_reason() -> None:
    s, systems = contract(end_date="2026-12-31"), Systems(now=at("2026-10-20"))
    commands = systems.run(billing.bill_period(s, systems, OCTOBER, ClosePeriod(period="2026-10")))
    assert steps(commands) == []
    assert "has not ended (its last day is 2026-10-31)" in lines(commands)[0]
    assert s.billing.closed_periods == []

    forced = ClosePeriod(period="2026-10", force=True, reason="customer asked for it")
    commands = systems.run(billing.bill_period(s, systems, OCTOBER, forced))
    assert lines(commands)[0] == (
        "period 2026-10 closed before its end, by force: customer asked for it"
    )
    assert bill_arg(steps(commands)[0]).through_date == date(2026, 10, 31)
    assert s.billing.closed_periods == ["2026-10"]


def test_the_last_period_waits_for_the_end_date() -> None:
    s, systems = contract(), Systems(now=at("2026-10-31"))
    commands = systems.run(billing.bill_period(s, systems, OCTOBER))
    assert steps(commands) == []
    assert "closes once the end date 2026-10-31 has passed" in lines(commands)[0]


def test_periods_outside_the_contract_are_ignored() -> None:
    s, systems = contract(), Systems()
    commands = systems.run(billing.bill_period(s, systems, Period.parse("2026-09")))
    assert lines(commands) == ["period 2026-09 is outside the contract's dates: ignored"]


def test_a_bill_the_operator_skipped_closes_the_period_without_billing() -> None:
    s, systems = contract(), Systems(skipped={BILL_PERIOD})
    commands = systems.run(billing.bill_period(s, systems, OCTOBER))
    assert lines(commands) == ["period 2026-10 closed by operator without billing"]
    assert s.billing.closed_periods == ["2026-10"] and s.collections.invoices == []


# ------------------------------------------------------------------ fixed fee


def fixed_fee(**changes: object) -> dict[str, object]:
    return {
        "billing_model": "fixed_fee",
        "milestones": MILESTONES,
        "not_to_exceed": None,
        "end_date": "2026-11-15",
        **changes,
    }


def test_fixed_fee_bills_completed_milestones_at_the_period_close() -> None:
    s, systems = contract(**fixed_fee()), Systems()
    done = MilestoneCompleted(milestone_id="M1", completed_on=date(2026, 10, 20))
    commands = systems.run(billing.milestone_completed(s, systems, done))
    assert steps(commands) == []
    assert lines(commands) == ["milestone M1 (Discovery) completed on 2026-10-20"]

    commands = systems.run(billing.bill_period(s, systems, OCTOBER, ClosePeriod(period="2026-10")))
    arg = bill_arg(steps(commands)[0])
    assert [line.amount for line in arg.charges] == [Decimal("4000.00")]
    assert arg.time_pricing == "none"
    assert arg.revenue is not None
    assert (arg.revenue.method, arg.revenue.amount) == ("milestone_output", Decimal("4000.00"))
    assert s.billing.recognised_fixed_fee == Decimal("4000.00")
    assert [(m.milestone_id, m.status) for m in billing.milestone_views(s)] == [
        ("M1", "invoiced"),
        ("M2", "open"),
    ]
    again = systems.run(billing.milestone_completed(s, systems, done))
    assert lines(again) == ["milestone M1 already completed on 2026-10-20"]


def test_fixed_fee_on_completion_bills_the_milestone_at_once() -> None:
    s, systems = contract(**fixed_fee(milestone_invoicing="on_completion")), Systems()
    done = MilestoneCompleted(milestone_id="M2", completed_on=date(2026, 10, 20))
    commands = systems.run(billing.milestone_completed(s, systems, done))
    arg = bill_arg(steps(commands)[0])
    assert (arg.reference, arg.milestone_id, arg.period) == ("milestone:M2", "M2", "2026-10")
    assert s.billing.milestone_invoice == {"M2": "INV-1"}
    unknown = MilestoneCompleted(milestone_id="M9", completed_on=date(2026, 10, 20))
    assert lines(systems.run(billing.milestone_completed(s, systems, unknown))) == [
        "milestone M9 is not in the contract: completion ignored"
    ]


def test_a_completed_milestone_an_amendment_removed_is_not_billed() -> None:
    s, systems = contract(**fixed_fee()), Systems()
    done = MilestoneCompleted(milestone_id="M1", completed_on=date(2026, 10, 20))
    systems.run(billing.milestone_completed(s, systems, done))
    s.terms = s.terms.model_copy(update={"milestones": s.terms.milestones[1:]})  # M1 removed
    commands = systems.run(billing.bill_period(s, systems, OCTOBER))
    assert bill_arg(steps(commands)[0]).charges == []
    assert s.billing.milestone_invoice == {}


# ------------------------------------------------------------------ retainer


def retainer(**changes: object) -> dict[str, object]:
    return {
        "billing_model": "retainer",
        "start_date": "2026-09-13",
        "end_date": "2026-11-30",
        "retainer_monthly_amount": "10000.00",
        "retainer_included_hours": "20",
        "not_to_exceed": None,
        **changes,
    }


def test_retainer_bills_its_first_month_at_activation_and_the_next_in_advance() -> None:
    s, systems = contract(**retainer()), Systems(now=at("2026-09-14"))
    commands = systems.run(billing.on_activation(s, systems))
    arg = bill_arg(steps(commands)[0])
    assert arg.reference == "2026-09:advance"
    assert [line.amount for line in arg.charges] == [Decimal("6000.00")]  # 18 of 30 days
    assert s.billing.fees == {"2026-09": (Decimal("6000.00"), "INV-1")}
    assert systems.run(billing.on_activation(s, systems)) == []  # billed once

    systems.now = at("2026-10-02")
    commands = systems.run(billing.bill_period(s, systems, Period.parse("2026-09")))
    arg = bill_arg(steps(commands)[0])
    assert [line.amount for line in arg.charges] == [Decimal("10000.00")]  # October, in advance
    assert arg.time_pricing == "overage"
    assert arg.revenue is not None and arg.revenue.method == "ratable"
    assert arg.revenue.amount == Decimal("6000.00")
    assert s.billing.ratable_months == ["2026-09"]
    assert s.billing.fees["2026-10"] == (Decimal("10000.00"), "INV-2")


def test_a_terminated_retainer_bills_its_last_period_and_credits_unused_days() -> None:
    s, systems = contract(**retainer()), Systems(now=at("2026-09-14"))
    systems.run(billing.on_activation(s, systems))
    systems.now = at("2026-10-02")
    systems.run(billing.bill_period(s, systems, Period.parse("2026-09")))

    s.terminate = TerminateContract(effective_date=date(2026, 10, 15), reason="budget cut")
    systems.now = at("2026-10-20")
    assert (s.end_date, str(s.final_period)) == (date(2026, 10, 15), "2026-10")
    assert billing.final_billing_due(s, systems.now)
    systems.run(billing.bill_period(s, systems, s.final_period))
    assert not billing.final_billing_due(s, systems.now)
    assert s.billing.closed_periods == ["2026-09", "2026-10"]

    assert billing.true_up_due(s, systems.now)
    commands = systems.run(billing.true_up(s, systems))
    (credit,) = steps(commands)
    owed = prorate(Decimal("10000.00"), OCTOBER, date(2026, 9, 13), date(2026, 10, 15), "USD")
    assert credit.arg.invoice_id == "INV-2"  # type: ignore[attr-defined]
    assert credit.arg.amount == Decimal("10000.00") - owed  # type: ignore[attr-defined]
    assert credit.arg.revenue is None  # type: ignore[attr-defined]  # never recognised
    assert not billing.true_up_due(s, systems.now)


def test_a_termination_closes_time_entry_and_reports_later_time() -> None:
    s, systems = contract(end_date="2026-12-31"), Systems(now=at("2026-11-10"))
    s.refs["psa_project_id"] = "PSA-1"
    s.terminate = TerminateContract(effective_date=date(2026, 11, 5), reason="budget cut")
    later = TimeEntryClosed(
        entries_after=2, hours_after=Decimal("7"), first_day_after=date(2026, 11, 6)
    )
    systems.results[CLOSE_TIME_ENTRY] = later
    commands = systems.run(billing.close_time_entry(s, systems))
    (close,) = steps(commands)
    assert close.arg.last_day == date(2026, 11, 5)  # type: ignore[attr-defined]
    assert lines(commands)[0] == "time entry closed in the PSA after 2026-11-05"
    (notice,) = [c for c in commands if isinstance(c, OpenException)]
    assert (notice.step, notice.code) == (WORK_AFTER_END_STEP, "work_after_termination")

    # A run recorded before the patch leaves time entry open.
    old = Systems(unpatched={PATCH_CLOSE_TIME_ENTRY})
    assert steps(old.run(billing.close_time_entry(s, old))) == []


# ------------------------------------------------------------------ the not-to-exceed cap


def test_work_above_the_cap_holds_and_a_skip_writes_it_off() -> None:
    s = contract(not_to_exceed="1500.00")
    recorded = WriteOffRecorded(write_off_id="W", erp_ref="WO-1")
    systems = Systems(
        hours={"2026-10": Decimal("20")},
        actions=[ExceptionAction.SKIP],
        results={RECORD_WRITE_OFF: recorded},
    )
    commands = systems.run(billing.bill_period(s, systems, OCTOBER))
    (hold,) = [c for c in commands if isinstance(c, Hold)]
    assert (hold.step, hold.code, hold.subject) == (CAP_STEP, "not_to_exceed_reached", "2026-10")
    assert hold.message.startswith(
        "500.00 USD of work in 2026-10 is above the not-to-exceed 1500.00 (1500.00 already"
    )
    assert s.billing.billed_to_date == Decimal("1500")
    assert (s.billing.held_back, s.billing.written_off) == (0, Decimal("500"))
    assert "500.00 USD above the cap written off" in lines(commands)
    # The ERP is told once, under an id that a reset derives again.
    write_off = steps(commands)[-1].arg
    assert isinstance(write_off, WriteOffInput)
    contract_id = s.contract.contract_id
    assert (write_off.write_off_id, write_off.amount, write_off.period, write_off.operator) == (
        f"{contract_id}:write-off-1",
        Decimal("500"),
        "2026-10",
        "ops@example.com",
    )
    assert [(w.amount, w.erp_ref) for w in s.billing.write_offs] == [(Decimal("500"), "WO-1")]
    assert lines(commands)[-1] == f"write-off {contract_id}:write-off-1 recorded in the ERP as WO-1"


def test_a_run_recorded_before_write_offs_reached_the_erp_tells_it_nothing() -> None:
    s = contract(not_to_exceed="1500.00")
    systems = Systems(
        hours={"2026-10": Decimal("20")},
        actions=[ExceptionAction.SKIP],
        unpatched={WRITE_OFFS_TO_ERP},
    )
    commands = systems.run(billing.bill_period(s, systems, OCTOBER))
    assert [c.name for c in steps(commands)] == [BILL_PERIOD]
    assert s.billing.written_off == Decimal("500") and s.billing.write_offs == []
    assert lines(commands)[-1] == "500.00 USD above the cap written off"


def test_a_retry_after_the_cap_is_raised_bills_the_release() -> None:
    s = contract(not_to_exceed="1500.00")

    def raise_cap() -> None:  # an amendment decided while the contract is on hold
        s.terms = s.terms.model_copy(update={"not_to_exceed": Decimal("3000.00")})

    systems = Systems(
        hours={"2026-10": Decimal("20")}, actions=[ExceptionAction.RETRY], on_hold=[raise_cap]
    )
    commands = systems.run(billing.bill_period(s, systems, OCTOBER))
    release = bill_arg(steps(commands)[1])
    assert release.reference == "2026-10:release-1"
    assert [line.amount for line in release.charges] == [Decimal("500")]
    assert release.invoice_date == date(2026, 11, 4)  # read when the operator retried
    assert (s.billing.billed_to_date, s.billing.held_back) == (Decimal("2000"), 0)
    assert s.billing.releases == 1


def test_a_retry_without_headroom_asks_again_and_an_abort_leaves_it_held() -> None:
    s = contract(not_to_exceed="1500.00")
    systems = Systems(
        hours={"2026-10": Decimal("20")},
        actions=[ExceptionAction.RETRY, ExceptionAction.ABORT],
    )
    commands = systems.run(billing.bill_period(s, systems, OCTOBER))
    assert len([c for c in commands if isinstance(c, Hold)]) == 2
    assert len(steps(commands)) == 1
    assert (s.billing.held_back, s.billing.written_off) == (Decimal("500"), 0)


def released_retainer(**systems: object) -> tuple[ContractState, Systems, list[Command]]:
    """A retainer whose October fee the cap held back, released after the cap was raised."""
    s = contract(**retainer(not_to_exceed="8000.00"))

    def raise_cap() -> None:
        s.terms = s.terms.model_copy(update={"not_to_exceed": Decimal("20000.00")})

    run = Systems(now=at("2026-09-14"), actions=[ExceptionAction.RETRY], on_hold=[raise_cap])
    for name, value in systems.items():
        setattr(run, name, value)
    run.run(billing.on_activation(s, run))
    run.now = at("2026-10-02")
    return s, run, run.run(billing.bill_period(s, run, Period.parse("2026-09")))


def test_a_retainer_fee_held_by_the_cap_is_released_as_a_fee() -> None:
    s, _, commands = released_retainer()
    release = bill_arg(steps(commands)[1])
    assert [line.kind for line in release.charges] == ["retainer"]
    assert release.revenue is not None and release.revenue.method == "ratable"
    assert (s.billing.held_back, s.billing.held_fees) == (0, 0)


def test_a_run_recorded_before_releases_the_fee_as_work() -> None:
    _, _, commands = released_retainer(unpatched={PATCH_RATABLE_RELEASE})
    release = bill_arg(steps(commands)[1])
    assert [line.kind for line in release.charges] == ["release"]
    assert release.revenue is not None and release.revenue.method == "as_invoiced"


# ------------------------------------------------------------------ amendments


def test_an_amendment_is_refused_for_an_invoiced_period() -> None:
    s, systems = contract(end_date="2026-12-31"), Systems(hours={"2026-10": Decimal("10")})
    systems.run(billing.bill_period(s, systems, OCTOBER, ClosePeriod(period="2026-10")))
    back = Amendment(amendment_id="A1", effective_date=date(2026, 10, 15), reason="new rates")
    reason = billing.amendment_refusal(s, back)
    assert reason is not None and "2026-10, which is already invoiced" in reason
    ahead = back.model_copy(update={"effective_date": date(2026, 11, 1)})
    assert billing.amendment_refusal(s, ahead) is None
    below = ahead.model_copy(update={"not_to_exceed": Decimal("100.00")})
    assert billing.amendment_refusal(s, below) == (
        "not_to_exceed 100.00 is below the 1000 USD already invoiced."
    )
    s.stage = Stage.CLOSING
    assert billing.amendment_refusal(s, ahead) == (
        "the contract is closing: it takes no more amendments"
    )
