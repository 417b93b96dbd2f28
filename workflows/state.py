"""The contract's state inside the workflow: the decided state and the run's bookkeeping.

``ContractBase`` holds the contract's ``ContractState`` (``domain.contract_state``: everything
decided so far, one serializable model) as ``s``, beside what only this run needs to deliver
messages and write the audit trail: the inbox, the updates waiting for their answers, the audit
entries not yet written. It answers the questions the other parts ask of the contract (its
terms, its last day, whether a period is over, at the workflow's time), keeps the stage and the
history, publishes them to the Temporal UI and the status query, and hands them over at
continue-as-new (``_carry``, ``_restore``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.amendments import Terms
    from domain.carried import (
        CARRIED_HISTORY_LINES,
        BillingState,
        CarriedState,
        CollectionsState,
        Message,
        PendingMessage,
    )
    from domain.contract_state import ContractState
    from domain.models import (
        ContractApproved,
        ContractStatus,
        CreditInvoice,
        HistoryEntry,
    )
    from domain.money import round_money
    from domain.names import SA_OPEN_EXCEPTIONS, SA_STAGE, Stage
    from domain.periods import Period
    from domain.steps import AuditEntry
    from workflows import billing, collections
    from workflows.releases import FOLDED, NEW_IN_RELEASE


#: Longest line of history (and of the ledger's audit trail).
MAX_EVENT = 2000


def carried_billing(s: ContractState) -> BillingState:
    """The billing position, to carry into the contract's next run."""
    carried = s.billing.model_copy(deep=True)
    carried.ratable_months = sorted(carried.ratable_months)
    return carried


def carried_collections(s: ContractState, keep: Collection[str] = ()) -> CollectionsState:
    """Receivables, cash and dunning, to carry into the contract's next run: settled
    invoices folded into sums, except those in ``keep``."""
    col = s.collections
    return col.model_copy(
        deep=True,
        update={
            "overdue": sorted(col.overdue),
            "dunning_stopped": sorted(col.dunning_stopped),
        },
    ).folded(keep)


@dataclass
class Inbound:
    """A message in the contract's inbox, with the key its update waits on (signals have
    none), the workflow task it arrived in, a name for it that is the same in every replay
    (``u:<update id>`` or ``s:<task>:<n>``), and the instant its sender stamped on it (none
    when it was sent without c2c's clients)."""

    message: Message
    key: int | None = None
    task: int = 0
    arrival: str = ""
    sent: int | None = None


