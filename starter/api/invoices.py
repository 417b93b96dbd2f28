"""``/api/invoices``: draft invoices waiting for review, and the review itself.

``GET /api/invoices?status=draft`` (and ``GET /api/invoices/drafts``) lists the drafts from the
ledger (viewer); ``POST /api/invoices/{invoice_id}/approve`` and ``/reject`` (operator) send the
review to the contract's workflow, which decides it in its turn. The review records the
token's name, not a name the client sends.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field
from temporalio.client import WorkflowUpdateFailedError

from domain.models import ContractStatus
from starter.api import scope
from starter.api.auth import Identity, OperatorBody, authorize
from starter.api.context import ApiContext, api_context
from starter.api.errors import ApiError, error_responses, known_query_only
from starter.api.middleware import bind_contract
from starter.api.updates import rejection_reason
from starter.ops import invoice_review
from starter.ops.invoice_review import DraftItem, DraftNotFound, DraftNotWaiting

router = APIRouter(
    prefix="/api",
    dependencies=[Depends(authorize), Depends(known_query_only)],
    responses=error_responses(400, 401, 403, 413, 422, 500),
)

InvoiceId = Path(min_length=1, max_length=120, description="the draft invoice's id")


class DraftList(BaseModel):
    """Draft invoices, oldest first."""

    items: list[DraftItem]


class Approval(OperatorBody):
    """An operator's approval of a draft."""


class Rejection(Approval):
    """An operator's rejection of a draft, with the reason finance reads."""

    reason: str = Field(min_length=1, max_length=2000, pattern=r"\S")


async def _drafts(
    context: ApiContext,
    identity: Identity,
    status: invoice_review.DraftStatus,
    legal_entity: str | None,
    contract_id: str | None,
) -> DraftList:
    ledger = await context.ledger()
    items = await invoice_review.list_drafts(
        ledger, status=status, legal_entity=legal_entity, contract_id=contract_id
    )
    visible = await scope.contracts_of(ledger, identity)
    if visible is not None:
        items = [i for i in items if i.contract_id in visible]
    return DraftList(items=items)


@router.get("/invoices", response_model=DraftList, tags=["invoices"])
async def list_invoices(
    status: Literal["draft", "approved", "rejected"] = Query(
        default="draft", description="draft: waiting for review; approved or rejected: reviewed"
    ),
    legal_entity: str | None = Query(default=None, min_length=1, max_length=10),
    contract_id: str | None = Query(default=None, min_length=1, max_length=64),
    identity: Identity = Depends(authorize),
    context: ApiContext = Depends(api_context),
) -> DraftList:
    """Draft invoices by review status, with their preview (lines, tax, totals, PO, bill-to);
    issued invoices are in each contract's status. Only the token's legal entities' for a
    scoped token."""
    return await _drafts(context, identity, status, legal_entity, contract_id)


@router.get("/invoices/drafts", response_model=DraftList, tags=["invoices"])
async def list_drafts(
    legal_entity: str | None = Query(default=None, min_length=1, max_length=10),
    contract_id: str | None = Query(default=None, min_length=1, max_length=64),
    identity: Identity = Depends(authorize),
    context: ApiContext = Depends(api_context),
) -> DraftList:
    """Draft invoices waiting for review (as ``/api/invoices?status=draft``)."""
    return await _drafts(context, identity, "draft", legal_entity, contract_id)


async def _review(
    context: ApiContext,
    identity: Identity,
    invoice_id: str,
    decision: Literal["approve", "reject"],
    given: str | None,
    reason: str | None = None,
) -> ContractStatus:
    operator = scope.decided_by(identity, given, channel="api")
    ledger = await context.ledger()
    try:
        item = await invoice_review.get_draft(ledger, invoice_id)
        if not await scope.may_see(context, identity, item.contract_id):
            raise DraftNotFound(invoice_id)
        bind_contract(item.contract_id)
        return await invoice_review.review(
            await context.temporal(), item, decision, operator=operator, reason=reason
        )
    except DraftNotFound:
        raise ApiError(404, "draft_not_found", f"no draft invoice {invoice_id}") from None
    except DraftNotWaiting as exc:
        raise ApiError(409, "draft_not_waiting", str(exc)) from None
    except WorkflowUpdateFailedError as exc:
        raise ApiError(409, "review_refused", rejection_reason(exc)) from None


REVIEW = error_responses(
    502, 503, s404="unknown draft", s409="already reviewed, or the workflow refused"
)


@router.post(
    "/invoices/{invoice_id}/approve",
    response_model=ContractStatus,
    responses=REVIEW,
    tags=["invoices"],
)
async def approve_invoice(
    body: Approval | None = None,
    invoice_id: str = InvoiceId,
    identity: Identity = Depends(authorize),
    context: ApiContext = Depends(api_context),
) -> ContractStatus:
    """Approve a draft: the contract numbers and issues the invoice, whose due date runs from
    today. Answers the contract's status once the workflow took the approval."""
    body = body or Approval()
    return await _review(context, identity, invoice_id, "approve", body.operator)


@router.post(
    "/invoices/{invoice_id}/reject",
    response_model=ContractStatus,
    responses=REVIEW,
    tags=["invoices"],
)
async def reject_invoice(
    body: Rejection,
    invoice_id: str = InvoiceId,
    identity: Identity = Depends(authorize),
    context: ApiContext = Depends(api_context),
) -> ContractStatus:
    """Reject a draft with the reason: an exception opens in the finance queue (retry drafts
    the invoice again once the cause is fixed, skip bills nothing for it, abort cancels)."""
    return await _review(context, identity, invoice_id, "reject", body.operator, body.reason)
