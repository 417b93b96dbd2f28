"""What one run of ``ContractToCash`` hands to the next when it continues as new.

A five-year contract with monthly billing, payments and amendments would outgrow Temporal's
history limits in one run. At a quiet moment the workflow continues as new with its approved
contract and this state: everything it decided so far (billing position, invoices, cash book,
amendments, open exceptions, milestones, revenue) and every message it received but has not
handled yet. Sets are carried as sorted lists and money as decimal strings, so the payload is
the same JSON on every worker.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from datetime import date
from decimal import Decimal
from typing import Any, Self, TypeVar

from pydantic import BaseModel, Field, field_serializer, field_validator, model_validator

from domain.amendments import Terms
from domain.collections import CashBook
from domain.models import (
    Amendment,
    AmendmentResult,
    ClosePeriod,
    ContractApproved,
    CreditInvoice,
    CreditNoteSummary,
    DraftInvoice,
    HistoryEntry,
    InvoiceSummary,
    MalformedMessage,
    MilestoneCompleted,
    OpenException,
    PaymentReceived,
    ResolveException,
    RevenueStatus,
    ReviewInvoice,
    SectionInvoiced,
    SettledInvoices,
    TerminateContract,
    WriteOffSummary,
)
from domain.money import ZERO, Money
from domain.names import Stage
from domain.periods import Period
from domain.steps import AuditEntry, Validated

V = TypeVar("V")

#: History lines a run hands to the next: the latest ones. The ledger's audit trail has them all.
CARRIED_HISTORY_LINES = 20
#: The latest payment ids carried into the next run, beside those of cash still in the book.
CARRIED_PAYMENT_IDS = 50

#: A message that waits in the contract's inbox until the main loop handles it.
Message = (
    ClosePeriod
    | PaymentReceived
    | MilestoneCompleted
    | CreditInvoice
    | Amendment
    | TerminateContract
    | ResolveException
    | MalformedMessage
    | ReviewInvoice
    | SectionInvoiced
)


class PendingMessage(BaseModel):
    """One waiting message, tagged by kind: the kinds share field names (``amount``,
    ``invoice_id``, ``effective_date``), so an untagged union could be read back as the wrong
    one. Only signals wait across a hand-over: a run continues as new only once every update
    has its answer."""

    close_period: ClosePeriod | None = None
    payment_received: PaymentReceived | None = None
    milestone_completed: MilestoneCompleted | None = None
    credit_invoice: CreditInvoice | None = None
    amend: Amendment | None = None
    terminate_contract: TerminateContract | None = None
    malformed: MalformedMessage | None = None
    section_invoiced: SectionInvoiced | None = Field(
        default=None, exclude_if=lambda value: value is None
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if sum(m is not None for m in self._all()) != 1:
            raise ValueError("a pending message carries exactly one message")
        return self

    def _all(self) -> tuple[Message | None, ...]:
        return (
            self.close_period,
            self.payment_received,
            self.milestone_completed,
            self.credit_invoice,
            self.amend,
            self.terminate_contract,
            self.malformed,
            self.section_invoiced,
        )

    @classmethod
    def of(cls, message: Message) -> PendingMessage:
        if isinstance(message, ResolveException | ReviewInvoice):
            raise ValueError("an operator's decision is an update: it is never carried")
        field = _PENDING_FIELD[type(message)]
        return cls.model_validate({field: message})

    @property
    def message(self) -> Message:
        return next(m for m in self._all() if m is not None)


_PENDING_FIELD: dict[type, str] = {
    ClosePeriod: "close_period",
    PaymentReceived: "payment_received",
    MilestoneCompleted: "milestone_completed",
    CreditInvoice: "credit_invoice",
    Amendment: "amend",
    TerminateContract: "terminate_contract",
    MalformedMessage: "malformed",
    SectionInvoiced: "section_invoiced",
}


class BillingState(BaseModel):
    """A contract's billing position (``ContractState.billing``): what is billed and recognised
    so far; ``workflows.billing`` decides it."""

    #: Carried as runs of consecutive months (``2016-11..2026-10``): one entry for a contract
    #: closed month after month, however long it runs.
    closed_periods: list[str] = Field(default_factory=list)
    billed_to_date: Money = Decimal(0)
    held_back: Money = Decimal(0)
    #: The part of ``held_back`` that is retainer fees.
    held_fees: Money = Decimal(0)
    written_off: Money = Decimal(0)
    #: The write-offs above the cap, in the order decided: their count numbers the next.
    write_offs: list[WriteOffSummary] = Field(default_factory=list)
    revenue: RevenueStatus | None = None
    recognised_fixed_fee: Money = Decimal(0)
    completed: dict[str, date] = Field(default_factory=dict)
    milestone_invoice: dict[str, str] = Field(default_factory=dict)
    #: Retainer fees billed, by month: (amount, invoice id).
    fees: dict[str, tuple[Money, str]] = Field(default_factory=dict)
    ratable_months: list[str] = Field(default_factory=list)
    releases: int = 0
    swept: bool = False
    #: Drafts waiting for review, by draft id, and the exception each waits under.
    drafts: dict[str, DraftInvoice] = Field(default_factory=dict)
    draft_holds: dict[str, str] = Field(default_factory=dict)
    #: Reviews decided and not yet acted on, by draft id.
    reviews: dict[str, ReviewInvoice] = Field(default_factory=dict)
    #: Drafts made so far, by invoice reference: the next draft's id follows from it.
    draft_counts: dict[str, int] = Field(default_factory=dict)
    #: Consolidated invoicing: sections sent to the customer's billing workflow that wait for
    #: their consolidated invoice, by section id; whether the contract joined it.
    sections: dict[str, DraftInvoice] = Field(
        default_factory=dict, exclude_if=lambda value: not value
    )
    joined_billing: bool = Field(default=False, exclude_if=lambda value: not value)

    @field_validator("closed_periods", mode="before")
    @classmethod
    def _expand(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        months: list[str] = []
        for entry in value:
            first, _, last = str(entry).partition("..")
            period = Period.parse(first)
            months.append(str(period))
            if last:
                end = Period.parse(last)
                while period < end:
                    period = period.next()
                    months.append(str(period))
        return months

    @field_serializer("closed_periods", when_used="json")
    def _ranges(self, periods: list[str]) -> list[str]:
        runs: list[list[Period]] = []
        for period in map(Period.parse, periods):
            if runs and runs[-1][-1].next() == period:
                runs[-1].append(period)
            else:
                runs.append([period])
        return [f"{r[0]}..{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs]


class CollectionsState(BaseModel):
    """A contract's receivables, cash and dunning (``ContractState.collections``), which
    ``workflows.collections`` decides.

    Carried folded (``folded``): settled invoices leave ``invoices``, the book and the lists
    keyed by invoice, and only their sums stay, in ``settled`` and the book's.
    """

    book: CashBook = Field(default_factory=CashBook)
    invoices: list[InvoiceSummary] = Field(default_factory=list)
    #: The payment ids seen, in order: all of this run's, and of earlier runs those of cash
    #: still in the book, the latest ``CARRIED_PAYMENT_IDS`` and those the ledger does not
    #: hold. A payment signalled again is still applied once: an id not here, when earlier
    #: runs forgot some, is looked up in the ledger's payment facts.
    payments_seen: list[str] = Field(default_factory=list)
    #: Payment ids seen that the ledger's payment facts do not hold (another currency, a
    #: payment step an operator skipped): never forgotten.
    payments_off_ledger: list[str] = Field(default_factory=list)
    #: How many payment ids earlier runs forgot (they are in the ledger).
    payments_forgotten: int = 0
    credit_notes: list[CreditNoteSummary] = Field(default_factory=list)
    credited_subtotal: dict[str, Money] = Field(default_factory=dict)
    credit_receipts: dict[str, str] = Field(default_factory=dict)
    overdue: list[str] = Field(default_factory=list)
    dunned: dict[str, int] = Field(default_factory=dict)
    dunning_stopped: list[str] = Field(default_factory=list)
    escalations: dict[str, str] = Field(default_factory=dict)
    #: Invoices and credit notes whose documents are archived, among those still held.
    documented: list[str] = Field(default_factory=list)
    #: The sums of the invoices folded away in earlier hand-overs.
    settled: SettledInvoices = Field(default_factory=SettledInvoices)

    @field_serializer("invoices", when_used="json")
    def _compact(self, invoices: list[InvoiceSummary]) -> list[dict[str, Any]]:
        # What was paid and credited, the status and the dunning level are read from the book
        # and the dunning state whenever the status is shown: the invoice as issued is enough.
        return [
            i.model_dump(mode="json", exclude_defaults=True, exclude=set(_DERIVED))
            for i in invoices
        ]

    def folded(self, keep: Collection[str] = ()) -> CollectionsState:
        """This state with its settled invoices folded into sums.

        An invoice folds when nothing is owed on it, no dunning escalation is open on it and
        it is not in ``keep`` (invoices a waiting message names, or a retainer fee that a
        termination may still credit). Its payments and credit notes fold with it; receipts
        fully applied fold into the book's sums. No figure of the status changes: balance
        due, unapplied cash and the invoices' totals, paid and credited, are the same sums.
        """
        kept = set(keep) | set(self.escalations.values())
        settled = {
            r.invoice_id for r in self.book.invoices if r.balance <= 0 and r.invoice_id not in kept
        }
        book = self.book.model_copy(deep=True)
        folded = {r.invoice_id: r for r in book.fold(settled)}
        held = {r.invoice_id for r in book.invoices}
        notes = Counter(n.invoice_id for n in self.credit_notes)
        totals = self.settled
        for inv in self.invoices:
            if (r := folded.get(inv.invoice_id)) is not None:
                view = inv.model_copy(
                    update={"amount_paid": r.paid, "amount_credited": r.credit_notes}
                )
                totals = totals.add(view, notes[inv.invoice_id])
        # A credit note on an invoice folded before (a late retainer true-up) folds too.
        late = [n for n in self.credit_notes if n.invoice_id not in held | folded.keys()]
        totals = totals.model_copy(
            update={
                "amount_credited": totals.amount_credited + sum((n.total for n in late), ZERO),
                "credit_notes": totals.credit_notes + len(late),
            }
        )
        receipts = {r.payment_id for r in book.receipts}
        keep_ids = receipts | set(self.payments_off_ledger)
        recent = set(self.payments_seen[-CARRIED_PAYMENT_IDS:])
        seen = [p for p in self.payments_seen if p in keep_ids or p in recent]
        return self.model_copy(
            update={
                "payments_seen": seen,
                "payments_forgotten": self.payments_forgotten + len(self.payments_seen) - len(seen),
                "book": book,
                "invoices": [i for i in self.invoices if i.invoice_id in held],
                "credit_notes": [n for n in self.credit_notes if n.invoice_id in held],
                "credited_subtotal": _only(self.credited_subtotal, held),
                "credit_receipts": _only(self.credit_receipts, receipts),
                "overdue": [i for i in self.overdue if i in held],
                "dunned": _only(self.dunned, held),
                "dunning_stopped": [i for i in self.dunning_stopped if i in held],
                "settled": totals,
            }
        )


#: Fields of a carried invoice that the status derives from the book and the dunning state.
_DERIVED = frozenset({"amount_paid", "amount_credited", "status", "dunning_level"})


def _only(mapping: dict[str, V], keys: Collection[str]) -> dict[str, V]:
    return {k: v for k, v in mapping.items() if k in keys}


class CarriedState(BaseModel):
    """What a run of ``ContractToCash`` ends with when it continues as new, and the next
    run of the same workflow id starts from."""

    #: Which run of the contract this is: 2 for the first continuation.
    run: int = Field(ge=2)
    stage: Stage
    resume_stage: Stage
    refs: dict[str, str]
    terms: Terms
    validated: Validated | None
    inbox: list[PendingMessage] = Field(default_factory=list)
    terminate: TerminateContract | None = None
    open_exceptions: list[OpenException] = Field(default_factory=list)
    decisions: list[ResolveException] = Field(default_factory=list)
    #: Amendment answers by id: a repeated amendment id gets its first answer in every run.
    amendments: list[AmendmentResult] = Field(default_factory=list)
    abort_reason: str | None = None
    #: The latest history lines (at most ``CARRIED_HISTORY_LINES``).
    history: list[HistoryEntry] = Field(default_factory=list)
    #: How many earlier lines were left behind (they are in the ledger's audit trail).
    history_omitted: int = 0
    pending_audit: list[AuditEntry] = Field(default_factory=list)
    audit_seq: int = 0
    billing: BillingState = Field(default_factory=BillingState)
    collections: CollectionsState = Field(default_factory=CollectionsState)
    #: Exceptions opened so far, by step and subject: the next one's id follows from it.
    exception_counts: dict[str, int] = Field(default_factory=dict)


class ContractRun(ContractApproved):
    """The input of ``ContractToCash``: the approved contract, and, from the second run on,
    the state carried over from the previous run.

    A ``ContractApproved`` payload is a valid ``ContractRun`` without ``carried``, so the CLM,
    the API and histories recorded before continue-as-new existed all start it unchanged.
    """

    carried: CarriedState | None = None

    def approved(self) -> ContractApproved:
        """The approved contract alone, as the business steps receive it."""
        return ContractApproved.model_validate(self.model_dump(exclude={"carried"}))