class ContractBase:
    """The contract's state and the run's bookkeeping, shared by the workflow's parts."""

    #: Everything decided so far.
    s: ContractState
    _inbox: list[Inbound]
    #: Keys of updates waiting in the inbox, and the answers of those decided.
    _arrivals: int
    _answers: dict[int, Any]
    #: The workflow task messages last arrived in, the kinds (signal, update) and number
    #: of signals that arrived in it, and the tasks whose order must be kept in history.
    _arrival_task: int
    _arrival_kinds: set[bool]
    _arrival_signals: int
    _mixed_tasks: set[int]
    #: Whether this run orders the messages of one task by their senders' stamps, and
    #: whether it decides the messages left in its inbox as it ends.
    _sender_order: bool
    _late_messages: bool
    #: Operator decisions answered once the contract has come to rest after them.
    _unsettled: list[int]
    _pending_audit: list[AuditEntry]
    _audit_seq: int
    _waiting_for: str
    #: One business step at a time: the main loop and amendment handlers take turns.
    _lock: asyncio.Lock
    #: Bumped whenever a change may move the next wake-up (an end date, a new invoice).
    _changes: int
    #: Set when this run, replaying a history recorded before continue-as-new existed,
    #: must not continue as new.
    _continue_declined: bool
    #: Whether this run recorded the release marker (``workflows.releases``): asked once, at
    #: the run's start, before anything else.
    _release: bool = False

    def feature(self, patch_id: str) -> bool:
        """Whether this run takes the behaviour ``patch_id`` names.

        A run with the release marker takes every behaviour the release folds or brings,
        without a marker of its own; an older run asks the patch as it always did, and never
        takes a behaviour new in the release.
        """
        if patch_id in FOLDED or patch_id in NEW_IN_RELEASE:
            if self._release:
                return True
            if patch_id in NEW_IN_RELEASE:
                return False
        return workflow.patched(patch_id)

    def _start_run(self, state: ContractState) -> None:
        """Take up ``state`` with nothing in the inbox and nothing waiting."""
        self.s = state
        self._inbox = []
        self._arrivals = 0
        self._answers = {}
        self._arrival_task = 0
        self._arrival_kinds = set()
        self._arrival_signals = 0
        self._mixed_tasks = set()
        self._sender_order = False
        self._late_messages = False
        self._unsettled = []
        self._pending_audit = []
        self._audit_seq = 0
        self._waiting_for = ""
        self._lock = asyncio.Lock()
        self._changes = 0
        self._continue_declined = False

    # ------------------------------------------------------------------ contract terms

    @property
    def c(self) -> ContractApproved:
        return self.s.contract

    @property
    def terms(self) -> Terms:
        return self.s.terms

    @property
    def end_date(self) -> date:
        """The contract's last day: its (amended) end date, or the day a termination takes
        effect."""
        return self.s.end_date

    @property
    def final_period(self) -> Period:
        return self.s.final_period

    def ended(self) -> bool:
        return self.s.ended(workflow.now())

    def changed(self) -> None:
        """Wake the main loop to recompute its next timer."""
        self._changes += 1

    def _end_instant(self) -> datetime:
        return self.s.end_instant

    # ------------------------------------------------------------------ continue-as-new

    def _carry(self) -> CarriedState:
        """What the next run needs: bounded by what is open, not by what happened.

        The history keeps its latest lines, settled invoices fold into sums; what a user would
        miss is in the ledger (audit trail, billing facts) and the ERP.
        """
        history = self.s.history[-CARRIED_HISTORY_LINES:]
        # Invoices a waiting credit request names are carried whole: the request meets them as
        # it would have in one long run. (A payment naming a settled invoice is an overpayment:
        # unapplied cash, folded or not.)
        named = {i.message.invoice_id for i in self._inbox if isinstance(i.message, CreditInvoice)}
        return CarriedState(
            run=self.s.run + 1,
            stage=self.s.stage,
            resume_stage=self.s.resume_stage,
            refs=dict(self.s.refs),
            terms=self.terms,
            validated=self.s.validated,
            inbox=[PendingMessage.of(inbound.message) for inbound in self._inbox],
            terminate=self.s.terminate,
            open_exceptions=list(self.s.open.values()),
            decisions=list(self.s.decisions.values()),
            amendments=list(self.s.amendments.values()),
            abort_reason=self.s.abort_reason,
            history=history,
            history_omitted=self.s.history_omitted + len(self.s.history) - len(history),
            pending_audit=list(self._pending_audit),
            audit_seq=self._audit_seq,
            billing=carried_billing(self.s),
            collections=carried_collections(
                self.s, named | billing.fee_invoices_to_keep(self.s, workflow.now().date())
            ),
            exception_counts=dict(self.s.exception_counts),
        )

    def _restore(self, carried: CarriedState) -> None:
        self.s.run = carried.run
        self.s.stage = carried.stage
        self.s.resume_stage = carried.resume_stage
        self.s.refs = dict(carried.refs)
        self.s.terms = carried.terms
        self.s.validated = carried.validated
        # A run is only ever continued once the contract is active.
        self.s.provisioned = True
        self._inbox = [Inbound(pending.message) for pending in carried.inbox]
        self.s.exception_counts = dict(carried.exception_counts)
        self.s.terminate = carried.terminate
        self.s.open = {e.exception_id: e for e in carried.open_exceptions}
        self.s.decisions = {d.exception_id: d for d in carried.decisions}
        self.s.amendments = {a.amendment_id: a for a in carried.amendments}
        self.s.abort_reason = carried.abort_reason
        self.s.history = list(carried.history)
        self.s.history_omitted = carried.history_omitted
        self._pending_audit = list(carried.pending_audit)
        self._audit_seq = carried.audit_seq
        self.s.billing = carried.billing.model_copy(deep=True)
        self.s.collections = carried.collections.model_copy(deep=True)

    # ------------------------------------------------------------------ stage and history

    def _enter(self, stage: Stage, event: str) -> None:
        self.s.stage = stage
        workflow.upsert_search_attributes([SA_STAGE.value_set(stage.value)])
        self._publish_details()
        self.record(event)

    def record(self, event: str) -> None:
        # A system's message can be long; the audit trail keeps a readable line.
        event = event if len(event) <= MAX_EVENT else event[: MAX_EVENT - 1] + "…"
        now = workflow.now()
        self.s.history.append(HistoryEntry(at=now, stage=self.s.stage, event=event))
        self._audit_seq += 1
        info = workflow.info()
        self._pending_audit.append(
            AuditEntry(
                key=f"{info.workflow_id}:{info.run_id}:{self._audit_seq}",
                at=now,
                stage=self.s.stage,
                event=event,
            )
        )
        workflow.logger.info(
            event, extra={"contract_id": self.c.contract_id, "stage": self.s.stage.value}
        )

    def _publish_open_exceptions(self) -> None:
        workflow.upsert_search_attributes([SA_OPEN_EXCEPTIONS.value_set(len(self.s.open))])
        self._publish_details()

    def _wait_for(self, what: str) -> None:
        self._waiting_for = what
        self._publish_details()

    def _publish_details(self) -> None:
        """The Temporal UI's current details: where the contract is and what it waits for.

        Metadata, not a command: it changes nothing a replay checks.
        """
        lines = [f"**Stage:** {self.s.stage.value}"]
        if self._waiting_for:
            lines.append(f"**Waiting for:** {self._waiting_for}")
        if self.s.open:
            lines.append(f"**Open exceptions:** {', '.join(sorted(self.s.open))}")
        if self.s.run > 1:
            lines.append(f"**Run:** {self.s.run} (continued as new to keep the history short)")
        workflow.set_current_details("\n\n".join(lines))

    def _status(self) -> ContractStatus:
        c = self.c
        return ContractStatus(
            contract_id=c.contract_id,
            stage=self.s.stage,
            billing_model=c.billing_model,
            currency=c.currency,
            refs=dict(self.s.refs),
            invoices=collections.invoice_views(self.s),
            balance_due=round_money(self.s.collections.book.balance_due, c.currency),
            unapplied_cash=round_money(self.s.collections.book.unapplied, c.currency),
            amendments=list(self.s.amendments.values()),
            credit_notes=list(self.s.collections.credit_notes),
            milestones=billing.milestone_views(self.s),
            revenue=self.s.billing.revenue,
            held_back=round_money(self.s.billing.held_back, c.currency),
            written_off=round_money(self.s.billing.written_off, c.currency),
            write_offs=list(self.s.billing.write_offs),
            open_exceptions=list(self.s.open.values()),
            history=list(self.s.history),
            closed_periods=list(self.s.billing.closed_periods),
            waiting_for=self._waiting_for,
            queued_messages=len(self._inbox),
            history_omitted=self.s.history_omitted,
            settled_invoices=self.s.collections.settled,
            drafts=list(self.s.billing.drafts.values()),
            po_number=self.s.terms.po_number,
            bill_to=self.s.terms.bill_to,
            consolidated_invoicing=self.s.consolidation,
            sections_waiting=list(self.s.billing.sections.values()),
        )
