"""The review decider without a server: a reviewed contract's bill is a draft that waits on a
hold; an approval issues it, a rejection records the reason and, retried, drafts again."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from domain.models import DraftInvoice, ReviewInvoice
from domain.names import ExceptionAction
from domain.periods import Period
from domain.steps import BILL_PERIOD, RECORD_INVOICE_REVIEW, BillPeriodInput, BillPeriodResult
from tests.workflows.deciders.support import Systems, contract, lines
from workflows import billing
from workflows.commands import Command, Hold, RunStep, play


def reviewing(s: Any, systems: Systems, reviews: list[ReviewInvoice | None]) -> Any:
    """Answers as ``systems`` does, but a draft step drafts and each review hold takes the next
    review (as the workflow's hold does when a ``review_invoice`` message decides it)."""

    def answer(command: Command) -> Any:
        if isinstance(command, RunStep) and command.name == BILL_PERIOD:
            arg = command.arg
            assert isinstance(arg, BillPeriodInput)
            if arg.draft_id is not None:
                return BillPeriodResult(
                    draft=DraftInvoice(
                        invoice_id=arg.draft_id,
                        reference=arg.reference,
                        period=arg.period,
                        subtotal=Decimal("1000.00"),
                        tax=Decimal(0),
                        total=Decimal("1000.00"),
                        drafted_at=systems.now,
                        po_number=arg.po_number,
                    )
                )
        if isinstance(command, Hold) and command.draft_id:
            review = reviews.pop(0)
            if review is not None:
                s.billing.reviews[command.draft_id] = review.model_copy(
                    update={"invoice_id": command.draft_id}
                )
        return systems.answer(command)

    return answer


def review(decision: str, reason: str | None = None) -> ReviewInvoice:
    return ReviewInvoice(invoice_id="-", decision=decision, operator="olga", reason=reason)


def bills(commands: list[Command]) -> list[BillPeriodInput]:
    return [
        c.arg
        for c in commands
        if isinstance(c, RunStep) and c.name == BILL_PERIOD and isinstance(c.arg, BillPeriodInput)
    ]


def test_an_approved_draft_is_issued_and_nothing_is_drafted_without_review() -> None:
    s = contract(invoice_review="required", po_number="PO-1")
    systems = Systems(hours={"2026-10": Decimal("10")}, actions=[ExceptionAction.RETRY])
    commands, _ = play(
        billing.bill_period(s, systems, Period.parse("2026-10")),
        reviewing(s, systems, [review("approve")]),
    )
    draft, issue = bills(commands)
    assert draft.draft_id and draft.po_number == "PO-1" and draft.approved_draft is None
    assert (issue.draft_id, issue.approved_draft, issue.approved_by) == (
        None,
        draft.draft_id,
        "olga",
    )
    assert [c.code for c in commands if isinstance(c, Hold)] == ["invoice_review"]
    assert any(f"draft invoice {draft.draft_id} approved by olga" in e for e in lines(commands))
    assert s.billing.billed_to_date == Decimal("1000") and not s.billing.drafts
    # Without review the same close is billed at once.
    plain = contract()
    direct = Systems(hours={"2026-10": Decimal("10")})
    assert [
        b.draft_id
        for b in bills(direct.run(billing.bill_period(plain, direct, Period.parse("2026-10"))))
    ] == [None]


def test_a_rejected_draft_is_recorded_and_drafted_again_on_retry() -> None:
    s = contract(invoice_review="required")
    systems = Systems(
        hours={"2026-10": Decimal("10")},
        actions=[ExceptionAction.RETRY, ExceptionAction.RETRY, ExceptionAction.RETRY],
    )
    commands, _ = play(
        billing.bill_period(s, systems, Period.parse("2026-10")),
        reviewing(s, systems, [review("reject", "wrong PO"), review("approve")]),
    )
    first, second, issue = bills(commands)
    assert first.draft_id != second.draft_id and issue.approved_draft == second.draft_id
    [rejected] = [c for c in commands if isinstance(c, RunStep) and c.name == RECORD_INVOICE_REVIEW]
    assert (rejected.arg.draft_id, rejected.arg.reason) == (first.draft_id, "wrong PO")  # type: ignore[attr-defined]
    holds = [c for c in commands if isinstance(c, Hold)]
    assert [h.code for h in holds] == ["invoice_review", "invoice_rejected", "invoice_review"]
    assert "rejected by olga: wrong PO" in holds[1].message


def test_a_skipped_rejection_bills_nothing() -> None:
    s = contract(invoice_review="required")
    systems = Systems(
        hours={"2026-10": Decimal("10")},
        actions=[ExceptionAction.RETRY, ExceptionAction.SKIP],
    )
    commands, _ = play(
        billing.bill_period(s, systems, Period.parse("2026-10")),
        reviewing(s, systems, [review("reject", "not billable")]),
    )
    assert len(bills(commands)) == 1 and s.billing.billed_to_date == 0
    assert "2026-10" in s.billing.closed_periods
