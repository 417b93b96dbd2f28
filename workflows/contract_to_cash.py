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

What is billed, when, and what revenue it carries is decided in ``workflows.billing``; cash,
credit notes and dunning in ``workflows.collections``. This module runs the stages, the
messages and the operator's decisions.
"""

from __future__ import annotations

import asyncio
import hashlib
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, FailureError

with workflow.unsafe.imports_passed_through():
    from zoneinfo import ZoneInfo

    from domain.amendments import Terms, apply_amendment, check_amendment
    from domain.carried import (
        CARRIED_HISTORY_LINES,
        CarriedState,
        ContractRun,
        Message,
        PendingMessage,
    )
    from domain.collections import DEFAULT_DUNNING_OFFSETS
    from domain.errors import BUSINESS_REJECTION
    from domain.models import (
        Amendment,
        AmendmentResult,
        ClosePeriod,
        ContractApproved,
        ContractStatus,
        ContractSummary,
        CreditInvoice,
        HistoryEntry,
        MalformedMessage,
        MilestoneCompleted,
        OpenException,
        PaymentReceived,
        ResolveException,
        TerminateContract,
    )
    from domain.money import round_money
    from domain.names import (
        QUERY_STATUS,
        SA_CONTRACT_VALUE,
        SA_OPEN_EXCEPTIONS,
        SA_STAGE,
        SIGNAL_AMEND,
        SIGNAL_CLOSE_PERIOD,
        SIGNAL_CREDIT_INVOICE,
        SIGNAL_MILESTONE_COMPLETED,
        SIGNAL_PAYMENT_RECEIVED,
        SIGNAL_TERMINATE_CONTRACT,
        UPDATE_APPLY_AMENDMENT,
        UPDATE_RESOLVE_EXCEPTION,
        WORKFLOW_TYPE,
        ExceptionAction,
        Stage,
        system_task_queue,
    )
    from domain.periods import Period
    from domain.pricing import initial_rates
    from domain.steps import (
        ACTIVATE_PSA_PROJECT,
        APPLY_CASH,
        APPLY_PAYMENT,
        ARCHIVE_SIGNED_DOCUMENT,
        BILL_PERIOD,
        CLOSE_CONTRACT,
        CLOSE_TIME_ENTRY,
        CREATE_ERP_CONTRACT,
        CREATE_ERP_PROJECT,
        ENSURE_ERP_CUSTOMER,
        ESCALATE_EXCEPTION,
        ISSUE_CREDIT_NOTE,
        OPEN_EXCEPTION,
        PROPAGATE_AMENDMENT,
        RECORD_ARRIVAL_ORDER,
        RECORD_AUDIT,
        RESOLVE_EXCEPTION_RECORD,
        SEND_DUNNING_REMINDER,
        STEP_SYSTEM_QUEUE,
        VALIDATE_CONTRACT,
        AmendmentInput,
        AmendmentPropagated,
        ArrivalOrder,
        AuditEntry,
        CloseContractInput,
        ContractStep,
        CreatedRef,
        EscalateExceptionInput,
        ExceptionOpened,
        OpenExceptionInput,
        ResolveExceptionInput,
        StepInput,
        Validated,
    )
    from workflows.billing import Billing
    from workflows.collections import Collections, instant
    from workflows.policies import (
        BILLING_TIMEOUT,
        LEDGER_RETRY,
        LOCAL_LEDGER_RETRY,
        STEP_RETRY,
        STEP_TIMEOUT,
    )

R = TypeVar("R", bound=BaseModel)

#: Marks runs that may continue as new: a contract whose history was recorded by a worker
#: without it replays without ever continuing at that point.
PATCH_CONTINUE_AS_NEW = "continue-as-new"

#: Marks runs whose writes to c2c's own ledger are local activities: run by the workflow's
#: worker inside the workflow task, recorded as one marker event instead of a task on the
#: queue (three events and a round trip through the server). A run recorded before it keeps
#: replaying them as activities.
PATCH_LOCAL_LEDGER = "ledger-writes-local"

#: Marks runs that decide every business message in the order it arrived, from one inbox:
#: amendments, operator decisions and terminations wait their turn behind the period closes,
#: payments and milestones before them, so that a reset, which delivers them all again at once,
#: decides each the same way. Runs recorded before it decide amendments as they arrive.
PATCH_ORDERED_INBOX = "ordered-inbox"

#: Marks runs that archive the signed document their approval names (a DocuSign envelope).
PATCH_SIGNED_DOCUMENT = "signed-document-archive"

#: The step of an exception about a message that could not be read.
INBOX_STEP = "inbox"

#: The step of an exception about cash c2c cannot apply: a payment in another currency, or
#: unapplied cash when the contract is ready to close. Finance refunds or converts it.
CASH_STEP = Collections.CASH_STEP

#: Exceptions that report something and hold no step: a decision (skip or retry) closes them.
NOTICE_STEPS = frozenset({INBOX_STEP, CASH_STEP, Billing.WORK_AFTER_END_STEP})

#: Steps an operator may skip: nothing later depends on an id they would have produced.
SKIPPABLE_STEPS = frozenset(
    {
        VALIDATE_CONTRACT,
        BILL_PERIOD,
        APPLY_PAYMENT,
        APPLY_CASH,
        ISSUE_CREDIT_NOTE,
        SEND_DUNNING_REMINDER,
        PROPAGATE_AMENDMENT,
        CLOSE_CONTRACT,
        ARCHIVE_SIGNED_DOCUMENT,
        CLOSE_TIME_ENTRY,
        Billing.CAP_STEP,
        Billing.WORK_AFTER_END_STEP,
        Collections.DUNNING_STEP,
        INBOX_STEP,
        CASH_STEP,
    }
)

#: The system a step talks to, for exceptions raised by timeouts rather than by a system.
STEP_SYSTEM = {
    VALIDATE_CONTRACT: "crm",
    ENSURE_ERP_CUSTOMER: "erp",
    CREATE_ERP_PROJECT: "erp",
    CREATE_ERP_CONTRACT: "erp",
    ACTIVATE_PSA_PROJECT: "psa",
    BILL_PERIOD: "erp",
    APPLY_PAYMENT: "erp",
    APPLY_CASH: "erp",
    ISSUE_CREDIT_NOTE: "erp",
    SEND_DUNNING_REMINDER: "crm",
    PROPAGATE_AMENDMENT: "erp",
    CLOSE_CONTRACT: "erp",
    CLOSE_TIME_ENTRY: "psa",
}

#: How each step reads in the contract's Temporal history, unless the caller says more.
STEP_SUMMARIES = {
    VALIDATE_CONTRACT: "validate customer, legal entity, tax address and rate card",
    ENSURE_ERP_CUSTOMER: "find or create the ERP customer",
    CREATE_ERP_PROJECT: "create the ERP project",
    CREATE_ERP_CONTRACT: "create the ERP contract, billing schedule and revenue treatment",
    ACTIVATE_PSA_PROJECT: "create and activate the PSA project",
    CLOSE_CONTRACT: "close the PSA and ERP projects",
    ARCHIVE_SIGNED_DOCUMENT: "archive the signed document and link it to the ERP contract",
}

#: Longest line of history (and of the ledger's audit trail).
MAX_EVENT = 2000

#: Stages after which the contract takes no more amendments.
FINISHED = frozenset({Stage.CLOSING, Stage.CLOSED, Stage.CANCELLED})


class Aborted(Exception):
    """An operator aborted the contract."""


class Refused(Exception):
    """A message decided in its turn and refused; the reason is the message."""


@dataclass
class Inbound:
    """A message in the contract's inbox, with the key its update waits on (signals have
    none), the workflow task it arrived in, and a name for it that is the same in every replay
    (``u:<update id>`` or ``s:<task>:<n>``)."""

    message: Message
    key: int | None = None
    task: int = 0
    arrival: str = ""


@workflow.defn(name=WORKFLOW_TYPE)
class ContractToCash:
    @workflow.init
    def __init__(self, start: ContractRun) -> None:
        # Everything the input decides is set here, before any signal handler runs: a signal
        # delivered in a run's first task must find the contract and the carried inbox.
        event = self._contract = start.approved()
        self._stage = Stage.RECEIVED
        self._resume_stage = Stage.RECEIVED
        self._refs: dict[str, str] = {}
        self._terms = Terms(
            currency=event.currency,
            start_date=event.start_date,
            end_date=event.end_date,
            not_to_exceed=event.not_to_exceed,
            rates=initial_rates(event.rate_card, event.start_date),
            milestones=list(event.milestones),
        )
        self._validated: Validated | None = None
        self._provisioned = False
        self._inbox: list[Inbound] = []
        # Decided in arrival order, from one inbox (see PATCH_ORDERED_INBOX). Asked before any
        # message is handled, so that a replay of an older history finds the answer it had.
        self._ordered = workflow.patched(PATCH_ORDERED_INBOX)
        #: Keys of updates waiting in the inbox, and the answers of those decided.
        self._arrivals = 0
        self._answers: dict[int, Any] = {}
        #: The workflow task messages last arrived in, the kinds (signal, update) and number
        #: of signals that arrived in it, and the tasks whose order must be kept in history.
        self._arrival_task = 0
        self._arrival_kinds: set[bool] = set()
        self._arrival_signals = 0
        self._mixed_tasks: set[int] = set()
        #: Operator decisions answered once the contract has come to rest after them.
        self._unsettled: list[int] = []
        #: Exceptions opened so far, by step and subject: the next one's id follows from it.
        self._exception_counts: dict[str, int] = {}
        self._terminate: TerminateContract | None = None
        self._open: dict[str, OpenException] = {}
        self._blocking: set[str] = set()
        self._decisions: dict[str, ResolveException] = {}
        self._amendments: dict[str, AmendmentResult] = {}
        self._abort_reason: str | None = None
        self._history: list[HistoryEntry] = []
        #: Earlier history lines left behind at hand-overs (all in the ledger's audit trail).
        self._history_omitted = 0
        self._pending_audit: list[AuditEntry] = []
        self._audit_seq = 0
        self._waiting_for = ""
        # One business step at a time: the main loop and amendment handlers take turns.
        self._lock = asyncio.Lock()
        # Bumped whenever a change may move the next wake-up (an end date, a new invoice).
        self._changes = 0
        #: Which run of the contract this is (continue-as-new starts the next).
        self._run = 1
        #: Set when this run, replaying a history recorded before continue-as-new existed,
        #: must not continue as new.
        self._continue_declined = False
        self.billing = Billing(self)
        self.collections = Collections(self)
        if start.carried is not None:
            self._restore(start.carried)

    # ------------------------------------------------------------------ the process

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
                    if event.signed_document and workflow.patched(PATCH_SIGNED_DOCUMENT):
                        await self._create(ARCHIVE_SIGNED_DOCUMENT)
                    await self._activate_psa()
                    self._provisioned = True
                    self._enter(Stage.ACTIVE, "contract active: billing runs at each period close")
                    await self.billing.on_activation()
            await self._run_active()
            await self._close()
        except Aborted as aborted:
            self.record(f"aborted by operator: {aborted}; undoing what the contract created")
            # An operator who aborts a compensating step stops the compensation there.
            with suppress(Aborted):
                await self._compensate()
            self._enter(Stage.CANCELLED, f"cancelled: {aborted}")
            await self._flush_audit()
        self._refuse_waiting()
        self._settle()
        return ContractSummary(status=self._status())

    async def _validate(self) -> None:
        self._enter(Stage.VALIDATING, "validating customer, legal entity, tax address, rate card")
        self._validated = await self.step(VALIDATE_CONTRACT, self._contract_step(), Validated)
        if self._validated:
            self.record(f"validated: tax jurisdiction {self._validated.jurisdiction_code}")

    async def _provision_erp(self) -> None:
        self._enter(Stage.PROVISIONING_ERP, "creating ERP customer, project and contract")
        for step in (ENSURE_ERP_CUSTOMER, CREATE_ERP_PROJECT, CREATE_ERP_CONTRACT):
            await self._create(step)

    async def _activate_psa(self) -> None:
        # Only now: the PSA project links to an ERP customer and project that are confirmed.
        self._enter(Stage.ACTIVATING_PSA, "creating and activating the PSA project")
        await self._create(ACTIVATE_PSA_PROJECT)

    async def _create(self, step: str) -> None:
        ref = await self.step(step, self._contract_step(), CreatedRef)
        if ref is not None:
            self._refs[ref.ref_name] = ref.external_id
            self.record(f"{ref.system} {ref.kind} {ref.external_id} ready")

    async def _run_active(self) -> None:
        while True:
            if self._continue_as_new_due():
                self._continue_as_new()
            await self._flush_audit()
            await self._wait_for_work()
            if self._continue_as_new_due():
                continue
            async with self._lock:
                if self._abort_reason is not None:
                    raise Aborted(self._abort_reason)
                if self._sla_due():
                    await self._escalate_due()
                elif self._inbox and not (self._ordered and self._work_due_now()):
                    await self._keep_arrival_order()
                    await self._handle(self._inbox.pop(0))
                elif self.collections.work_due():
                    await self.collections.do_due_work()
                elif self._final_billing_due():
                    # A terminated contract bills its last period itself once the termination
                    # has taken effect, so nothing worked up to that date goes unbilled.
                    await self.billing.bill_period(self.final_period)
                elif self.billing.true_up_due():
                    await self.billing.true_up()
                elif self._ready_to_close():
                    if self.billing.swept and not await self._report_unapplied_cash():
                        return
                    await self.billing.sweep_late_work()

    async def _close(self) -> None:
        self._enter(Stage.CLOSING, "delivered, billed and paid: closing projects")
        async with self._lock:
            await self.step(
                CLOSE_CONTRACT,
                CloseContractInput(contract_id=self.c.contract_id, refs=self._refs),
                None,
            )
        self._enter(Stage.CLOSED, "contract closed")
        await self._flush_audit()

    async def _compensate(self) -> None:
        """Undo the contract's effects, newest first: unpaid invoices are credited in full
        (an issued invoice is never deleted), then the PSA project is closed to time entry and
        the ERP project closed. Paid invoices and recognised revenue stay as they are."""
        async with self._lock:
            await self.collections.void_unpaid("contract aborted by operator")
            if self._refs.get("psa_project_id") or self._refs.get("erp_project_id"):
                await self.step(
                    CLOSE_CONTRACT,
                    CloseContractInput(contract_id=self.c.contract_id, refs=self._refs),
                    None,
                    summary="compensate: close the PSA and ERP projects",
                )
                self.record("PSA and ERP projects closed")

    async def _handle(self, inbound: Inbound) -> None:
        message = inbound.message
        if isinstance(message, Amendment):
            self._answer(inbound, await self._decide_amendment(message))
        elif isinstance(message, ResolveException):
            try:
                self._decide_resolution(message)
            except Refused as refused:
                self._answer(inbound, refused)
            else:
                if inbound.key is not None:
                    self._unsettled.append(inbound.key)
            await self._close_notices()
        elif isinstance(message, TerminateContract):
            self._decide_termination(message)
            if self._terminate is message:
                await self.billing.close_time_entry()
        elif isinstance(message, MalformedMessage):
            await self._decide_malformed(message)
        elif isinstance(message, ClosePeriod):
            await self.billing.bill_period(
                Period.parse(message.period), request=message if self._ordered else None
            )
        elif isinstance(message, PaymentReceived):
            await self.collections.receive(message)
        elif isinstance(message, CreditInvoice):
            await self.collections.credit(message)
        else:
            await self.billing.milestone_completed(message)

    def _refuse_waiting(self) -> None:
        """At the end of the contract, answer the updates still waiting their turn."""
        for inbound in self._inbox:
            self._answer(inbound, Refused(f"the contract is {self._stage.value}"))

    def _answer(self, inbound: Inbound, answer: Any) -> None:
        if inbound.key is not None:
            self._answers[inbound.key] = answer

    def _settle(self) -> None:
        """Answer the operator decisions taken since the contract last came to rest: a retry
        answers with what the retried step did, not with a stage it leaves a moment later."""
        if self._unsettled:
            status = self._status()
            for key in self._unsettled:
                self._answers[key] = status
            self._unsettled.clear()

    def _decidable_on_hold(self, message: Message) -> bool:
        """Whether a message is decided while the contract waits for an operator: decisions,
        terminations and unreadable messages always; amendments (often the fix the hold waits
        for) once the contract exists in the ERP and the PSA. Period closes, payments,
        milestones and credits wait until the hold is over."""
        if isinstance(message, Amendment):
            return self._provisioned or self._stage in FINISHED
        return isinstance(message, ResolveException | TerminateContract | MalformedMessage)

    def _next_on_hold(self) -> int | None:
        decidable = (self._decidable_on_hold(inbound.message) for inbound in self._inbox)
        return next((i for i, yes in enumerate(decidable) if yes), None)

    async def _await_decision_in_turn(self, exception_id: str) -> None:
        """Wait for the operator's decision on a hold, deciding in arrival order the messages
        that a hold does not stop."""
        while exception_id not in self._decisions:
            await self._keep_arrival_order()
            index = self._next_on_hold()
            if index is not None:
                await self._handle(self._inbox.pop(index))
                continue
            if self._sla_due():
                await self._escalate_due()
                continue
            self._settle()
            due = self._next_sla()
            with suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: exception_id in self._decisions or self._next_on_hold() is not None,
                    timeout=due - workflow.now() if due else None,
                    timeout_summary=(
                        f"until {due:%Y-%m-%d %H:%M} UTC, when {exception_id}'s SLA runs out"
                        if due
                        else None
                    ),
                )

    def _decide_resolution(self, decision: ResolveException) -> None:
        """Take an operator's decision in its turn.

        Raises:
            Refused: the exception is not open on this contract (never opened, already
                closed, or opened by a run a reset superseded), is already decided, or may not
                be skipped.
        """
        reason = self._resolution_refusal(decision)
        if reason is not None:
            raise Refused(reason)
        self._decisions[decision.exception_id] = decision

    def _resolution_refusal(self, decision: ResolveException) -> str | None:
        """Why an operator's decision cannot be taken now, or ``None``."""
        exception = self._open.get(decision.exception_id)
        if exception is None:
            return f"exception {decision.exception_id} is not open on this contract"
        if decision.exception_id in self._decisions:
            return f"exception {decision.exception_id} is already being resolved"
        if decision.action is ExceptionAction.SKIP and exception.step not in SKIPPABLE_STEPS:
            return (
                f"{exception.step} cannot be skipped: later steps need the record it creates; "
                "fix the data in the system of record and retry, or abort"
            )
        return None

    async def _close_notices(self) -> None:
        """Close decided exceptions that only report something (an unreadable message): no
        step waits for them."""
        for exception_id, exception in list(self._open.items()):
            if exception.step in NOTICE_STEPS and exception_id in self._decisions:
                await self.close_exception(exception_id)

    def _decide_termination(self, request: TerminateContract) -> None:
        if self._terminate is not None:
            self.record(
                f"termination effective {request.effective_date} ignored: the contract is "
                f"already terminated effective {self._terminate.effective_date}"
            )
            return
        self._terminate = request
        self.changed()
        self.record(
            f"termination requested, effective {request.effective_date}: {request.reason}; "
            f"billing ends {self.end_date}"
        )

    def period_over(self, period: Period) -> bool:
        """Whether ``period``'s last day has passed in the legal entity's time zone."""
        zone = self._validated.time_zone if self._validated is not None else "UTC"
        return local_date(workflow.now(), zone) > period.last_day

    @property
    def ordered(self) -> bool:
        """Whether this run decides from one ordered inbox (see ``PATCH_ORDERED_INBOX``)."""
        return self._ordered

    async def _report_unapplied_cash(self) -> bool:
        """Before a contract closes, the customer's money it still holds goes to finance, once:
        an exception with the amount, which finance closes when it has refunded it. Whether
        one was opened now (the contract then waits for it)."""
        unapplied = self.collections.unapplied()
        subject = "unapplied at close"
        if not self._ordered or unapplied <= 0:
            return False
        if self._exception_counts.get(f"{CASH_STEP}:{subject}"):
            return False
        ccy = self.c.currency
        self.record(f"{unapplied} {ccy} of unapplied cash held at closing: reported to finance")
        await self.open_exception(
            CASH_STEP,
            "c2c",
            "unapplied_cash_at_close",
            f"the contract is billed and paid but holds {unapplied} {ccy} of the customer's "
            "cash that no invoice takes: refund it (or apply it elsewhere) in the ERP, then "
            "skip to close this exception and let the contract close",
            blocking=False,
            subject=subject,
        )
        return True

    async def _decide_malformed(self, message: MalformedMessage) -> None:
        """A signal that could not be read: a line in the status and an exception for the
        integration team, who can find the sender; nothing else changes."""
        self.record(f"{message.name} signal refused: {message.reason}")
        await self.open_exception(
            INBOX_STEP,
            "c2c",
            "malformed_message",
            f"a {message.name} signal could not be read and was not applied: {message.reason}. "
            f"Input: {message.excerpt or '(empty)'}. Ask the sender to send it again, "
            "corrected; skip or retry closes this exception",
            blocking=False,
            subject=message.name,
        )

    # ------------------------------------------------------------------ contract terms

    @property
    def c(self) -> ContractApproved:
        return self._contract

    @property
    def terms(self) -> Terms:
        return self._terms

    @property
    def refs(self) -> dict[str, str]:
        return self._refs

    @property
    def validated(self) -> Validated | None:
        return self._validated

    @property
    def dunning_offsets(self) -> list[int]:
        if self._validated is None:
            return list(DEFAULT_DUNNING_OFFSETS)
        return self._validated.dunning_offsets_days

    @property
    def end_date(self) -> date:
        """The contract's last day: its (amended) end date, or the day a termination takes
        effect."""
        end = self.terms.end_date
        if self._terminate is not None:
            return max(self.c.start_date, min(self._terminate.effective_date, end))
        return end

    @property
    def final_period(self) -> Period:
        return Period.of(self.end_date)

    @property
    def terminated(self) -> bool:
        return self._terminate is not None

    def ended(self) -> bool:
        return workflow.now() >= self._end_instant()

    def changed(self) -> None:
        """Wake the main loop to recompute its next timer."""
        self._changes += 1

    def _end_instant(self) -> datetime:
        return instant(self.end_date + timedelta(days=1))

    def _final_billing_due(self) -> bool:
        return (
            self.terminated
            and self.ended()
            and str(self.final_period) not in self.billing.closed_periods
        )

    def _ready_to_close(self) -> bool:
        return (
            self.ended()
            and str(self.final_period) in self.billing.closed_periods
            and self.collections.balance_due() <= 0
            and not self._open
        )

    def _work_due_now(self) -> bool:
        """Whether what the calendar asks for now (a reminder, the final bill of a termination,
        a retainer's true-up, the last steps before closing) is due. It goes before the next
        message: what a message decides takes effect before the next one is decided, live or
        after a reset."""
        return (
            self.collections.work_due()
            or self._final_billing_due()
            or self.billing.true_up_due()
            or self._ready_to_close()
        )

    def _has_work(self) -> bool:
        return (
            bool(self._inbox)
            or self._abort_reason is not None
            or bool(self._sla_due())
            or self.collections.work_due()
            or self._final_billing_due()
            or self.billing.true_up_due()
            or self._ready_to_close()
        )

    async def _wait_for_work(self) -> None:
        self._settle()
        while not self._has_work() and not self._continue_as_new_due():
            self._wait_for(self._describe_wait())
            now = workflow.now()
            events = [self._end_instant(), self.collections.next_wake(), self._next_sla()]
            upcoming = [at for at in events if at is not None and at > now]
            changes = self._changes

            def moved(changes: int = changes) -> bool:
                return self._has_work() or self._changes != changes or self._continue_as_new_due()

            # A durable timer to the next calendar event (a due date, a dunning reminder, the
            # end date): the contract moves on without any message.
            with suppress(TimeoutError):
                await workflow.wait_condition(
                    moved,
                    timeout=min(upcoming) - now if upcoming else None,
                    timeout_summary=(
                        f"until {min(upcoming):%Y-%m-%d %H:%M} UTC, the next due date, reminder, "
                        "SLA or end date"
                        if upcoming
                        else None
                    ),
                )
        self._wait_for("")

    def _describe_wait(self) -> str:
        if not self.ended():
            return f"period closes, payments and milestones until the end date {self.end_date}"
        last = str(self.final_period)
        if last not in self.billing.closed_periods:
            return f"close of the final period {last}"
        if self._open:
            return "resolution of the open exceptions"
        return f"payment of the balance due {self.collections.balance_due()} {self.c.currency}"

    # ------------------------------------------------------------------ continue-as-new

    def _continue_as_new_due(self) -> bool:
        """Whether this run's history is long enough to hand over, and now is a safe moment.

        Safe means no step is running (the lock is free) and no signal or update handler is
        still at work: the next run starts from the state alone, so nothing may be half done.
        Messages waiting in the inbox are not half done: they are carried over.
        """
        if self._continue_declined or self._lock.locked():
            return False
        info = workflow.info()
        threshold = self._validated.continue_as_new_events if self._validated is not None else None
        long = info.is_continue_as_new_suggested() or (
            threshold is not None and info.get_current_history_length() >= threshold
        )
        return long and workflow.all_handlers_finished()

    def _continue_as_new(self) -> None:
        """Hand the contract over to a new run with everything decided so far."""
        if not workflow.patched(PATCH_CONTINUE_AS_NEW):
            self._continue_declined = True
            return
        self.record(
            f"history continued in run {self._run + 1} "
            f"({workflow.info().get_current_history_length()} events in run {self._run})"
        )
        workflow.continue_as_new(
            ContractRun(**self.c.model_dump(), carried=self._carry()),
            search_attributes=workflow.info().typed_search_attributes,
        )

    def _carry(self) -> CarriedState:
        """What the next run needs: bounded by what is open, not by what happened.

        The history keeps its latest lines, settled invoices fold into sums; what a user would
        miss is in the ledger (audit trail, billing facts) and the ERP.
        """
        history = self._history[-CARRIED_HISTORY_LINES:]
        # Invoices a waiting credit request names are carried whole: the request meets them as
        # it would have in one long run. (A payment naming a settled invoice is an overpayment:
        # unapplied cash, folded or not.)
        named = {i.message.invoice_id for i in self._inbox if isinstance(i.message, CreditInvoice)}
        return CarriedState(
            run=self._run + 1,
            stage=self._stage,
            resume_stage=self._resume_stage,
            refs=dict(self._refs),
            terms=self.terms,
            validated=self._validated,
            inbox=[PendingMessage.of(inbound.message) for inbound in self._inbox],
            terminate=self._terminate,
            open_exceptions=list(self._open.values()),
            decisions=list(self._decisions.values()),
            amendments=list(self._amendments.values()),
            abort_reason=self._abort_reason,
            history=history,
            history_omitted=self._history_omitted + len(self._history) - len(history),
            pending_audit=list(self._pending_audit),
            audit_seq=self._audit_seq,
            billing=self.billing.state(),
            collections=self.collections.state(named | self.billing.fee_invoices_to_keep()),
            exception_counts=dict(self._exception_counts),
        )

    def _restore(self, carried: CarriedState) -> None:
        self._run = carried.run
        self._stage = carried.stage
        self._resume_stage = carried.resume_stage
        self._refs = dict(carried.refs)
        self._terms = carried.terms
        self._validated = carried.validated
        # A run is only ever continued once the contract is active.
        self._provisioned = True
        self._inbox = [Inbound(pending.message) for pending in carried.inbox]
        self._exception_counts = dict(carried.exception_counts)
        self._terminate = carried.terminate
        self._open = {e.exception_id: e for e in carried.open_exceptions}
        self._decisions = {d.exception_id: d for d in carried.decisions}
        self._amendments = {a.amendment_id: a for a in carried.amendments}
        self._abort_reason = carried.abort_reason
        self._history = list(carried.history)
        self._history_omitted = carried.history_omitted
        self._pending_audit = list(carried.pending_audit)
        self._audit_seq = carried.audit_seq
        self.billing.restore(carried.billing)
        self.collections.restore(carried.collections)

    # ------------------------------------------------------------------ amendments

    def _amendment_refusal(self, amendment: Amendment) -> str | None:
        if self._stage in FINISHED:
            return f"the contract is {self._stage.value}: it takes no more amendments"
        reason = check_amendment(self.billing.terms_for_amendment(), amendment)
        if reason is None and amendment.not_to_exceed is not None:
            billed = self.billing.billed_to_date
            if amendment.not_to_exceed < billed:
                reason = (
                    f"not_to_exceed {amendment.not_to_exceed} is below the {billed} "
                    f"{self.c.currency} already invoiced."
                )
        return reason

    async def _amend(self, amendment: Amendment) -> AmendmentResult:
        """An amendment as runs recorded before the ordered inbox decide it: as it arrives,
        once the contract is set up, between the main loop's steps."""
        # Before the ERP contract and PSA project exist there is nothing to amend in them.
        await workflow.wait_condition(lambda: self._provisioned or self._stage in FINISHED)
        async with self._lock:
            return await self._decide_amendment(amendment)

    async def _decide_amendment(self, amendment: Amendment) -> AmendmentResult:
        """Apply an amendment to the terms and every system, or refuse it with the reason.

        A repeated amendment id gets the first answer, whatever it says now.
        """
        aid = amendment.amendment_id
        if aid in self._amendments:
            return self._amendments[aid]
        reason = self._amendment_refusal(amendment)
        if reason is not None:
            result = AmendmentResult(
                amendment_id=aid, status="rejected", reason=reason, at=workflow.now()
            )
            self._amendments[aid] = result
            self.record(f"amendment {aid} rejected: {reason}")
            return result
        amended = apply_amendment(self.terms, amendment)
        contract = self.billing.amended_contract(amended)
        propagated = await self.step(
            PROPAGATE_AMENDMENT,
            AmendmentInput(
                contract_id=self.c.contract_id,
                amendment=amendment,
                contract=contract,
                rates=amended.rates,
                refs=self._refs,
            ),
            AmendmentPropagated,
            summary=f"amendment {aid}",
            abort_ends_contract=False,
        )
        if propagated is None and self._abort_reason is not None:
            result = AmendmentResult(
                amendment_id=aid,
                status="rejected",
                reason="the contract was aborted",
                at=workflow.now(),
            )
            self._amendments[aid] = result
            return result
        self._terms = amended
        systems = propagated.propagated_to if propagated else ["ledger"]
        result = AmendmentResult(
            amendment_id=aid, status="applied", propagated_to=systems, at=workflow.now()
        )
        self._amendments[aid] = result
        workflow.upsert_search_attributes(
            [SA_CONTRACT_VALUE.value_set(float(contract.contract_value))]
        )
        self.record(
            f"amendment {aid} applied from {amendment.effective_date} "
            f"({amendment.reason}); reached {', '.join(systems)}"
        )
        self.changed()
        return result

    # ------------------------------------------------------------------ steps and exceptions

    def _contract_step(self) -> ContractStep:
        return ContractStep(contract_id=self.c.contract_id, contract=self.c, refs=self._refs)

    async def step(
        self,
        name: str,
        arg: StepInput,
        result_type: type[R] | None,
        *,
        summary: str | None = None,
        abort_ends_contract: bool = True,
    ) -> R | None:
        """Run one business step; on failure hold the contract until an operator decides.

        Returns ``None`` when the operator skipped the step (or aborted, when
        ``abort_ends_contract`` is false: the abort then takes effect in the main loop).
        """
        timeout = self._step_timeout()
        while True:
            try:
                return await self._execute(
                    name,
                    arg,
                    result_type,
                    start_to_close_timeout=BILLING_TIMEOUT if name == BILL_PERIOD else timeout,
                    heartbeat_timeout=timeout if name == BILL_PERIOD else None,
                    retry_policy=self._retry_policy(),
                    summary=summary or STEP_SUMMARIES.get(name, name),
                )
            except ActivityError as err:
                system, code, message = _failure(name, err)
                action = await self.hold(
                    name, system, code, message, subject=summary or STEP_SUMMARIES.get(name, name)
                )
                if action is ExceptionAction.RETRY:
                    continue
                if action is ExceptionAction.SKIP:
                    return None
                if abort_ends_contract:
                    raise Aborted(f"{name} was not completed") from err
                self._abort_reason = f"{name} was not completed"
                return None

    def _step_timeout(self) -> timedelta:
        """How long one attempt may take: configuration, once the contract is validated.

        A worker that dies mid-step is noticed after this long, and the step runs again on
        another worker.
        """
        if self._validated is None:
            return STEP_TIMEOUT
        return timedelta(seconds=self._validated.step_timeout_s)

    def _retry_policy(self) -> RetryPolicy:
        """The transient-failure budget: configuration, known once the contract is validated
        (validation itself runs on the default)."""
        if self._validated is None:
            return STEP_RETRY
        return replace(STEP_RETRY, maximum_attempts=self._validated.step_max_attempts)

    async def hold(
        self, step: str, system: str, code: str, message: str, *, subject: str = ""
    ) -> ExceptionAction:
        """Put the contract on hold with an exception and wait for the operator's decision.

        ``subject`` names what failed (an invoice's reference, an amendment): with the step it
        keys the exception's id, so that a reset opens the same exception again.
        """
        if self._stage is not Stage.ON_HOLD:
            self._resume_stage = self._stage
        if self._ordered:
            exception_id = await self.open_exception(
                step, system, code, message, blocking=True, subject=subject
            )
            self._enter(Stage.ON_HOLD, f"{step} failed: {system} {code}: {message}")
            self._wait_for(f"operator decision on {exception_id}")
            # Written now, not with the next step: the ledger, the API lists and the metrics
            # show the hold while it lasts.
            await self._flush_audit()
            await self._await_decision_in_turn(exception_id)
        else:
            exception_id = await self.open_exception(step, system, code, message, blocking=True)
            self._enter(Stage.ON_HOLD, f"{step} failed: {system} {code}: {message}")
            self._wait_for(f"operator decision on {exception_id}")
            # The hold waits without the lock, so that an amendment (often the fix) can apply.
            self._lock.release()
            try:
                await self._await_decision(exception_id)
            finally:
                await self._lock.acquire()
        decision = self._decisions[exception_id]
        self._wait_for("")
        event = f"{decision.action} of {step} by {decision.operator}" + (
            f": {decision.note}" if decision.note else ""
        )
        # The stage moves on first, so the operator's answer already shows where it went.
        if decision.action is not ExceptionAction.ABORT and self._blocking == {exception_id}:
            self._enter(self._resume_stage, event)
        else:
            self.record(event)
        await self.close_exception(exception_id)
        return decision.action

    async def open_exception(
        self,
        step: str,
        system: str,
        code: str,
        message: str,
        *,
        blocking: bool,
        subject: str = "",
    ) -> str:
        """Record an exception in the ledger's queue; a blocking one holds the contract."""
        exception_id = self._exception_id(step, subject)
        opened = await self._ledger(
            OPEN_EXCEPTION,
            OpenExceptionInput(
                contract_id=self.c.contract_id,
                exception_id=exception_id,
                stage=self._resume_stage if self._stage is Stage.ON_HOLD else self._stage,
                step=step,
                system=system,
                code=code,
                message=message,
                retryable=True,
                opened_at=workflow.now(),
            ),
            ExceptionOpened,
            f"open exception {exception_id}: {system} {code}",
        )
        self._open[exception_id] = opened.exception
        if blocking:
            self._blocking.add(exception_id)
        self._publish_open_exceptions()
        return exception_id

    def _exception_id(self, step: str, subject: str) -> str:
        """The id of the next exception on ``step`` for ``subject``.

        Derived from the workflow id, the step, the subject and how many exceptions were
        opened on them before: a reset, which decides everything again, opens the same
        exception under the same id, and an operator's decision delivered again finds it.
        """
        if not self._ordered:
            return f"EXC-{workflow.uuid4().hex[:12].upper()}"
        key = f"{step}:{subject}"
        count = self._exception_counts[key] = self._exception_counts.get(key, 0) + 1
        seed = f"{workflow.info().workflow_id}:{key}:{count}"
        return f"EXC-{hashlib.sha256(seed.encode()).hexdigest()[:12].upper()}"

    async def _await_decision(self, exception_id: str) -> None:
        """Wait for the operator; escalate the exception if its queue's SLA runs out first."""
        while exception_id not in self._decisions:
            if self._sla_due():
                await self._escalate_due()
                continue
            due = self._next_sla()
            with suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: exception_id in self._decisions,
                    timeout=due - workflow.now() if due else None,
                    timeout_summary=(
                        f"until {due:%Y-%m-%d %H:%M} UTC, when {exception_id}'s SLA runs out"
                        if due
                        else None
                    ),
                )

    def _sla_due(self) -> list[str]:
        now = workflow.now()
        return [
            e.exception_id
            for e in self._open.values()
            if e.sla_due_at is not None and e.escalated_at is None and e.sla_due_at <= now
        ]

    def _next_sla(self) -> datetime | None:
        dues = [
            e.sla_due_at
            for e in self._open.values()
            if e.sla_due_at is not None and e.escalated_at is None
        ]
        return min(dues) if dues else None

    async def _escalate_due(self) -> None:
        for exception_id in self._sla_due():
            now = workflow.now()
            self._open[exception_id] = self._open[exception_id].model_copy(
                update={"escalated_at": now}
            )
            e = self._open[exception_id]
            self.record(
                f"exception {exception_id} escalated: open in the {e.queue.value} queue since "
                f"{e.opened_at:%Y-%m-%d %H:%M} UTC, past its SLA"
            )
            await self._ledger(
                ESCALATE_EXCEPTION,
                EscalateExceptionInput(
                    contract_id=self.c.contract_id, exception_id=exception_id, at=now
                ),
                None,
                f"escalate exception {exception_id} in the {e.queue.value} queue",
            )

    def decision(self, exception_id: str) -> ResolveException | None:
        return self._decisions.get(exception_id)

    async def close_exception(
        self, exception_id: str, *, default: ResolveException | None = None
    ) -> ResolveException:
        """Take the operator's decision (or ``default``) and close the exception."""
        decision = self._decisions.pop(exception_id, None) or default
        assert decision is not None
        self._open.pop(exception_id, None)
        self._blocking.discard(exception_id)
        self._publish_open_exceptions()
        await self._ledger(
            RESOLVE_EXCEPTION_RECORD,
            ResolveExceptionInput(
                contract_id=self.c.contract_id,
                exception_id=exception_id,
                action=decision.action.value,
                operator=decision.operator,
                note=decision.note,
                at=workflow.now(),
            ),
            None,
            f"close exception {exception_id}: {decision.action.value} by {decision.operator}",
        )
        if decision.action is ExceptionAction.ABORT and self._abort_reason is None:
            self._abort_reason = f"{exception_id} aborted by {decision.operator}"
        return decision

    async def _ledger(
        self, name: str, arg: StepInput, result_type: type[R] | None, summary: str
    ) -> Any:
        """A write to c2c's own ledger: retried until it succeeds, never an exception.

        First as a local activity: the ledger is the workflow worker's own database and the
        write is short and keyed (a repeat changes nothing), so it needs no task queue. A
        ledger that refuses it ``LOCAL_LEDGER_RETRY``'s attempts is then retried as an ordinary
        activity: its attempts add no history events (a local activity's long retries add a
        workflow task every few seconds), and operators see it pending in ``describe``.
        """
        timeout = self._step_timeout()
        if self._ordered:
            # The exception this write opens, escalates or closes is the run's own.
            keep = set(self._open)
            if isinstance(arg, OpenExceptionInput | ResolveExceptionInput | EscalateExceptionInput):
                keep.add(arg.exception_id)
            arg.open_exceptions = sorted(keep)
        if workflow.patched(PATCH_LOCAL_LEDGER):
            try:
                return await self._execute(
                    name,
                    arg,
                    result_type,
                    local=True,
                    start_to_close_timeout=timeout,
                    retry_policy=LOCAL_LEDGER_RETRY,
                    summary=summary,
                )
            except FailureError as err:
                # A local activity's last failure arrives as the activity's own error (or a
                # timeout), not wrapped in an ActivityError.
                if isinstance(err, CancelledError):
                    raise
                workflow.logger.warning(
                    f"{name}: the ledger refused the write ({err}); retrying it as an activity",
                    extra={"contract_id": self.c.contract_id},
                )
        return await self._execute(
            name,
            arg,
            result_type,
            start_to_close_timeout=timeout,
            retry_policy=LEDGER_RETRY,
            summary=summary,
        )

    async def _execute(
        self,
        name: str,
        arg: StepInput,
        result_type: type[R] | None,
        *,
        local: bool = False,
        **options: Any,
    ) -> Any:
        """Run an activity (``local``: a local one) that also writes the audit entries not
        yet written.

        The entries stay pending until the activity succeeds, so a failed step loses none.
        """
        arg.audit = list(self._pending_audit)
        if local:
            result = await workflow.execute_local_activity(
                name, arg, result_type=result_type, **options
            )
        else:
            result = await workflow.execute_activity(
                name, arg, result_type=result_type, task_queue=self._task_queue(name), **options
            )
        # By key, not by position: two steps can run at once (an amendment during a hold).
        sent = {entry.key for entry in arg.audit}
        self._pending_audit = [e for e in self._pending_audit if e.key not in sent]
        return result

    def _task_queue(self, step: str) -> str:
        """The queue a step runs on: its system's, so that system's rate limit applies; c2c's
        own ledger writes on the workflows' queue."""
        queue = workflow.info().task_queue
        system = STEP_SYSTEM_QUEUE.get(step)
        return queue if system is None else system_task_queue(queue, system)

    async def _flush_audit(self) -> None:
        if self._pending_audit:
            await self._ledger(
                RECORD_AUDIT,
                StepInput(contract_id=self.c.contract_id),
                None,
                f"write {len(self._pending_audit)} audit trail entries",
            )

    # ------------------------------------------------------------------ stage and history

    def _enter(self, stage: Stage, event: str) -> None:
        self._stage = stage
        workflow.upsert_search_attributes([SA_STAGE.value_set(stage.value)])
        self._publish_details()
        self.record(event)

    def record(self, event: str) -> None:
        # A system's message can be long; the audit trail keeps a readable line.
        event = event if len(event) <= MAX_EVENT else event[: MAX_EVENT - 1] + "…"
        now = workflow.now()
        self._history.append(HistoryEntry(at=now, stage=self._stage, event=event))
        self._audit_seq += 1
        info = workflow.info()
        self._pending_audit.append(
            AuditEntry(
                key=f"{info.workflow_id}:{info.run_id}:{self._audit_seq}",
                at=now,
                stage=self._stage,
                event=event,
            )
        )
        workflow.logger.info(
            event, extra={"contract_id": self.c.contract_id, "stage": self._stage.value}
        )

    def _publish_open_exceptions(self) -> None:
        workflow.upsert_search_attributes([SA_OPEN_EXCEPTIONS.value_set(len(self._open))])
        self._publish_details()

    def _wait_for(self, what: str) -> None:
        self._waiting_for = what
        self._publish_details()

    def _publish_details(self) -> None:
        """The Temporal UI's current details: where the contract is and what it waits for.

        Metadata, not a command: it changes nothing a replay checks.
        """
        lines = [f"**Stage:** {self._stage.value}"]
        if self._waiting_for:
            lines.append(f"**Waiting for:** {self._waiting_for}")
        if self._open:
            lines.append(f"**Open exceptions:** {', '.join(sorted(self._open))}")
        if self._run > 1:
            lines.append(f"**Run:** {self._run} (continued as new to keep the history short)")
        workflow.set_current_details("\n\n".join(lines))

    def _status(self) -> ContractStatus:
        c = self.c
        return ContractStatus(
            contract_id=c.contract_id,
            stage=self._stage,
            billing_model=c.billing_model,
            currency=c.currency,
            refs=dict(self._refs),
            invoices=self.collections.invoice_views(),
            balance_due=round_money(self.collections.balance_due(), c.currency),
            unapplied_cash=round_money(self.collections.unapplied(), c.currency),
            amendments=list(self._amendments.values()),
            credit_notes=self.collections.credit_notes(),
            milestones=self.billing.milestone_views(),
            revenue=self.billing.revenue,
            held_back=round_money(self.billing.held_back, c.currency),
            written_off=round_money(self.billing.written_off, c.currency),
            open_exceptions=list(self._open.values()),
            history=list(self._history),
            closed_periods=list(self.billing.closed_periods),
            waiting_for=self._waiting_for,
            queued_messages=len(self._inbox),
            history_omitted=self._history_omitted,
            settled_invoices=self.collections.settled,
        )

    # ------------------------------------------------------------------ messages

    @workflow.query(name=QUERY_STATUS)
    def status(self) -> ContractStatus:
        return self._status()

    # Every handler puts its message in the one inbox before its first ``await``: handlers
    # start in the order Temporal delivers the messages, so the inbox keeps that order, in a
    # live run and in a run that a reset fed every message at once.

    def _enqueue(self, message: Message, *, update: bool = False) -> int | None:
        task = workflow.info().get_current_history_length()
        if task != self._arrival_task:
            self._arrival_task, self._arrival_kinds, self._arrival_signals = task, set(), 0
        self._arrival_kinds.add(update)
        if len(self._arrival_kinds) == 2:
            self._mixed_tasks.add(task)
        key = None
        if update:
            self._arrivals += 1
            key = self._arrivals
            update_info = workflow.current_update_info()
            assert update_info is not None  # an update handler is running
            arrival = f"u:{update_info.id}"
        else:
            self._arrival_signals += 1
            arrival = f"s:{task}:{self._arrival_signals}"
        self._inbox.append(Inbound(message, key, task, arrival))
        return key

    async def _keep_arrival_order(self) -> None:
        """Decide messages that arrived in one workflow task in the order they first arrived.

        Signals keep their order among themselves in every replay, and so do updates; but an
        update redelivered by a reset comes, in a replay, after the signals it arrived with,
        while the live run received it in its place. So when one task brings both, the order
        the live run saw is recorded in history (a local activity's result) and every replay
        takes it from there.
        """
        for task in sorted(self._mixed_tasks):
            places = [i for i, inbound in enumerate(self._inbox) if inbound.task == task]
            group = [self._inbox[i] for i in places]
            recorded = await self._ledger(
                RECORD_ARRIVAL_ORDER,
                ArrivalOrder(contract_id=self.c.contract_id, arrivals=[i.arrival for i in group]),
                ArrivalOrder,
                f"keep the order of {len(group)} messages that arrived together",
            )
            rank = {arrival: n for n, arrival in enumerate(recorded.arrivals)}
            for place, inbound in zip(
                places, sorted(group, key=lambda i: rank[i.arrival]), strict=True
            ):
                self._inbox[place] = inbound
        self._mixed_tasks.clear()

    async def _answer_of(self, key: int | None) -> Any:
        """Wait for the decision of an update's message, in its turn."""
        assert key is not None
        await workflow.wait_condition(lambda: key in self._answers)
        answer = self._answers.pop(key)
        if isinstance(answer, Refused):
            # A business refusal, decided in turn: the operator reads the reason alone.
            raise ApplicationError(str(answer), type="Refused", non_retryable=True)
        return answer

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

    def _signal(self, name: str, raw: RawValue, model: type[R]) -> R | None:
        """Queue a signal's message (an unreadable one too, in ordered runs); return it when
        it was readable."""
        message = self._read_signal(name, raw, model)
        if isinstance(message, MalformedMessage):
            if self._ordered:
                self._enqueue(message)
            else:
                workflow.logger.warning(f"{name} signal dropped: {message.reason}")
            return None
        return message

    @workflow.signal(name=SIGNAL_CLOSE_PERIOD)
    def close_period(self, raw: RawValue) -> None:
        if (request := self._signal(SIGNAL_CLOSE_PERIOD, raw, ClosePeriod)) is not None:
            self._enqueue(request)

    @workflow.signal(name=SIGNAL_PAYMENT_RECEIVED)
    def payment_received(self, raw: RawValue) -> None:
        if (payment := self._signal(SIGNAL_PAYMENT_RECEIVED, raw, PaymentReceived)) is not None:
            self._enqueue(payment)

    @workflow.signal(name=SIGNAL_MILESTONE_COMPLETED)
    def milestone_completed(self, raw: RawValue) -> None:
        milestone = self._signal(SIGNAL_MILESTONE_COMPLETED, raw, MilestoneCompleted)
        if milestone is not None:
            self._enqueue(milestone)

    @workflow.signal(name=SIGNAL_CREDIT_INVOICE)
    def credit_invoice(self, raw: RawValue) -> None:
        if (request := self._signal(SIGNAL_CREDIT_INVOICE, raw, CreditInvoice)) is not None:
            self._enqueue(request)

    @workflow.signal(name=SIGNAL_TERMINATE_CONTRACT)
    def terminate_contract(self, raw: RawValue) -> None:
        request = self._signal(SIGNAL_TERMINATE_CONTRACT, raw, TerminateContract)
        if request is None:
            return
        if self._ordered:
            self._enqueue(request)
        elif self._terminate is None:
            self._decide_termination(request)

    @workflow.signal(name=SIGNAL_AMEND)
    async def amend(self, raw: RawValue) -> None:
        amendment = self._signal(SIGNAL_AMEND, raw, Amendment)
        if amendment is None:
            return
        if self._ordered:
            self._enqueue(amendment)
        else:
            await self._amend(amendment)

    @workflow.update(name=UPDATE_APPLY_AMENDMENT)
    async def apply_amendment(self, amendment: Amendment) -> AmendmentResult:
        if not self._ordered:
            return await self._amend(amendment)
        result = await self._answer_of(self._enqueue(amendment, update=True))
        assert isinstance(result, AmendmentResult)
        return result

    @apply_amendment.validator
    def _validate_amendment(self, amendment: Amendment) -> None:
        # Runs before the update enters history: what cannot be applied leaves no trace.
        # In an ordered run it refuses only what no state could accept (the input's shape is
        # checked as it is read); everything else is decided in turn.
        if self._ordered:
            return
        # A repeated amendment id passes, and is answered with the first answer.
        if amendment.amendment_id in self._amendments:
            return
        if not self._provisioned and self._stage not in FINISHED:
            raise ValueError(
                f"the contract is still being set up (stage {self._stage.value}); "
                "amendments apply once it is active"
            )
        reason = self._amendment_refusal(amendment)
        if reason is not None:
            raise ValueError(reason)

    @workflow.update(name=UPDATE_RESOLVE_EXCEPTION)
    async def resolve_exception(self, decision: ResolveException) -> ContractStatus:
        if self._ordered:
            status = await self._answer_of(self._enqueue(decision, update=True))
            assert isinstance(status, ContractStatus)
            return status
        self._decisions[decision.exception_id] = decision
        await workflow.wait_condition(lambda: decision.exception_id not in self._open)
        return self._status()

    @resolve_exception.validator
    def _validate_resolution(self, decision: ResolveException) -> None:
        # Runs before the update enters history: a wrong id or an unsafe skip is refused
        # without a trace in the contract's history. An ordered run decides these in turn:
        # after a reset the decision arrives before the exception it names is opened again.
        if self._ordered:
            return
        reason = self._resolution_refusal(decision)
        if reason is not None:
            raise ValueError(reason)


def local_date(instant: datetime, zone: str) -> date:
    """The calendar date of a UTC ``instant`` in the IANA time zone ``zone``.

    The workflow sandbox hands out time zones behind a proxy that ``astimezone`` refuses, so the
    zone is asked for its offset instead: first at the UTC wall time, then at the local wall
    time that gives, which is right on either side of a daylight-saving change.
    """
    tz = ZoneInfo(zone)
    wall = instant.astimezone(UTC).replace(tzinfo=None)
    offset = tz.utcoffset(wall + (tz.utcoffset(wall) or timedelta(0))) or timedelta(0)
    return (wall + offset).date()


def _failure(step: str, err: ActivityError) -> tuple[str, str, str]:
    """The system, code and message of a failed step, for its exception."""
    cause = err.cause
    system, code, message = STEP_SYSTEM.get(step, "c2c"), "retries_exhausted", str(cause)
    if isinstance(cause, ApplicationError) and cause.type == BUSINESS_REJECTION and cause.details:
        details: dict[str, Any] = cause.details[0]
        system, code = str(details.get("system", system)), str(details.get("code", code))
        message = str(details.get("message", message))
    elif isinstance(cause, ApplicationError) and cause.details:
        system = str(cause.details[0].get("system", system))
    return system, code, message
