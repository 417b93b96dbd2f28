"""Step execution: how the contract runs a business step or a write to its own ledger.

A business step is an activity on its system's task queue, with the configured timeout and
retry budget; when it fails for good the contract holds (``workflows.holds``) until an operator
retries, skips or aborts it. A write to c2c's ledger is a local activity first, retried as an
ordinary one if the ledger keeps refusing it, and never becomes an exception. Every activity
carries the audit entries not yet written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, FailureError

with workflow.unsafe.imports_passed_through():
    from domain.errors import BUSINESS_REJECTION
    from domain.names import ExceptionAction, system_task_queue
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
        ISSUE_CREDIT_NOTE,
        PROPAGATE_AMENDMENT,
        RECORD_AUDIT,
        RENDER_INVOICE_DOCUMENTS,
        SEND_DUNNING_REMINDER,
        STEP_SYSTEM_QUEUE,
        VALIDATE_CONTRACT,
        ContractStep,
        EscalateExceptionInput,
        OpenExceptionInput,
        ResolveExceptionInput,
        StepInput,
    )
    from workflows.policies import (
        BILLING_TIMEOUT,
        LEDGER_RETRY,
        LOCAL_LEDGER_RETRY,
        STEP_RETRY,
        STEP_TIMEOUT,
    )
    from workflows.state import ContractBase

R = TypeVar("R", bound=BaseModel)

#: Marks runs whose writes to c2c's own ledger are local activities: run by the workflow's
#: worker inside the workflow task, recorded as one marker event instead of a task on the
#: queue (three events and a round trip through the server). A run recorded before it keeps
#: replaying them as activities.
PATCH_LOCAL_LEDGER = "ledger-writes-local"

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
    RENDER_INVOICE_DOCUMENTS: "render, archive and link an invoice's documents",
}


class Aborted(Exception):
    """An operator aborted the contract."""


class StepExecution(ContractBase):
    """Runs the contract's steps and ledger writes."""

    if TYPE_CHECKING:

        async def hold(
            self,
            step: str,
            system: str,
            code: str,
            message: str,
            *,
            subject: str = "",
            draft_id: str = "",
        ) -> ExceptionAction: ...

    def _contract_step(self) -> ContractStep:
        return ContractStep(contract_id=self.c.contract_id, contract=self.c, refs=self.s.refs)

    async def step(
        self,
        name: str,
        arg: StepInput,
        result_type: type[R] | None,
        *,
        summary: str | None = None,
        abort_ends_contract: bool = True,
        again: Callable[[], StepInput] | None = None,
    ) -> R | None:
        """Run one business step; on failure hold the contract until an operator decides.

        Returns ``None`` when the operator skipped the step (or aborted, when
        ``abort_ends_contract`` is false: the abort then takes effect in the main loop).
        A retry runs the step with ``again()``'s input, if given: what changed meanwhile.
        """
        timeout = self._step_timeout()
        while True:
            try:
                result: R | None = await self._execute(
                    name,
                    arg,
                    result_type,
                    start_to_close_timeout=BILLING_TIMEOUT if name == BILL_PERIOD else timeout,
                    heartbeat_timeout=timeout if name == BILL_PERIOD else None,
                    retry_policy=self._retry_policy(),
                    summary=summary or STEP_SUMMARIES.get(name, name),
                )
                return result
            except ActivityError as err:
                system, code, message = _failure(name, err)
                action = await self.hold(
                    name, system, code, message, subject=summary or STEP_SUMMARIES.get(name, name)
                )
                if action is ExceptionAction.RETRY:
                    if again is not None:
                        arg = again()
                    continue
                if action is ExceptionAction.SKIP:
                    return None
                if abort_ends_contract:
                    raise Aborted(f"{name} was not completed") from err
                self.s.abort_reason = f"{name} was not completed"
                return None

    def _step_timeout(self) -> timedelta:
        """How long one attempt may take: configuration, once the contract is validated.

        A worker that dies mid-step is noticed after this long, and the step runs again on
        another worker.
        """
        if self.s.validated is None:
            return STEP_TIMEOUT
        return timedelta(seconds=self.s.validated.step_timeout_s)

    def _retry_policy(self) -> RetryPolicy:
        """The transient-failure budget: configuration, known once the contract is validated
        (validation itself runs on the default)."""
        if self.s.validated is None:
            return STEP_RETRY
        return replace(STEP_RETRY, maximum_attempts=self.s.validated.step_max_attempts)

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
        if self.s.ordered:
            # The exception this write opens, escalates or closes is the run's own.
            keep = set(self.s.open)
            if isinstance(arg, OpenExceptionInput | ResolveExceptionInput | EscalateExceptionInput):
                keep.add(arg.exception_id)
            arg.open_exceptions = sorted(keep)
        if self.feature(PATCH_LOCAL_LEDGER):
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
        """The queue a step runs on: its system's where that system's rate or concurrency
        limit applies (as validation recorded the configuration), else the workflows' own,
        where the step can be dispatched eagerly; c2c's own ledger writes on the workflows'."""
        queue = workflow.info().task_queue
        system = STEP_SYSTEM_QUEUE.get(step)
        if system is None:
            return queue
        queued = self.s.validated.queued_systems if self.s.validated is not None else None
        if queued is not None and system.value not in queued:
            return queue
        return system_task_queue(queue, system)

    async def _flush_audit(self) -> None:
        if self._pending_audit:
            await self._ledger(
                RECORD_AUDIT,
                StepInput(contract_id=self.c.contract_id),
                None,
                f"write {len(self._pending_audit)} audit trail entries",
            )


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
