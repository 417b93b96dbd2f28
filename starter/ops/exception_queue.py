"""The exception queue as operators use it, shared by the API and the CLI.

The ledger lists exceptions and knows which contract each belongs to; the decision itself
goes to the contract's workflow (the ``resolve_exception`` update), which acts on it and
records the outcome; a customer master change the ERP refused goes to its account's
``AccountSync`` workflow instead.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from pydantic import BaseModel, ConfigDict
from temporalio.client import Client

from domain.account_sync import ACCOUNT_WORKFLOW_PREFIX, UPDATE_RESOLVE_ACCOUNT_EXCEPTION
from domain.models import ContractStatus, ResolveException
from domain.names import ExceptionAction
from domain.reconcile import RECONCILE_STEP
from domain.steps import LATE_MESSAGE_STEP
from ledger import ExceptionStatus, Ledger
from starter.api.contracts import get_status, resolve_exception


class ExceptionItem(BaseModel):
    """An exception as the queue shows it."""

    model_config = ConfigDict(from_attributes=True)

    exception_id: str
    contract_id: str
    workflow_id: str
    stage: str
    system: str
    code: str
    message: str
    queue: str
    step: str = ""
    retryable: bool = True
    status: str
    opened_at: datetime
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    resolution_note: str | None = None
    escalated_at: datetime | None = None


class ExceptionNotFound(LookupError):
    """No exception has the id given."""


class ExceptionNotOpen(RuntimeError):
    """The exception was already resolved."""

    def __init__(self, item: ExceptionItem) -> None:
        super().__init__(f"exception {item.exception_id} is already {item.status}")
        self.item = item


async def list_exceptions(
    ledger: Ledger,
    *,
    status: ExceptionStatus | None = None,
    queue: str | None = None,
    contract_id: str | None = None,
) -> list[ExceptionItem]:
    """Exceptions matching every filter given, oldest first."""
    records = await asyncio.to_thread(
        ledger.list_exceptions, status=status, queue=queue, contract_id=contract_id
    )
    return [ExceptionItem.model_validate(r) for r in records]


async def get_exception(ledger: Ledger, exception_id: str) -> ExceptionItem:
    """One exception.

    Raises:
        ExceptionNotFound: the ledger has no exception with that id.
    """
    record = await asyncio.to_thread(ledger.get_exception, exception_id)
    if record is None:
        raise ExceptionNotFound(f"no exception {exception_id!r}")
    return ExceptionItem.model_validate(record)


async def resolve(
    client: Client,
    item: ExceptionItem,
    action: ExceptionAction,
    *,
    operator: str,
    note: str = "",
    ledger: Ledger | None = None,
) -> ContractStatus:
    """Send an operator's decision on an open exception to its contract's workflow; one that
    reconciliation opened (no workflow waits on it) is decided in ``ledger``.

    Returns:
        The contract's status after the workflow took the decision.

    Raises:
        ExceptionNotOpen: it was already resolved.
        temporalio.client.WorkflowUpdateFailedError: the workflow refused the decision.
    """
    if item.status != ExceptionStatus.OPEN:
        raise ExceptionNotOpen(item)
    if item.step in (RECONCILE_STEP, LATE_MESSAGE_STEP) and ledger is not None:
        # A difference reconciliation found, or a message that came after its contract
        # ended: no workflow waits on it. The operator fixed it in the ERP or in c2c (retry:
        # the next run checks again; skip or abort: accepted), and the decision is the
        # ledger's to record.
        await asyncio.to_thread(
            ledger.resolve_exception,
            item.exception_id,
            ExceptionStatus.after(action),
            operator,
            note,
        )
        return await get_status(client, item.contract_id)
    decision = ResolveException(
        exception_id=item.exception_id, action=action, operator=operator, note=note
    )
    if item.workflow_id.startswith(ACCOUNT_WORKFLOW_PREFIX):
        # A customer master change the ERP refused: its account's sync workflow decides.
        await client.get_workflow_handle(item.workflow_id).execute_update(
            UPDATE_RESOLVE_ACCOUNT_EXCEPTION, decision
        )
        return await get_status(client, item.contract_id)
    return await resolve_exception(client, item.contract_id, decision)
