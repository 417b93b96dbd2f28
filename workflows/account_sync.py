"""``AccountSync``: one workflow per CRM account that applies its changes to the ERP customers.

The API signals it (signal-with-start, id ``account-<crm_account_id>``) with each change the
CRM reported, in the order the event queue delivers them. The workflow applies them one at a
time, in that order, each once by its event id, through the ``sync_erp_customers`` activity.
A change the ERP refuses opens an exception in the ``finance`` queue on every running contract
of the account and waits for an operator's decision (retry, skip, abort) before the account's
later changes are applied: they must not overtake it. The workflow ends when the account has
been quiet for a while; the next change starts it again.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

from domain.account_sync import (
    ACCOUNT_SYNC_WORKFLOW,
    OPEN_ACCOUNT_EXCEPTION,
    RESOLVE_ACCOUNT_EXCEPTION,
    SIGNAL_ACCOUNT_CHANGED,
    SYNC_ERP_CUSTOMERS,
    UPDATE_RESOLVE_ACCOUNT_EXCEPTION,
    AccountChange,
    AccountExceptionDecision,
    AccountExceptionInput,
    AccountSyncInput,
    SyncResult,
)
from domain.models import ResolveException
from domain.names import ExceptionAction

#: How long the workflow waits for another change before it ends.
IDLE = timedelta(hours=1)
#: Event ids remembered (and carried over a continue-as-new) to refuse a change seen before.
REMEMBERED = 1000
#: Changes applied by one run before it continues as new, to keep its history small.
CHANGES_PER_RUN = 200
#: Transient failures of a system are retried until it answers; a refusal is a result.
STEP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)
)
STEP_TIMEOUT = timedelta(minutes=2)


@workflow.defn(name=ACCOUNT_SYNC_WORKFLOW)
class AccountSync:
    @workflow.init
    def __init__(self, start: AccountSyncInput) -> None:
        self._account = start.crm_account_id
        self._seen = list(start.seen)
        self._pending = list(start.pending)
        #: Exception ids of the refused change waiting for a decision.
        self._open: list[str] = []
        self._decision: ResolveException | None = None

    @workflow.run
    async def run(self, start: AccountSyncInput) -> int:
        applied = 0
        while True:
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: bool(self._pending), timeout=IDLE)
            if not self._pending:
                break
            change = self._pending.pop(0)
            if change.event_id in self._seen:
                continue
            await self._apply(change)
            self._seen = [*self._seen, change.event_id][-REMEMBERED:]
            applied += 1
            if applied >= CHANGES_PER_RUN or workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    AccountSyncInput(
                        crm_account_id=self._account, seen=self._seen, pending=self._pending
                    )
                )
        await workflow.wait_condition(workflow.all_handlers_finished)
        return applied

    @workflow.signal(name=SIGNAL_ACCOUNT_CHANGED)
    def account_changed(self, change: AccountChange) -> None:
        """Queue a change; one seen before (applied or waiting) is ignored."""
        if change.event_id in self._seen or any(
            waiting.event_id == change.event_id for waiting in self._pending
        ):
            return
        self._pending.append(change)

    @workflow.update(name=UPDATE_RESOLVE_ACCOUNT_EXCEPTION)
    def resolve_exception(self, decision: ResolveException) -> str:
        """An operator's decision on the refused change; answers the exception's id."""
        self._decision = decision
        return decision.exception_id

    @resolve_exception.validator
    def _known_exception(self, decision: ResolveException) -> None:
        if decision.exception_id not in self._open:
            raise ValueError(f"exception {decision.exception_id} is not open on this account")

    async def _apply(self, change: AccountChange) -> None:
        while True:
            result: SyncResult = await workflow.execute_activity(
                SYNC_ERP_CUSTOMERS,
                change,
                result_type=SyncResult,
                start_to_close_timeout=STEP_TIMEOUT,
                retry_policy=STEP_RETRY,
            )
            if result.refused is None or not result.contract_ids:
                return
            self._open = await workflow.execute_activity(
                OPEN_ACCOUNT_EXCEPTION,
                AccountExceptionInput(
                    crm_account_id=self._account,
                    event_id=change.event_id,
                    code=result.refused_code or "customer_update_refused",
                    message=result.refused,
                    contract_ids=result.contract_ids,
                    opened_at=workflow.now(),
                ),
                result_type=list[str],
                start_to_close_timeout=STEP_TIMEOUT,
                retry_policy=STEP_RETRY,
            )
            await workflow.wait_condition(lambda: self._decision is not None)
            decision = self._decision
            assert decision is not None
            self._decision = None
            await workflow.execute_activity(
                RESOLVE_ACCOUNT_EXCEPTION,
                AccountExceptionDecision(
                    exception_ids=self._open,
                    action=decision.action.value,
                    operator=decision.operator,
                    note=decision.note,
                    at=workflow.now(),
                ),
                start_to_close_timeout=STEP_TIMEOUT,
                retry_policy=STEP_RETRY,
            )
            self._open = []
            if decision.action is not ExceptionAction.RETRY:
                return
