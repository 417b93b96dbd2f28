"""A contract's state and a stand-in for its systems, to drive deciders without a server.

``contract`` builds the ``ContractState`` of an active contract; ``Systems`` answers the
commands a decider yields as the ERP, the CRM and an operator would (each bill invoices its
charges and its time, held back above the cap; each payment is applied to its invoice), and
keeps every command it answered, in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from domain.contract_state import ContractState
from domain.models import (
    CreditNoteSummary,
    InvoiceSummary,
    ResolveException,
    RevenueStatus,
)
from domain.names import ExceptionAction, Stage
from domain.steps import (
    APPLY_PAYMENT,
    BILL_PERIOD,
    ISSUE_CREDIT_NOTE,
    BillPeriodInput,
    BillPeriodResult,
    CreditNoteInput,
    CreditNoteIssued,
    PaymentApplied,
    Validated,
)
from tests.workflows.helpers import approval
from workflows.commands import (
    CloseException,
    Command,
    Decision,
    Hold,
    OpenException,
    Patched,
    ReadLedger,
    Record,
    RunStep,
    play,
)

ZERO = Decimal(0)
TAX = Decimal("0.10")


def contract(**changes: Any) -> ContractState:
    """The state of an active contract built from ``approval(**changes)`` (a T&M contract
    for October 2026 unless changed), provisioned in the ERP and the PSA."""
    state = ContractState.approved(approval(**changes))
    state.stage = state.resume_stage = Stage.ACTIVE
    state.provisioned = True
    state.validated = Validated(jurisdiction_code="US-CA", functional_currency="USD")
    state.refs = {"erp_contract_id": "ERP-C-1", "erp_project_id": "ERP-P-1"}
    return state


def at(day: str) -> datetime:
    """Noon UTC on ``day`` (``YYYY-MM-DD``)."""
    return datetime.fromisoformat(f"{day}T12:00:00+00:00").astimezone(UTC)


@dataclass
class Systems:
    """Answers a decider's commands; ``now`` is the clock the decider reads."""

    now: datetime = field(default_factory=lambda: at("2026-11-02"))
    #: Approved hours (at 100.00 an hour) the next bill of a period finds, by period.
    hours: dict[str, Decimal] = field(default_factory=dict)
    #: The operator's actions on holds, in turn (a hold with none left fails the test).
    actions: list[ExceptionAction] = field(default_factory=list)
    #: Decisions given to the holds, in turn: each may change the state (an amendment).
    on_hold: list[Any] = field(default_factory=list)
    #: Steps the operator skips (they answer ``None``) instead of running.
    skipped: set[str] = field(default_factory=set)
    #: Results of other steps, by step name (``None`` when not given).
    results: dict[str, Any] = field(default_factory=dict)
    #: Patches this run was recorded without (``Patched`` answers ``False``); others apply.
    unpatched: set[str] = field(default_factory=set)
    #: The operators' decisions, by exception id (the state's, to act as the workflow does).
    decisions: dict[str, ResolveException] = field(default_factory=dict)
    commands: list[Command] = field(default_factory=list)
    invoices: int = 0

    def __call__(self) -> datetime:
        return self.now

    def run(self, decision: Decision[Any]) -> list[Command]:
        """Drive ``decision`` to its end; the commands it yielded, in order."""
        commands, _ = play(decision, self.answer)
        self.commands.extend(commands)
        return commands

    def answer(self, command: Command) -> Any:
        if isinstance(command, RunStep):
            if command.name in self.skipped:
                return None
            if command.name == BILL_PERIOD:
                assert isinstance(command.arg, BillPeriodInput)
                return self.bill(command.arg)
            if command.name == APPLY_PAYMENT:
                payment = command.arg.payment  # type: ignore[attr-defined]
                return PaymentApplied(
                    invoice_id=command.arg.invoice_id,  # type: ignore[attr-defined]
                    applied=payment.amount,
                    unapplied=ZERO,
                    amount_paid=payment.amount,
                    invoice_status="paid",
                )
            if command.name == ISSUE_CREDIT_NOTE:
                assert isinstance(command.arg, CreditNoteInput)
                return self.credit_note(command.arg)
            return self.results.get(command.name)
        if isinstance(command, Hold):
            # The operator looks at the hold some days later.
            self.now += timedelta(days=2)
            for change in self.on_hold[:1]:
                change()
            del self.on_hold[:1]
            assert self.actions, f"no operator action left for the hold on {command.step}"
            action = self.actions.pop(0)
            if command.decision:
                return ResolveException(
                    exception_id=f"EXC-{command.step}-{command.subject}",
                    action=action,
                    operator="ops@example.com",
                )
            return action
        if isinstance(command, ReadLedger):
            return self.results.get(command.name)
        if isinstance(command, Patched):
            return command.patch_id not in self.unpatched
        if isinstance(command, OpenException):
            return f"EXC-{command.step}-{command.subject}"
        if isinstance(command, CloseException):
            decision = self.decisions.pop(command.exception_id, None) or command.default
            assert decision is not None, f"no decision on {command.exception_id}"
            return decision
        return None

    def bill(self, arg: BillPeriodInput) -> BillPeriodResult:
        """Invoice the charges and the period's hours, keeping what exceeds the cap off it."""
        hours = self.hours.pop(arg.period, ZERO) if arg.time_pricing != "none" else ZERO
        subtotal = sum((line.amount for line in arg.charges), ZERO) + hours * 100
        held = ZERO
        if arg.not_to_exceed is not None:
            held = max(ZERO, arg.billed_to_date + subtotal - arg.not_to_exceed)
            subtotal -= held
        if subtotal <= 0:
            return BillPeriodResult(held_back=held, hours=hours)
        self.invoices += 1
        tax = (subtotal * TAX).quantize(Decimal("0.01"))
        invoice = InvoiceSummary(
            invoice_id=f"INV-{self.invoices}",
            number=f"N-{self.invoices}",
            reference=arg.reference,
            subtotal=subtotal,
            tax=tax,
            total=subtotal + tax,
            due_on=arg.invoice_date + timedelta(days=arg.payment_terms_days),
        )
        revenue = None
        if arg.revenue is not None:
            revenue = RevenueStatus(method=arg.revenue.method)
        return BillPeriodResult(invoice=invoice, hours=hours, held_back=held, revenue=revenue)

    def credit_note(self, arg: CreditNoteInput) -> CreditNoteIssued:
        tax = (arg.amount * TAX).quantize(Decimal("0.01"))
        note = CreditNoteSummary(
            credit_note_id=arg.credit_note_id,
            number=arg.credit_note_id,
            invoice_id=arg.invoice_id,
            subtotal=arg.amount,
            tax=tax,
            total=arg.amount + tax,
            reason=arg.reason,
        )
        return CreditNoteIssued(credit_note=note, applied=ZERO, unapplied=ZERO)


def steps(commands: list[Command]) -> list[RunStep]:
    return [c for c in commands if isinstance(c, RunStep)]


def lines(commands: list[Command]) -> list[str]:
    return [c.event for c in commands if isinstance(c, Record)]
