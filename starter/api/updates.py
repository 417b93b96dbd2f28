"""Workflow updates as their callers see them: a refused update is an answer, not a crash."""

from __future__ import annotations

from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from domain.models import Amendment, AmendmentResult
from starter.api.contracts import apply_amendment


def rejection_reason(exc: WorkflowUpdateFailedError) -> str:
    """Why the workflow refused an update, in the words of its validator or handler."""
    cause = exc.cause
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause) or "the workflow rejected the request"


async def amend(client: Client, contract_id: str, amendment: Amendment) -> AmendmentResult:
    """Apply an amendment; one the workflow's validator refuses comes back ``rejected``.

    Raises:
        temporalio.service.RPCError: the contract does not exist (``NOT_FOUND``) or Temporal
            cannot be reached.
    """
    try:
        return await apply_amendment(client, contract_id, amendment)
    except WorkflowUpdateFailedError as exc:
        # Refused before it entered the contract's history: nothing changed.
        return AmendmentResult(
            amendment_id=amendment.amendment_id, status="rejected", reason=rejection_reason(exc)
        )
