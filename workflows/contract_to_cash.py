"""``ContractToCash``: one contract from CLM approval to cash, as one durable workflow.

Stages run in order: received → validating → provisioning_erp → activating_psa → active →
closing → closed. A business rejection from any system puts the contract ``on_hold`` with an
exception in the queue that owns the fix, until an operator retries, skips or aborts; the
workflow itself fails only if a person aborts it. Messages that arrive before the contract is
active, or while it is on hold, wait in an inbox and are handled in order afterwards.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel
from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.errors import BUSINESS_REJECTION
    from domain.models import (
        ClosePeriod,
        ContractApproved,
        ContractStatus,
        ContractSummary,
        HistoryEntry,
        InvoiceSummary,
        MilestoneCompleted,
        OpenException,
        PaymentReceived,
        ResolveException,
        TerminateContract,
    )
    from domain.money import round_money
    from domain.names import (
        QUERY_STATUS,
        SA_OPEN_EXCEPTIONS,
        SA_STAGE,
        SIGNAL_CLOSE_PERIOD,
        SIGNAL_MILESTONE_COMPLETED,
        SIGNAL_PAYMENT_RECEIVED,
        SIGNAL_TERMINATE_CONTRACT,
        UPDATE_RESOLVE_EXCEPTION,
        WORKFLOW_TYPE,
        ExceptionAction,
        Stage,
    )
    from domain.periods import Period
    from domain.pricing import RateRevision, initial_rates
    from domain.steps import (
        ACTIVATE_PSA_PROJECT,
        APPLY_PAYMENT,
        BILL_PERIOD,
        CLOSE_CONTRACT,
        CREATE_ERP_CONTRACT,
        CREATE_ERP_PROJECT,
        ENSURE_ERP_CUSTOMER,
        OPEN_EXCEPTION,
        RECORD_AUDIT,
        RESOLVE_EXCEPTION_RECORD,
        VALIDATE_CONTRACT,
        ApplyPaymentInput,
        AuditEntry,
        BillPeriodInput,
        BillPeriodResult,
        CloseContractInput,
        ContractStep,
        CreatedRef,
        ExceptionOpened,
        OpenExceptionInput,
        PaymentApplied,
        ResolveExceptionInput,
        StepInput,
        Validated,
    )
    from workflows.policies import (
        BILLING_HEARTBEAT,
        BILLING_TIMEOUT,
        LEDGER_RETRY,
        STEP_RETRY,
        STEP_TIMEOUT,
    )

R = TypeVar("R", bound=BaseModel)
Message = ClosePeriod | PaymentReceived | MilestoneCompleted

#: Steps an operator may skip: nothing later depends on an id they would have produced.
SKIPPABLE_STEPS = frozenset({VALIDATE_CONTRACT, BILL_PERIOD, APPLY_PAYMENT, CLOSE_CONTRACT})

#: The system a step talks to, for exceptions raised by timeouts rather than by a system.
STEP_SYSTEM = {
    VALIDATE_CONTRACT: "crm",
    ENSURE_ERP_CUSTOMER: "erp",
    CREATE_ERP_PROJECT: "erp",
    CREATE_ERP_CONTRACT: "erp",
    ACTIVATE_PSA_PROJECT: "psa",
    BILL_PERIOD: "erp",
    APPLY_PAYMENT: "erp",
    CLOSE_CONTRACT: "erp",
}


class _Aborted(Exception):
    """An operator aborted the contract."""


@workflow.defn(name=WORKFLOW_TYPE)
class ContractToCash:
    def __init__(self) -> None:
        self._contract: ContractApproved | None = None
        self._stage = Stage.RECEIVED
        self._refs: dict[str, str] = {}
        self._rates: list[RateRevision] = []
        self._validated: Validated | None = None
        self._invoices: list[InvoiceSummary] = []
        self._closed_periods: list[str] = []
        self._payments_seen: set[str] = set()
        self._unapplied_cash = Decimal(0)
        self._inbox: list[Message] = []
        self._terminate: TerminateContract | None = None
        self._open: dict[str, OpenException] = {}
        self._decisions: dict[str, ResolveException] = {}
        self._history: list[HistoryEntry] = []
        self._pending_audit: list[AuditEntry] = []
        self._audit_seq = 0
        self._waiting_for = ""

    # ------------------------------------------------------------------ the process

    @workflow.run
    async def run(self, event: ContractApproved) -> ContractSummary:
        self._contract = event
        self._rates = initial_rates(event.rate_card, event.start_date)
        self._record(f"approved in CLM by {event.approved_by} (version {event.version})")
        try:
            await self._validate()
            await self._provision_erp()
            await self._activate_psa()
            self._enter(Stage.ACTIVE, "contract active: billing runs at each period close")
            await self._run_active()
            await self._close()
        except _Aborted as aborted:
            self._enter(Stage.CANCELLED, f"aborted by operator: {aborted}")
            await self._flush_audit()
        return ContractSummary(status=self._status())

    async def _validate(self) -> None:
        self._enter(Stage.VALIDATING, "validating customer, legal entity, tax address, rate card")
        self._validated = await self._step(VALIDATE_CONTRACT, self._contract_step(), Validated)
        if self._validated:
            self._record(f"validated: tax jurisdiction {self._validated.jurisdiction_code}")

    async def _provision_erp(self) -> None:
        self._enter(Stage.PROVISIONING_ERP, "creating ERP customer, project and contract")
        for step in (ENSURE_ERP_CUSTOMER, CREATE_ERP_PROJECT, CREATE_ERP_CONTRACT):
            await self._create(step)

    async def _activate_psa(self) -> None:
        # Only now: the PSA project links to an ERP customer and project that are confirmed.
        self._enter(Stage.ACTIVATING_PSA, "creating and activating the PSA project")
        await self._create(ACTIVATE_PSA_PROJECT)

    async def _create(self, step: str) -> None:
        ref = await self._step(step, self._contract_step(), CreatedRef)
        if ref is not None:
            self._refs[ref.ref_name] = ref.external_id
            self._record(f"{ref.system} {ref.kind} {ref.external_id} ready")

    async def _run_active(self) -> None:
        while True:
            await self._flush_audit()
            await self._wait_for_work()
            if self._inbox:
                await self._handle(self._inbox.pop(0))
            elif self._final_billing_due():
                # A terminated contract bills its last period itself once the termination
                # has taken effect, so nothing worked up to that date goes unbilled.
                await self._bill_period(self._final_period())
            elif self._ready_to_close():
                return

    async def _close(self) -> None:
        self._enter(Stage.CLOSING, "delivered, billed and paid: closing projects")
        await self._step(
            CLOSE_CONTRACT,
            CloseContractInput(contract_id=self._c.contract_id, refs=self._refs),
            None,
        )
        self._enter(Stage.CLOSED, "contract closed")
        await self._flush_audit()

    # ------------------------------------------------------------------ billing and cash

    async def _handle(self, message: Message) -> None:
        if isinstance(message, ClosePeriod):
            await self._bill_period(Period.parse(message.period))
        elif isinstance(message, PaymentReceived):
            await self._apply_payment(message)
        else:
            self._record(f"milestone {message.milestone_id} completed on {message.completed_on}")

    async def _bill_period(self, period: Period) -> None:
        c = self._c
        name = str(period)
        if name in self._closed_periods:
            self._record(f"period {name} already closed: nothing to do")
            return
        if period < Period.of(c.start_date) or period > Period.of(self._end_date):
            self._record(f"period {name} is outside the contract's dates: ignored")
            return
        if period.first_day > workflow.now().date():
            self._record(f"period {name} has not started: not closed")
            return
        if period == self._final_period() and not self._ended():
            # Closing the last period early would leave later work unbilled for good.
            self._record(
                f"period {name} is the contract's last: it closes once the end date "
                f"{self._end_date} has passed"
            )
            return
        customer = c.customer
        result = await self._step(
            BILL_PERIOD,
            BillPeriodInput(
                contract_id=c.contract_id,
                period=name,
                through_date=min(period.last_day, self._end_date),
                invoice_date=workflow.now().date(),
                currency=c.currency,
                legal_entity=c.legal_entity,
                country=customer.country,
                region=customer.region,
                payment_terms_days=c.payment_terms_days,
                expenses_billable=c.expenses_billable,
                rates=self._rates,
                refs=self._refs,
            ),
            BillPeriodResult,
            summary=f"bill {name}",
        )
        self._closed_periods.append(name)
        if result is None:
            self._record(f"period {name} closed by operator without billing")
        elif result.invoice is None:
            self._record(f"period {name} closed: no approved billable work")
        else:
            inv = result.invoice
            self._invoices.append(inv)
            self._record(
                f"invoice {inv.number} issued for {name}: {result.hours} h, "
                f"{inv.subtotal} + tax {inv.tax} = {inv.total} {c.currency}, due {inv.due_on}"
            )

    async def _apply_payment(self, payment: PaymentReceived) -> None:
        if payment.payment_id in self._payments_seen:
            self._record(f"payment {payment.payment_id} already applied: ignored")
            return
        invoice = self._invoice_for(payment)
        if invoice is None:
            self._payments_seen.add(payment.payment_id)
            self._unapplied_cash += payment.amount
            self._record(
                f"payment {payment.payment_id} of {payment.amount} {payment.currency} "
                "matches no open invoice: kept as unapplied cash"
            )
            return
        applied = await self._step(
            APPLY_PAYMENT,
            ApplyPaymentInput(
                contract_id=self._c.contract_id, payment=payment, invoice_id=invoice.invoice_id
            ),
            PaymentApplied,
            summary=f"apply payment {payment.payment_id}",
        )
        self._payments_seen.add(payment.payment_id)
        if applied is None:
            self._record(f"payment {payment.payment_id} handled by operator outside c2c")
            return
        invoice.amount_paid = applied.amount_paid
        invoice.status = "paid" if applied.invoice_status == "paid" else "partially_paid"
        self._unapplied_cash += applied.unapplied
        self._record(
            f"payment {payment.payment_id}: {applied.applied} {payment.currency} applied to "
            f"invoice {invoice.number}, now {invoice.status}"
        )

    def _invoice_for(self, payment: PaymentReceived) -> InvoiceSummary | None:
        if payment.invoice_id is not None:
            return next((i for i in self._invoices if i.invoice_id == payment.invoice_id), None)
        return next((i for i in self._invoices if i.total > i.amount_paid), None)

    # ------------------------------------------------------------------ waiting

    @property
    def _c(self) -> ContractApproved:
        assert self._contract is not None
        return self._contract

    @property
    def _end_date(self) -> date:
        """The contract's last day: its end date, or the day a termination takes effect."""
        c = self._c
        if self._terminate is not None:
            return max(c.start_date, min(self._terminate.effective_date, c.end_date))
        return c.end_date

    def _final_period(self) -> Period:
        return Period.of(self._end_date)

    def _final_billing_due(self) -> bool:
        return (
            self._terminate is not None
            and self._ended()
            and str(self._final_period()) not in self._closed_periods
        )

    def _balance_due(self) -> Decimal:
        return sum(
            (i.total - i.amount_paid for i in self._invoices if i.status != "credited"),
            Decimal(0),
        )

    def _ended(self) -> bool:
        return workflow.now() >= self._end_instant()

    def _end_instant(self) -> datetime:
        return datetime.combine(self._end_date + timedelta(days=1), time(), tzinfo=UTC)

    def _ready_to_close(self) -> bool:
        return (
            self._ended()
            and str(self._final_period()) in self._closed_periods
            and self._balance_due() <= 0
            and not self._open
        )

    def _has_work(self) -> bool:
        return bool(self._inbox) or self._final_billing_due() or self._ready_to_close()

    async def _wait_for_work(self) -> None:
        while not self._has_work():
            self._waiting_for = self._describe_wait()
            remaining = self._end_instant() - workflow.now()
            # A durable timer to the end date: the contract closes without any message.
            with suppress(TimeoutError):
                await workflow.wait_condition(
                    self._has_work,
                    timeout=remaining if remaining > timedelta(0) else None,
                    timeout_summary="until the contract's end date",
                )
        self._waiting_for = ""

    def _describe_wait(self) -> str:
        if not self._ended():
            return f"period closes, payments and milestones until the end date {self._end_date}"
        last = str(self._final_period())
        if last not in self._closed_periods:
            return f"close of the final period {last}"
        return f"payment of the balance due {self._balance_due()} {self._c.currency}"

    # ------------------------------------------------------------------ steps and exceptions

    def _contract_step(self) -> ContractStep:
        return ContractStep(contract_id=self._c.contract_id, contract=self._c, refs=self._refs)

    async def _step(
        self, name: str, arg: StepInput, result_type: type[R] | None, *, summary: str | None = None
    ) -> R | None:
        """Run one business step; on failure hold the contract until an operator decides.

        Returns ``None`` when the operator skipped the step.
        """
        while True:
            try:
                return await self._execute(
                    name,
                    arg,
                    result_type,
                    start_to_close_timeout=BILLING_TIMEOUT if name == BILL_PERIOD else STEP_TIMEOUT,
                    heartbeat_timeout=BILLING_HEARTBEAT if name == BILL_PERIOD else None,
                    retry_policy=STEP_RETRY,
                    summary=summary or name,
                )
            except ActivityError as err:
                action = await self._hold(name, err)
                if action is ExceptionAction.RETRY:
                    continue
                if action is ExceptionAction.SKIP:
                    return None
                raise _Aborted(f"{name} was not completed") from err

    async def _hold(self, step: str, err: ActivityError) -> ExceptionAction:
        cause = err.cause
        system, code, message = STEP_SYSTEM.get(step, "c2c"), "retries_exhausted", str(cause)
        if (
            isinstance(cause, ApplicationError)
            and cause.type == BUSINESS_REJECTION
            and cause.details
        ):
            details: dict[str, Any] = cause.details[0]
            system, code = str(details.get("system", system)), str(details.get("code", code))
            message = str(details.get("message", message))
        elif isinstance(cause, ApplicationError) and cause.details:
            system = str(cause.details[0].get("system", system))
        resume_stage = self._stage
        exception_id = f"EXC-{workflow.uuid4().hex[:12].upper()}"
        self._enter(Stage.ON_HOLD, f"{step} failed: {system} {code}: {message}")
        opened = await self._ledger(
            OPEN_EXCEPTION,
            OpenExceptionInput(
                contract_id=self._c.contract_id,
                exception_id=exception_id,
                stage=resume_stage,
                step=step,
                system=system,
                code=code,
                message=message,
                retryable=True,
                opened_at=workflow.now(),
            ),
            ExceptionOpened,
        )
        self._open[exception_id] = opened.exception
        self._publish_open_exceptions()
        self._waiting_for = f"operator decision on {exception_id} ({opened.exception.queue} queue)"
        await workflow.wait_condition(lambda: exception_id in self._decisions)
        decision = self._decisions.pop(exception_id)
        del self._open[exception_id]
        self._publish_open_exceptions()
        self._waiting_for = ""
        event = f"{decision.action} of {step} by {decision.operator}" + (
            f": {decision.note}" if decision.note else ""
        )
        if decision.action is not ExceptionAction.ABORT:
            self._enter(resume_stage, event)
        else:
            self._record(event)
        await self._ledger(
            RESOLVE_EXCEPTION_RECORD,
            ResolveExceptionInput(
                contract_id=self._c.contract_id,
                exception_id=exception_id,
                action=decision.action.value,
                operator=decision.operator,
                note=decision.note,
                at=workflow.now(),
            ),
            None,
        )
        return decision.action

    async def _ledger(self, name: str, arg: StepInput, result_type: type[R] | None) -> Any:
        """A write to c2c's own ledger: retried until it succeeds, never an exception."""
        return await self._execute(
            name, arg, result_type, start_to_close_timeout=STEP_TIMEOUT, retry_policy=LEDGER_RETRY
        )

    async def _execute(
        self, name: str, arg: StepInput, result_type: type[R] | None, **options: Any
    ) -> Any:
        """Run an activity that also writes the audit entries not yet written.

        The entries stay pending until the activity succeeds, so a failed step loses none.
        """
        arg.audit = list(self._pending_audit)
        result = await workflow.execute_activity(name, arg, result_type=result_type, **options)
        del self._pending_audit[: len(arg.audit)]
        return result

    async def _flush_audit(self) -> None:
        if self._pending_audit:
            await self._ledger(RECORD_AUDIT, StepInput(contract_id=self._c.contract_id), None)

    # ------------------------------------------------------------------ stage and history

    def _enter(self, stage: Stage, event: str) -> None:
        self._stage = stage
        workflow.upsert_search_attributes([SA_STAGE.value_set(stage.value)])
        self._record(event)

    def _record(self, event: str) -> None:
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
            event, extra={"contract_id": self._c.contract_id, "stage": self._stage.value}
        )

    def _publish_open_exceptions(self) -> None:
        workflow.upsert_search_attributes([SA_OPEN_EXCEPTIONS.value_set(len(self._open))])

    def _status(self) -> ContractStatus:
        c = self._c
        return ContractStatus(
            contract_id=c.contract_id,
            stage=self._stage,
            billing_model=c.billing_model,
            currency=c.currency,
            refs=dict(self._refs),
            invoices=list(self._invoices),
            balance_due=round_money(self._balance_due(), c.currency),
            unapplied_cash=round_money(self._unapplied_cash, c.currency),
            open_exceptions=list(self._open.values()),
            history=list(self._history),
            closed_periods=list(self._closed_periods),
            waiting_for=self._waiting_for,
        )

    # ------------------------------------------------------------------ messages

    @workflow.query(name=QUERY_STATUS)
    def status(self) -> ContractStatus:
        return self._status()

    @workflow.signal(name=SIGNAL_CLOSE_PERIOD)
    def close_period(self, request: ClosePeriod) -> None:
        self._inbox.append(request)

    @workflow.signal(name=SIGNAL_PAYMENT_RECEIVED)
    def payment_received(self, payment: PaymentReceived) -> None:
        self._inbox.append(payment)

    @workflow.signal(name=SIGNAL_MILESTONE_COMPLETED)
    def milestone_completed(self, milestone: MilestoneCompleted) -> None:
        self._inbox.append(milestone)

    @workflow.signal(name=SIGNAL_TERMINATE_CONTRACT)
    def terminate_contract(self, request: TerminateContract) -> None:
        if self._terminate is None:
            self._terminate = request
            self._record(
                f"termination requested, effective {request.effective_date}: {request.reason}; "
                f"billing ends {self._end_date}"
            )

    @workflow.update(name=UPDATE_RESOLVE_EXCEPTION)
    async def resolve_exception(self, decision: ResolveException) -> ContractStatus:
        self._decisions[decision.exception_id] = decision
        await workflow.wait_condition(lambda: decision.exception_id not in self._open)
        return self._status()

    @resolve_exception.validator
    def _validate_resolution(self, decision: ResolveException) -> None:
        # Runs before the update enters history: a wrong id or an unsafe skip is refused
        # without a trace in the contract's history.
        exception = self._open.get(decision.exception_id)
        if exception is None:
            raise ValueError(f"exception {decision.exception_id} is not open on this contract")
        if decision.exception_id in self._decisions:
            raise ValueError(f"exception {decision.exception_id} is already being resolved")
        if decision.action is ExceptionAction.SKIP and exception.step not in SKIPPABLE_STEPS:
            raise ValueError(
                f"{exception.step} cannot be skipped: later steps need the record it creates; "
                "fix the data in the system of record and retry, or abort"
            )
