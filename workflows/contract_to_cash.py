"""``ContractToCash``: one contract from CLM approval to cash, as one durable workflow.

Stages run in order: received → validating → provisioning_erp → activating_psa → active →
closing → closed. A business rejection from any system puts the contract ``on_hold`` with an
exception in the queue that owns the fix, until an operator retries, skips or aborts; the
workflow itself fails only if a person aborts it.

Every business message (signal or update) enters one inbox in arrival order and is decided
against the state the messages before it produced, so a replay, a reset to any point or a
continue-as-new decides everything the same way. While the contract is on hold, operator
decisions, amendments (often the fix the hold waits for) and terminations are decided in their
order; period closes, payments, milestones and credits wait until the hold ends. Runs recorded
before the ``ordered-inbox`` patch decide amendments as they arrive.

The workflow is built in layers, each a module of ``workflows``: ``state`` (the contract's
``ContractState`` and the run's bookkeeping), ``execution`` (steps and ledger writes),
``holds`` (holds and the exception queue) and ``run_loop`` (the stages, the inbox,
continue-as-new, and the driver that runs a decider's commands). What is billed, when, and
what revenue it carries is decided in ``workflows.billing``; cash, credit notes and dunning in
``workflows.collections``: pure deciders (``workflows.commands``). This module holds the
workflow class: its input, its run, and the signals, updates and query it answers.
"""

from __future__ import annotations

from contextlib import suppress
from typing import TypeVar

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.carried import ContractRun
    from domain.contract_state import FINISHED, ContractState, local_date
    from domain.models import (
        Amendment,
        AmendmentResult,
        ClosePeriod,
        ContractStatus,
        ContractSummary,
        CreditInvoice,
        MalformedMessage,
        MilestoneCompleted,
        PaymentReceived,
        ResolveException,
        ReviewInvoice,
        SectionInvoiced,
        TerminateContract,
    )
    from domain.names import (
        QUERY_STATUS,
        SENT_METADATA,
        SIGNAL_AMEND,
        SIGNAL_CLOSE_PERIOD,
        SIGNAL_CREDIT_INVOICE,
        SIGNAL_MILESTONE_COMPLETED,
        SIGNAL_PAYMENT_RECEIVED,
        SIGNAL_SECTION_INVOICED,
        SIGNAL_TERMINATE_CONTRACT,
        UPDATE_APPLY_AMENDMENT,
        UPDATE_RESOLVE_EXCEPTION,
        UPDATE_REVIEW_INVOICE,
        WORKFLOW_TYPE,
        Stage,
    )
    from domain.steps import ARCHIVE_SIGNED_DOCUMENT
    from workflows import billing, consolidation
    from workflows.execution import PATCH_LOCAL_LEDGER, Aborted
    from workflows.holds import NOTICE_STEPS, SKIPPABLE_STEPS
    from workflows.releases import PATCH_RELEASE
    from workflows.run_loop import (
        MID_RUN_PATCHES,
        PATCH_CONTINUE_AS_NEW,
        PATCH_INVOICE_DOCUMENTS,
        RunLoop,
    )

__all__ = [
    "FINISHED",
    "NOTICE_STEPS",
    "PATCH_CONTINUE_AS_NEW",
    "PATCH_INVOICE_DOCUMENTS",
    "PATCH_LATE_MESSAGES",
    "PATCH_LOCAL_LEDGER",
    "PATCH_ORDERED_INBOX",
    "PATCH_RELEASE",
    "PATCH_SENDER_ORDER",
    "PATCH_SIGNED_DOCUMENT",
    "SKIPPABLE_STEPS",
    "ContractToCash",
    "local_date",
]

R = TypeVar("R", bound=BaseModel)

#: Marks runs that decide every business message in the order it arrived, from one inbox:
#: amendments, operator decisions and terminations wait their turn behind the period closes,
#: payments and milestones before them, so that a reset, which delivers them all again at once,
#: decides each the same way. Runs recorded before it decide amendments as they arrive.
PATCH_ORDERED_INBOX = "ordered-inbox"

#: Marks runs that decide the messages one workflow task brings in the order their senders
#: stamped them (``SENT_METADATA``), when every one of them carries a stamp: the order a reset
#: delivers them in, whatever the worker's cache. Runs recorded before it, and tasks bringing
#: an unstamped message, keep the arrival order recorded in history (``record_arrival_order``).
PATCH_SENDER_ORDER = "sender-order"

#: Marks runs that, as they end, decide every message still in the inbox (a payment or an
#: amendment that came after the contract's last decision): a refusal with its reason in the
#: status and, for a payment, a ``finance`` exception. Runs recorded before it answer only the
#: updates still waiting.
PATCH_LATE_MESSAGES = "late-messages-decided"

#: Marks runs that archive the signed document their approval names (a DocuSign envelope).
PATCH_SIGNED_DOCUMENT = "signed-document-archive"
#: The patch, asked at a run's start, that answers the deciders' mid-run patches below.
PATCH_MID_RUN_DECISIONS = "mid-run-decisions-at-start"


