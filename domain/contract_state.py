"""The decided state of one contract, as one serializable model.

Everything ``ContractToCash`` has decided about a contract lives in a ``ContractState``: the
approved contract and its amended terms, the stage, the ids the systems gave its records, the
open exceptions and the operator's decisions on them, the amendments answered, the history,
and the billing (``BillingState``) and receivables (``CollectionsState``) positions. The
deciders (``workflows.billing``, ``workflows.collections``) read and change it and nothing
else; the questions asked of it here (the contract's last day, whether a period is over) take
the time as an argument, so they answer the same in a test as in every replay of the workflow.
The message bookkeeping of a run (the inbox, update answers, audit entries not yet written)
stays with the workflow; ``domain.carried.CarriedState`` is what a run hands to the next.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from domain.amendments import Terms
from domain.carried import BillingState, CollectionsState
from domain.collections import DEFAULT_DUNNING_OFFSETS
from domain.models import (
    AmendmentResult,
    ContractApproved,
    HistoryEntry,
    OpenException,
    ResolveException,
    TerminateContract,
)
from domain.names import Stage
from domain.periods import Period
from domain.pricing import initial_rates
from domain.steps import Validated

#: Stages after which the contract takes no more amendments.
FINISHED = frozenset({Stage.CLOSING, Stage.CLOSED, Stage.CANCELLED})


def instant(day: date) -> datetime:
    """The first moment of ``day`` (UTC): when a calendar event of that day is due."""
    return datetime.combine(day, time(), tzinfo=UTC)


def local_time(instant: datetime, zone: str) -> datetime:
    """The wall-clock time (naive) of a UTC ``instant`` in the IANA time zone ``zone``.

    The workflow sandbox hands out time zones behind a proxy that ``astimezone`` refuses, so the
    zone is asked for its offset instead: first at the UTC wall time, then at the local wall
    time that gives, which is right on either side of a daylight-saving change.
    """
    tz = ZoneInfo(zone)
    wall = instant.astimezone(UTC).replace(tzinfo=None)
    offset = tz.utcoffset(wall + (tz.utcoffset(wall) or timedelta(0))) or timedelta(0)
    return wall + offset


def local_date(instant: datetime, zone: str) -> date:
    """The calendar date of a UTC ``instant`` in the IANA time zone ``zone``."""
    return local_time(instant, zone).date()


class ContractState(BaseModel):
    """What one contract has decided so far: the state its deciders read and change."""

    #: The contract as approved in the CLM (``terms`` holds what amendments changed).
    contract: ContractApproved
    terms: Terms
    stage: Stage = Stage.RECEIVED
    #: The stage a hold returns to once the operator's decision lets it go on.
    resume_stage: Stage = Stage.RECEIVED
    refs: dict[str, str] = Field(default_factory=dict)
    validated: Validated | None = None
    #: Whether the ERP and PSA records exist (amendments wait for them).
    provisioned: bool = False
    #: Whether this run decides from one ordered inbox (the ``ordered-inbox`` patch).
    ordered: bool = True
    #: Which run of the contract this is (continue-as-new starts the next).
    run: int = 1
    terminate: TerminateContract | None = None
    open: dict[str, OpenException] = Field(default_factory=dict)
    #: Open exceptions that hold the contract.
    blocking: set[str] = Field(default_factory=set)
    #: Operators' decisions taken and not yet acted on, by exception id.
    decisions: dict[str, ResolveException] = Field(default_factory=dict)
    #: Amendment answers by id: a repeated amendment id gets its first answer.
    amendments: dict[str, AmendmentResult] = Field(default_factory=dict)
    abort_reason: str | None = None
    history: list[HistoryEntry] = Field(default_factory=list)
    #: Earlier history lines left behind at hand-overs (all in the ledger's audit trail).
    history_omitted: int = 0
    #: Exceptions opened so far, by step and subject: the next one's id follows from it.
    exception_counts: dict[str, int] = Field(default_factory=dict)
    billing: BillingState = Field(default_factory=BillingState)
    collections: CollectionsState = Field(default_factory=CollectionsState)

    @classmethod
    def approved(cls, contract: ContractApproved, *, ordered: bool = True) -> ContractState:
        """The state of a contract just approved: its terms as the CLM sent them."""
        return cls(
            contract=contract,
            terms=Terms(
                currency=contract.currency,
                start_date=contract.start_date,
                end_date=contract.end_date,
                not_to_exceed=contract.not_to_exceed,
                rates=initial_rates(contract.rate_card, contract.start_date),
                milestones=list(contract.milestones),
                po_number=contract.po_number,
                bill_to=contract.bill_to,
            ),
            ordered=ordered,
        )

    # ------------------------------------------------------------------ questions

    @property
    def end_date(self) -> date:
        """The contract's last day: its (amended) end date, or the day a termination takes
        effect."""
        end = self.terms.end_date
        if self.terminate is not None:
            return max(self.contract.start_date, min(self.terminate.effective_date, end))
        return end

    @property
    def final_period(self) -> Period:
        return Period.of(self.end_date)

    @property
    def end_instant(self) -> datetime:
        return instant(self.end_date + timedelta(days=1))

    def ended(self, now: datetime) -> bool:
        return now >= self.end_instant

    def period_over(self, period: Period, now: datetime) -> bool:
        """Whether ``period``'s last day has passed in the legal entity's time zone."""
        zone = self.validated.time_zone if self.validated is not None else "UTC"
        return local_date(now, zone) > period.last_day

    @property
    def dunning_offsets(self) -> list[int]:
        if self.validated is None:
            return list(DEFAULT_DUNNING_OFFSETS)
        return self.validated.dunning_offsets_days

    def amended_contract(self, terms: Terms | None = None) -> ContractApproved:
        """The approved contract as it reads with ``terms`` (the current ones by default):
        end date, cap and milestones."""
        terms = self.terms if terms is None else terms
        return self.contract.model_copy(
            update={
                "end_date": terms.end_date,
                "not_to_exceed": terms.not_to_exceed,
                "milestones": list(terms.milestones),
                "po_number": terms.po_number,
                "bill_to": terms.bill_to,
            }
        )

    @property
    def consolidation(self) -> str:
        """How the contract's period closes are invoiced (``ConsolidatedInvoicing``): the
        contract's own setting, else its legal entity's (known once validated)."""
        mode = self.contract.consolidated_invoicing
        if mode is None and self.validated is not None:
            mode = self.validated.consolidated_invoicing
        return mode or "none"

    @property
    def review_required(self) -> bool:
        """Whether invoices wait as drafts for an operator's review: the contract's own
        setting, else its legal entity's (known once validated)."""
        review = self.contract.invoice_review
        if review is None and self.validated is not None:
            review = self.validated.invoice_review
        return review == "required"
