"""Contract amendments: whether one can be applied to the current terms, and applying it.

An amendment never rewrites what was already invoiced: it takes effect after the latest
invoiced period, rate changes become new effective-dated revisions (the old rates still price
earlier work), and a milestone's name, amount or due date changes, or the milestone is removed,
only while it is not invoiced. A removed milestone's id is never used again on the contract.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal

from pydantic import BaseModel, Field

from domain.models import Amendment, BillTo, Milestone, MilestoneChange
from domain.money import Money, MoneyError, check_minor_units
from domain.periods import Period
from domain.pricing import RateRevision


class Terms(BaseModel):
    """The commercial terms of a contract as amended so far, and what has been invoiced."""

    currency: str
    start_date: date
    end_date: date
    not_to_exceed: Money | None = None
    rates: list[RateRevision] = Field(default_factory=list)
    milestones: list[Milestone] = Field(default_factory=list)
    invoiced_periods: list[str] = Field(default_factory=list)  # "YYYY-MM"
    invoiced_milestones: list[str] = Field(default_factory=list)
    #: Milestones removed by amendments: their ids are not used again.
    removed_milestones: list[str] = Field(default_factory=list)
    #: The customer's purchase order and bill-to contact, as approved or last amended.
    po_number: str | None = None
    bill_to: BillTo | None = None

    @property
    def latest_invoiced_period(self) -> Period | None:
        """The latest period already invoiced, if any."""
        return max((Period.parse(p) for p in self.invoiced_periods), default=None)


class AmendmentRejected(ValueError):
    """An amendment that cannot be applied to the terms; ``reason`` says why."""

    def __init__(self, amendment_id: str, reason: str) -> None:
        super().__init__(f"amendment {amendment_id} rejected: {reason}")
        self.reason = reason


def _money_problem(field: str, amount: Decimal, currency: str) -> str | None:
    try:
        check_minor_units(amount, currency)
    except MoneyError as exc:
        return f"{field} {exc}."
    if amount <= 0:
        return f"{field} must be greater than zero, got {amount}."
    return None


def _dates_problem(terms: Terms, amendment: Amendment) -> str | None:
    latest = terms.latest_invoiced_period
    end = amendment.end_date
    if end is not None:
        if end < terms.start_date:
            return f"end_date {end} is before the contract start date {terms.start_date}."
        if latest is not None and end < latest.first_day:
            return (
                f"end_date {end} is before {latest}, which is already invoiced; "
                f"the contract cannot end before {latest.first_day}."
            )
    effective = amendment.effective_date
    if latest is not None and Period.of(effective) <= latest:
        return (
            f"effective_date {effective} falls in or before {latest}, which is already "
            f"invoiced; an amendment can take effect from {latest.next().first_day}."
        )
    if effective < terms.start_date:
        return f"effective_date {effective} is before the contract start date {terms.start_date}."
    new_end = end or terms.end_date
    if effective > new_end:
        return f"effective_date {effective} is after the contract end date {new_end}."
    return None


def _milestones_problem(terms: Terms, milestones: Iterable[Milestone]) -> str | None:
    used = {m.milestone_id for m in terms.milestones}
    invoiced = set(terms.invoiced_milestones)
    removed = set(terms.removed_milestones)
    added: set[str] = set()
    for i, milestone in enumerate(milestones):
        field = f"add_milestones[{i}]"
        mid = milestone.milestone_id
        if mid in invoiced:
            return f"{field}.milestone_id {mid!r} was already invoiced."
        if mid in used:
            return (
                f"{field}.milestone_id {mid!r} is already used by the contract; to change "
                "its name, amount or due date, use change_milestones."
            )
        if mid in removed:
            return (
                f"{field}.milestone_id {mid!r} was removed by an earlier amendment; give the "
                "new milestone an id of its own."
            )
        if mid in added:
            return f"{field}.milestone_id {mid!r} appears twice in the amendment."
        added.add(mid)
        problem = _money_problem(f"{field}.amount", milestone.amount, terms.currency)
        if problem:
            return problem
    return None


def _milestone_edits_problem(terms: Terms, amendment: Amendment) -> str | None:
    """Why the amendment's milestone changes and removals cannot apply, or ``None``."""
    known = {m.milestone_id for m in terms.milestones}
    invoiced = set(terms.invoiced_milestones)
    seen: set[str] = set()
    edits: list[tuple[str, str, MilestoneChange | None]] = [
        (f"change_milestones[{i}]", change.milestone_id, change)
        for i, change in enumerate(amendment.change_milestones)
    ] + [
        (f"remove_milestones[{i}]", mid, None) for i, mid in enumerate(amendment.remove_milestones)
    ]
    for field, mid, change in edits:
        where = f"{field}.milestone_id" if change is not None else field
        if mid in invoiced:
            return (
                f"{where} {mid!r} was already invoiced: an invoiced milestone cannot be "
                "changed or removed; correct its invoice with a credit note instead."
            )
        if mid not in known:
            return f"{where} {mid!r} is not a milestone of the contract."
        if mid in seen:
            return f"{where} {mid!r} is changed or removed twice in the amendment."
        seen.add(mid)
        if change is not None and change.amount is not None:
            problem = _money_problem(f"{field}.amount", change.amount, terms.currency)
            if problem:
                return problem
    removed = set(amendment.remove_milestones)
    if removed and removed == known and not amendment.add_milestones:
        return (
            "remove_milestones would leave the contract without milestones; shorten the "
            "contract (end_date) or terminate it instead."
        )
    return None


