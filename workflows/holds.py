"""Holds and exceptions: how the contract waits for an operator, and the exception queue.

A step that fails for good, or work above the not-to-exceed cap, holds the contract: an
exception opens in the queue that owns the fix (a write to c2c's ledger, under an id a reset
derives again), the stage becomes ``on_hold``, and the contract waits for the operator to
retry, skip or abort, escalating the exception when its queue's SLA runs out. While it waits,
operator decisions, amendments and terminations are still decided in their turn. Exceptions
that only report something (an unreadable message, cash c2c cannot apply) hold nothing and
close on any decision.
"""

from __future__ import annotations

import hashlib
from contextlib import suppress
from datetime import datetime
from typing import TYPE_CHECKING

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.models import ResolveException, ReviewInvoice
    from domain.names import ExceptionAction, Stage
    from domain.steps import (
        APPLY_CASH,
        APPLY_PAYMENT,
        ARCHIVE_SIGNED_DOCUMENT,
        BILL_PERIOD,
        CLOSE_CONTRACT,
        CLOSE_TIME_ENTRY,
        ESCALATE_EXCEPTION,
        ISSUE_CREDIT_NOTE,
        OPEN_EXCEPTION,
        PROPAGATE_AMENDMENT,
        RECORD_WRITE_OFF,
        RENDER_INVOICE_DOCUMENTS,
        RESOLVE_EXCEPTION_RECORD,
        SEND_DUNNING_REMINDER,
        VALIDATE_CONTRACT,
        EscalateExceptionInput,
        ExceptionOpened,
        OpenExceptionInput,
        ResolveExceptionInput,
    )
    from workflows.billing import CAP_STEP, REJECTED_STEP, WORK_AFTER_END_STEP
    from workflows.collections import CASH_STEP, DUNNING_STEP
    from workflows.execution import StepExecution
    from workflows.state import Inbound

#: The step of an exception about a message that could not be read.
INBOX_STEP = "inbox"

#: Exceptions that report something and hold no step: a decision (skip or retry) closes them.
NOTICE_STEPS = frozenset({INBOX_STEP, CASH_STEP, WORK_AFTER_END_STEP})

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
        RENDER_INVOICE_DOCUMENTS,
        RECORD_WRITE_OFF,
        CLOSE_TIME_ENTRY,
        CAP_STEP,
        REJECTED_STEP,
        WORK_AFTER_END_STEP,
        DUNNING_STEP,
        INBOX_STEP,
        CASH_STEP,
    }
)


class Refused(Exception):
    """A message decided in its turn and refused; the reason is the message."""