@workflow.defn(name=WORKFLOW_TYPE)
class ContractToCash(RunLoop):
    @workflow.init
    def __init__(self, start: ContractRun) -> None:
        # Everything the input decides is set here, before any signal handler runs: a signal
        # delivered in a run's first task must find the contract and the carried inbox.
        # Decided in arrival order, from one inbox (see PATCH_ORDERED_INBOX). Asked before any
        # message is handled, so that a replay of an older history finds the answer it had.
        # The release marker answers every patch below (``workflows.releases``); a run
        # recorded before it asks them one by one, in the order it always did.
        release = workflow.patched(PATCH_RELEASE)
        self._release = release
        ordered = self.feature(PATCH_ORDERED_INBOX)
        # The patches deciders ask for mid-run are answered by one patch asked here, at the
        # run's start: its marker then sits in the first task, whatever task a message reaching
        # a decider comes in, so a replay (a worker that restarted, or evicted the run) finds
        # it where it was. A run recorded before it has no marker and keeps what it did.
        if self.feature(PATCH_MID_RUN_DECISIONS):
            self._mid_run_patches = MID_RUN_PATCHES
        # Asked here for the same reason: the documents step follows decisions mid-run.
        self._renders_documents = self.feature(PATCH_INVOICE_DOCUMENTS)
        self._start_run(ContractState.approved(start.approved(), ordered=ordered))
        self._sender_order = ordered and self.feature(PATCH_SENDER_ORDER)
        self._late_messages = ordered and self.feature(PATCH_LATE_MESSAGES)
        if start.carried is not None:
            self._restore(start.carried)

    @workflow.run
    async def run(self, start: ContractRun) -> ContractSummary:
        """Run the contract: from its approval, or, with carried state, from where the
        previous run of the same contract continued as new."""
        event = self.c
        self._publish_details()
        try:
            if start.carried is None:
                self.record(f"approved in CLM by {event.approved_by} (version {event.version})")
                async with self._lock:
                    await self._validate()
                    await self._provision_erp()
                    if event.signed_document and self.feature(PATCH_SIGNED_DOCUMENT):
                        await self._create(ARCHIVE_SIGNED_DOCUMENT)
                    await self._activate_psa()
                    self.s.provisioned = True
                    self._enter(Stage.ACTIVE, "contract active: billing runs at each period close")
                    await self.decide(billing.on_activation(self.s, workflow.now))
                    await self.decide(consolidation.join(self.s, workflow.now))
            await self._run_active()
            await self._close()
        except Aborted as aborted:
            self.record(f"aborted by operator: {aborted}; undoing what the contract created")
            # An operator who aborts a compensating step stops the compensation there.
            with suppress(Aborted):
                await self._compensate()
            self._enter(Stage.CANCELLED, f"cancelled: {aborted}")
            await self._flush_audit()
        if self._late_messages:
            await self._decide_late_messages()
        self._refuse_waiting()
        self._settle()
        return ContractSummary(status=self._status())

    # ------------------------------------------------------------------ messages

    @workflow.query(name=QUERY_STATUS)
    def status(self) -> ContractStatus:
        return self._status()

    # Every handler puts its message in the one inbox before its first ``await``: handlers
    # start in the order Temporal delivers the messages, so the inbox keeps that order, in a
    # live run and in a run that a reset fed every message at once.

    def _read_signal(self, name: str, raw: RawValue, model: type[R]) -> R | MalformedMessage:
        """A signal's input as ``model``, or what was wrong with it."""
        try:
            value = workflow.payload_converter().from_payload(raw.payload, model)
        except Exception as err:
            excerpt = raw.payload.data[:400].decode("utf-8", "replace")
            reason = str(err).replace("\n", "; ")[:1500]
            return MalformedMessage(name=name, reason=reason, excerpt=excerpt)
        assert isinstance(value, model)
        return value

    @staticmethod
    def _sent(raw: RawValue) -> int | None:
        """The instant the sender stamped on a message, if it stamped one (``SENT_METADATA``);
        a message sent by other means (``temporal workflow signal``) has none."""
        stamp = raw.payload.metadata.get(SENT_METADATA)
        try:
            return int(stamp) if stamp is not None else None
        except ValueError:
            return None

    def _signal(self, name: str, raw: RawValue, model: type[R]) -> R | None:
        """Queue a signal's message (an unreadable one too, in ordered runs); return it when
        it was readable."""
        message = self._read_signal(name, raw, model)
        if isinstance(message, MalformedMessage):
            if self.s.ordered:
                self._enqueue(message, sent=self._sent(raw))
            else:
                workflow.logger.warning(f"{name} signal dropped: {message.reason}")
            return None
        return message

    def _read_update(self, name: str, raw: RawValue, model: type[R]) -> R:
        """An update's input as ``model``; an unreadable one is refused before it enters
        history, naming what was wrong."""
        message = self._read_signal(name, raw, model)
        if isinstance(message, MalformedMessage):
            raise ValueError(f"{name}: {message.reason}")
        return message

    @workflow.signal(name=SIGNAL_CLOSE_PERIOD)
    def close_period(self, raw: RawValue) -> None:
        if (request := self._signal(SIGNAL_CLOSE_PERIOD, raw, ClosePeriod)) is not None:
            self._enqueue(request, sent=self._sent(raw))

    @workflow.signal(name=SIGNAL_PAYMENT_RECEIVED)
    def payment_received(self, raw: RawValue) -> None:
        if (payment := self._signal(SIGNAL_PAYMENT_RECEIVED, raw, PaymentReceived)) is not None:
            self._enqueue(payment, sent=self._sent(raw))

    @workflow.signal(name=SIGNAL_MILESTONE_COMPLETED)
    def milestone_completed(self, raw: RawValue) -> None:
        milestone = self._signal(SIGNAL_MILESTONE_COMPLETED, raw, MilestoneCompleted)
        if milestone is not None:
            self._enqueue(milestone, sent=self._sent(raw))

    @workflow.signal(name=SIGNAL_CREDIT_INVOICE)
    def credit_invoice(self, raw: RawValue) -> None:
        if (request := self._signal(SIGNAL_CREDIT_INVOICE, raw, CreditInvoice)) is not None:
            self._enqueue(request, sent=self._sent(raw))

    @workflow.signal(name=SIGNAL_SECTION_INVOICED)
    def section_invoiced(self, raw: RawValue) -> None:
        answer = self._signal(SIGNAL_SECTION_INVOICED, raw, SectionInvoiced)
        if answer is not None:
            self._enqueue(answer, sent=self._sent(raw))

    @workflow.signal(name=SIGNAL_TERMINATE_CONTRACT)
    def terminate_contract(self, raw: RawValue) -> None:
        request = self._signal(SIGNAL_TERMINATE_CONTRACT, raw, TerminateContract)
        if request is None:
            return
        if self.s.ordered:
            self._enqueue(request, sent=self._sent(raw))
        elif self.s.terminate is None:
            self._decide_termination(request)

    @workflow.signal(name=SIGNAL_AMEND)
    async def amend(self, raw: RawValue) -> None:
        amendment = self._signal(SIGNAL_AMEND, raw, Amendment)
        if amendment is None:
            return
        if self.s.ordered:
            self._enqueue(amendment, sent=self._sent(raw))
        else:
            await self._amend(amendment)

    @workflow.update(name=UPDATE_APPLY_AMENDMENT)
    async def apply_amendment(self, raw: RawValue) -> AmendmentResult:
        amendment = self._read_update(UPDATE_APPLY_AMENDMENT, raw, Amendment)
        if not self.s.ordered:
            return await self._amend(amendment)
        key = self._enqueue(amendment, update=True, sent=self._sent(raw))
        result = await self._answer_of(key)
        assert isinstance(result, AmendmentResult)
        return result

    @apply_amendment.validator
    def _validate_amendment(self, raw: RawValue) -> None:
        # Runs before the update enters history: what cannot be applied leaves no trace.
        # In an ordered run it refuses only what no state could accept (the input's shape is
        # checked as it is read); everything else is decided in turn.
        amendment = self._read_update(UPDATE_APPLY_AMENDMENT, raw, Amendment)
        if self.s.ordered:
            return
        # A repeated amendment id passes, and is answered with the first answer.
        if amendment.amendment_id in self.s.amendments:
            return
        if not self.s.provisioned and self.s.stage not in FINISHED:
            raise ValueError(
                f"the contract is still being set up (stage {self.s.stage.value}); "
                "amendments apply once it is active"
            )
        reason = self._amendment_refusal(amendment)
        if reason is not None:
            raise ValueError(reason)

    @workflow.update(name=UPDATE_RESOLVE_EXCEPTION)
    async def resolve_exception(self, raw: RawValue) -> ContractStatus:
        decision = self._read_update(UPDATE_RESOLVE_EXCEPTION, raw, ResolveException)
        if self.s.ordered:
            key = self._enqueue(decision, update=True, sent=self._sent(raw))
            status = await self._answer_of(key)
            assert isinstance(status, ContractStatus)
            return status
        self.s.decisions[decision.exception_id] = decision
        await workflow.wait_condition(lambda: decision.exception_id not in self.s.open)
        return self._status()

    @resolve_exception.validator
    def _validate_resolution(self, raw: RawValue) -> None:
        # Runs before the update enters history: a wrong id or an unsafe skip is refused
        # without a trace in the contract's history. An ordered run decides these in turn:
        # after a reset the decision arrives before the exception it names is opened again.
        decision = self._read_update(UPDATE_RESOLVE_EXCEPTION, raw, ResolveException)
        if self.s.ordered:
            return
        reason = self._resolution_refusal(decision)
        if reason is not None:
            raise ValueError(reason)

    @workflow.update(name=UPDATE_REVIEW_INVOICE)
    async def review_invoice(self, review: ReviewInvoice) -> ContractStatus:
        """An operator approves or rejects a draft invoice, decided in its turn."""
        if not self.s.ordered:
            raise ApplicationError(
                "this contract's run predates invoice review: it has no drafts",
                type="Refused",
                non_retryable=True,
            )
        status = await self._answer_of(self._enqueue(review, update=True))
        assert isinstance(status, ContractStatus)
        return status