def amended_milestones(terms: Terms, amendment: Amendment) -> list[Milestone]:
    """The contract's milestones after ``amendment``: changes applied in place, removed ones
    left out, added ones at the end. Assumes ``check_amendment`` accepted it."""
    changes = {c.milestone_id: c for c in amendment.change_milestones}
    removed = set(amendment.remove_milestones)
    milestones = []
    for milestone in terms.milestones:
        if milestone.milestone_id in removed:
            continue
        change = changes.get(milestone.milestone_id)
        if change is not None:
            milestone = milestone.model_copy(
                update=change.model_dump(exclude={"milestone_id"}, exclude_none=True)
            )
        milestones.append(milestone)
    return [*milestones, *amendment.add_milestones]


def _rates_problem(terms: Terms, amendment: Amendment) -> str | None:
    roles: set[str] = set()
    for i, entry in enumerate(amendment.rate_card):
        field = f"rate_card[{i}]"
        if entry.role in roles:
            return f"{field}.role {entry.role!r} appears twice in the amendment's rate card."
        roles.add(entry.role)
        problem = _money_problem(f"{field}.hourly_rate", entry.hourly_rate, terms.currency)
        if problem:
            return problem
    return None


def check_amendment(terms: Terms, amendment: Amendment) -> str | None:
    """Whether ``amendment`` can be applied to ``terms``.

    Whether a new not-to-exceed is below what was already billed is not checked here: the
    terms do not carry billing totals, and the caller that does knows.

    Returns:
        ``None`` when it can be applied, otherwise one sentence naming the field at fault.
    """
    if only_invoicing_details(amendment):
        # A purchase order or bill-to applies to the next invoice, whatever its date.
        return None
    problem = (
        _dates_problem(terms, amendment)
        or _milestones_problem(terms, amendment.add_milestones)
        or _milestone_edits_problem(terms, amendment)
        or _rates_problem(terms, amendment)
    )
    if problem:
        return problem
    if amendment.not_to_exceed is not None:
        return _money_problem("not_to_exceed", amendment.not_to_exceed, terms.currency)
    return None


def only_invoicing_details(amendment: Amendment) -> bool:
    """Whether ``amendment`` changes only what invoices are addressed with (the purchase
    order, the bill-to contact): nothing the ERP contract or the PSA project holds."""
    return (amendment.po_number is not None or amendment.bill_to is not None) and not (
        amendment.rate_card
        or amendment.add_milestones
        or amendment.change_milestones
        or amendment.remove_milestones
        or amendment.end_date
        or amendment.not_to_exceed is not None
    )


def apply_amendment(terms: Terms, amendment: Amendment) -> Terms:
    """The terms after ``amendment``: a new terms object, ``terms`` is left as it was.

    Each rate card entry becomes a revision effective from the amendment's effective date;
    milestones are changed, removed and appended (``amended_milestones``); the end date and the
    cap are replaced when the amendment gives them.

    Raises:
        AmendmentRejected: ``check_amendment`` refuses the amendment.
    """
    reason = check_amendment(terms, amendment)
    if reason is not None:
        raise AmendmentRejected(amendment.amendment_id, reason)
    revisions = [
        RateRevision(
            role=entry.role, hourly_rate=entry.hourly_rate, effective_from=amendment.effective_date
        )
        for entry in amendment.rate_card
    ]
    return terms.model_copy(
        update={
            "rates": [*terms.rates, *revisions],
            "milestones": amended_milestones(terms, amendment),
            "removed_milestones": [*terms.removed_milestones, *amendment.remove_milestones],
            "end_date": amendment.end_date or terms.end_date,
            "not_to_exceed": (
                terms.not_to_exceed if amendment.not_to_exceed is None else amendment.not_to_exceed
            ),
            "po_number": amendment.po_number or terms.po_number,
            "bill_to": amendment.bill_to or terms.bill_to,
        }
    )