class Holds(StepExecution):
    """Holds the contract for an operator's decision; opens, escalates and closes exceptions."""

    if TYPE_CHECKING:

        async def _keep_arrival_order(self) -> None: ...

        def _next_on_hold(self) -> int | None: ...

        async def _handle(self, inbound: Inbound) -> None: ...

        def _settle(self) -> None: ...

    async def _await_decision_in_turn(self, exception_id: str) -> None:
        """Wait for the operator's decision on a hold, deciding in arrival order the messages
        that a hold does not stop."""
        while exception_id not in self.s.decisions:
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
                    lambda: exception_id in self.s.decisions or self._next_on_hold() is not None,
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
        self.s.decisions[decision.exception_id] = decision

    def _resolution_refusal(self, decision: ResolveException) -> str | None:
        """Why an operator's decision cannot be taken now, or ``None``."""
        exception = self.s.open.get(decision.exception_id)
        if exception is None:
            return f"exception {decision.exception_id} is not open on this contract"
        if decision.exception_id in self.s.decisions:
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
        for exception_id, exception in list(self.s.open.items()):
            if exception.step in NOTICE_STEPS and exception_id in self.s.decisions:
                await self.close_exception(exception_id)

    async def hold(
        self,
        step: str,
        system: str,
        code: str,
        message: str,
        *,
        subject: str = "",
        draft_id: str = "",
    ) -> ExceptionAction:
        """Put the contract on hold with an exception and wait for the operator's action
        (``hold_for_decision``)."""
        decision = await self.hold_for_decision(
            step, system, code, message, subject=subject, draft_id=draft_id
        )
        return decision.action

    async def hold_for_decision(
        self,
        step: str,
        system: str,
        code: str,
        message: str,
        *,
        subject: str = "",
        draft_id: str = "",
    ) -> ResolveException:
        """Put the contract on hold with an exception and wait for the operator's decision.

        ``subject`` names what failed (an invoice's reference, an amendment): with the step it
        keys the exception's id, so that a reset opens the same exception again. A hold for a
        ``draft_id`` waits for the draft's review (or a decision on the exception itself).
        """
        if self.s.stage is not Stage.ON_HOLD:
            self.s.resume_stage = self.s.stage
        if self.s.ordered:
            exception_id = await self.open_exception(
                step, system, code, message, blocking=True, subject=subject
            )
            if draft_id:
                self.s.billing.draft_holds[draft_id] = exception_id
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
        decision = self.s.decisions[exception_id]
        held = self.s.billing.draft_holds.pop(draft_id, None)
        retried = decision.action is ExceptionAction.RETRY
        if held and retried and draft_id not in self.s.billing.reviews:
            # Retried from the exception queue rather than reviewed: an approval.
            self.s.billing.reviews[draft_id] = ReviewInvoice(
                invoice_id=draft_id, decision="approve", operator=decision.operator
            )
        self._wait_for("")
        event = f"{decision.action} of {step} by {decision.operator}" + (
            f": {decision.note}" if decision.note else ""
        )
        # The stage moves on first, so the operator's answer already shows where it went.
        if decision.action is not ExceptionAction.ABORT and self.s.blocking == {exception_id}:
            self._enter(self.s.resume_stage, event)
        else:
            self.record(event)
        await self.close_exception(exception_id)
        return decision

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
                stage=self.s.resume_stage if self.s.stage is Stage.ON_HOLD else self.s.stage,
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
        self.s.open[exception_id] = opened.exception
        if blocking:
            self.s.blocking.add(exception_id)
        self._publish_open_exceptions()
        return exception_id

    def _exception_id(self, step: str, subject: str) -> str:
        """The id of the next exception on ``step`` for ``subject``.

        Derived from the workflow id, the step, the subject and how many exceptions were
        opened on them before: a reset, which decides everything again, opens the same
        exception under the same id, and an operator's decision delivered again finds it.
        """
        if not self.s.ordered:
            return f"EXC-{workflow.uuid4().hex[:12].upper()}"
        key = f"{step}:{subject}"
        count = self.s.exception_counts[key] = self.s.exception_counts.get(key, 0) + 1
        seed = f"{workflow.info().workflow_id}:{key}:{count}"
        return f"EXC-{hashlib.sha256(seed.encode()).hexdigest()[:12].upper()}"

    async def _await_decision(self, exception_id: str) -> None:
        """Wait for the operator; escalate the exception if its queue's SLA runs out first."""
        while exception_id not in self.s.decisions:
            if self._sla_due():
                await self._escalate_due()
                continue
            due = self._next_sla()
            with suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: exception_id in self.s.decisions,
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
            for e in self.s.open.values()
            if e.sla_due_at is not None and e.escalated_at is None and e.sla_due_at <= now
        ]

    def _next_sla(self) -> datetime | None:
        dues = [
            e.sla_due_at
            for e in self.s.open.values()
            if e.sla_due_at is not None and e.escalated_at is None
        ]
        return min(dues) if dues else None

    async def _escalate_due(self) -> None:
        for exception_id in self._sla_due():
            now = workflow.now()
            self.s.open[exception_id] = self.s.open[exception_id].model_copy(
                update={"escalated_at": now}
            )
            e = self.s.open[exception_id]
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

    async def close_exception(
        self, exception_id: str, *, default: ResolveException | None = None
    ) -> ResolveException:
        """Take the operator's decision (or ``default``) and close the exception."""
        decision = self.s.decisions.pop(exception_id, None) or default
        assert decision is not None
        self.s.open.pop(exception_id, None)
        self.s.blocking.discard(exception_id)
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
        if decision.action is ExceptionAction.ABORT and self.s.abort_reason is None:
            self.s.abort_reason = f"{exception_id} aborted by {decision.operator}"
        return decision
