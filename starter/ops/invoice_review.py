"""Draft invoices as operators review them, shared by the API, the CLI and the dashboard.

The ledger lists the drafts (each with its preview: lines, tax, totals, purchase order and
bill-to) and knows which contract each belongs to; the review itself goes to the contract's
workflow (the ``review_invoice`` update), which decides it in its turn: an approval numbers and
issues the invoice, a rejection opens an exception in the finance queue.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from temporalio.client import Client

from domain.models import ContractStatus, ReviewInvoice
from ledger import Ledger
from starter.api.contracts import review_invoice

DraftStatus = Literal["draft", "approved", "rejected"]


class DraftItem(BaseModel):
    """A draft invoice as the review list shows it."""

    model_config = ConfigDict(from_attributes=True)

    invoice_id: str
    contract_id: str
    reference: str
    legal_entity: str
    currency: str
    period: str | None = None
    milestone_id: str | None = None
    lines: list[dict[str, Any]]
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    po_number: str | None = None
    bill_to: dict[str, Any] | None = None
    status: DraftStatus
    drafted_at: datetime
    reviewed_at: datetime | None = None
    reviewed_by: str | None = None
    reason: str | None = None
    #: The ERP invoice an approved draft became.
    issued_invoice_id: str | None = None


def _item(row: Any) -> DraftItem:
    return DraftItem.model_validate(
        {
            **row.model_dump(),
            "invoice_id": row.draft_id,
            "issued_invoice_id": row.invoice_id,
        }
    )


class DraftNotFound(LookupError):
    """No draft invoice has the id given."""


class DraftNotWaiting(RuntimeError):
    """The draft was already reviewed."""

    def __init__(self, item: DraftItem) -> None:
        super().__init__(f"draft {item.invoice_id} is already {item.status}")
        self.item = item


async def list_drafts(
    ledger: Ledger,
    *,
    status: DraftStatus | None = "draft",
    legal_entity: str | None = None,
    contract_id: str | None = None,
) -> list[DraftItem]:
    """Drafts matching every filter given (waiting for review by default), oldest first."""
    rows = await asyncio.to_thread(
        ledger.list_drafts, status=status, legal_entity=legal_entity, contract_id=contract_id
    )
    return [_item(row) for row in rows]


async def get_draft(ledger: Ledger, invoice_id: str) -> DraftItem:
    """One draft.

    Raises:
        DraftNotFound: the ledger has no draft with that id.
    """
    row = await asyncio.to_thread(ledger.get_draft, invoice_id)
    # A consolidated invoice's section is kept beside the drafts, and is none.
    if row is None or row.status not in ("draft", "approved", "rejected"):
        raise DraftNotFound(f"no draft invoice {invoice_id!r}")
    return _item(row)


async def review(
    client: Client,
    item: DraftItem,
    decision: Literal["approve", "reject"],
    *,
    operator: str,
    reason: str | None = None,
) -> ContractStatus:
    """Send an operator's review of a draft to its contract's workflow.

    Returns:
        The contract's status once the workflow took the review.

    Raises:
        DraftNotWaiting: it was already reviewed.
        pydantic.ValidationError: a rejection without a reason.
        temporalio.client.WorkflowUpdateFailedError: the workflow refused the review.
    """
    if item.status != "draft":
        raise DraftNotWaiting(item)
    message = ReviewInvoice(
        invoice_id=item.invoice_id, decision=decision, operator=operator, reason=reason
    )
    return await review_invoice(client, item.contract_id, message)
