"""Customer billing workflows (consolidated invoicing) as the API, the CLI and the dashboard
list them: one row per ``CustomerBilling`` workflow from Temporal's visibility, filled from
its ``status`` query.

The workflows carry no search attributes (they would need registering on every server); the
key they bill for is in their id, ``customer-billing-{legal_entity}-{customer}-{currency}``
(``-po-{digest}`` in ``customer_po`` mode), so the filters are applied to the ids before any
workflow is queried, and a scoped identity never queries another entity's.
"""

from __future__ import annotations

import asyncio
import re
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field
from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus

from c2c.logs import get_logger
from domain.consolidation import CUSTOMER_BILLING_PREFIX, CustomerBillingStatus
from domain.money import Money
from domain.names import CUSTOMER_BILLING_WORKFLOW_TYPE
from starter.api.contracts import customer_billing_status

log = get_logger("c2c.api")

#: What the list filters on: the workflows' execution status, or ``all``.
RunStatus = Literal["running", "completed", "failed", "canceled", "terminated", "timed_out", "all"]
#: Each status as Temporal's visibility names it.
_VISIBILITY_STATUS = {
    "running": "Running",
    "completed": "Completed",
    "failed": "Failed",
    "canceled": "Canceled",
    "terminated": "Terminated",
    "timed_out": "TimedOut",
}
#: A legal entity code and a CRM account id, as a contract's approval allows them.
LEGAL_ENTITY_PATTERN = r"^[A-Z0-9]{2,10}$"
CUSTOMER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$"
#: A customer billing workflow's id, read back into its key.
_WORKFLOW_ID = re.compile(
    re.escape(CUSTOMER_BILLING_PREFIX)
    + r"(?P<legal_entity>[A-Z0-9]{2,10})-(?P<customer>.+)-(?P<currency>[A-Z]{3})"
    + r"(?:-po-[0-9a-f]{12})?"
)
#: How many workflows are queried at once, and how long each may take to answer.
QUERY_CONCURRENCY = 20
QUERY_TIMEOUT = timedelta(seconds=10)


class CustomerBillingFilters(BaseModel):
    """What the list is narrowed to; each value ends up compared with workflow ids."""

    status: RunStatus = "running"
    legal_entity: str | None = Field(default=None, pattern=LEGAL_ENTITY_PATTERN)
    customer: str | None = Field(default=None, pattern=CUSTOMER_PATTERN)


class CustomerBillingRow(BaseModel):
    """One customer billing workflow: its key, and what its ``status`` query says of it
    (blank when the workflow could not answer, with the reason in ``unreadable``)."""

    workflow_id: str
    status: str
    started_at: datetime | None = None
    legal_entity: str
    customer: str
    currency: str
    po_number: str | None = None
    mode: str | None = None
    members: int | None = None
    #: Sections received that are not on an invoice yet.
    sections_waiting: int | None = None
    invoices: int | None = None
    #: What is not paid yet of the consolidated invoices' sections.
    open_balance: Money | None = None
    last_invoice_number: str | None = None
    last_invoice_date: date | None = None
    unreadable: str | None = None


class CustomerBillingList(BaseModel):
    """Customer billing workflows, by id."""

    items: list[CustomerBillingRow]


def key_of(workflow_id: str) -> tuple[str, str, str] | None:
    """The legal entity, customer and currency a customer billing workflow's id names
    (``None`` for an id that is not one)."""
    found = _WORKFLOW_ID.fullmatch(workflow_id)
    if found is None:
        return None
    return found["legal_entity"], found["customer"], found["currency"]


def entity_of(workflow_id: str) -> str | None:
    """The legal entity of a customer billing workflow, from its id."""
    key = key_of(workflow_id)
    return key[0] if key else None


def visibility_query(status: RunStatus) -> str:
    """The visibility query for customer billing workflows in ``status``."""
    query = f"WorkflowType = '{CUSTOMER_BILLING_WORKFLOW_TYPE}'"
    if status != "all":
        query += f" AND ExecutionStatus = '{_VISIBILITY_STATUS[status]}'"
    return query


def row_of(wf: WorkflowExecution, status: CustomerBillingStatus | None) -> CustomerBillingRow:
    """A list row from a run's visibility record and, when it answered, its status."""
    entity, customer, currency = key_of(wf.id) or ("", "", "")
    row = CustomerBillingRow(
        workflow_id=wf.id,
        status=(wf.status or WorkflowExecutionStatus.RUNNING).name.lower(),
        started_at=wf.start_time,
        legal_entity=entity,
        customer=customer,
        currency=currency,
    )
    if status is None:
        return row
    last = max(status.invoices, key=lambda i: (i.invoice_date, i.period, i.batch), default=None)
    return row.model_copy(
        update={
            "legal_entity": status.key.legal_entity,
            "customer": status.key.crm_account_id,
            "currency": status.key.currency,
            "po_number": status.key.po_number,
            "mode": status.mode,
            "members": len(status.members),
            "sections_waiting": sum(len(s) for s in status.waiting.values()),
            "invoices": len(status.invoices),
            "open_balance": sum((i.balance for i in status.invoices), Decimal(0)),
            "last_invoice_number": last.number if last else None,
            "last_invoice_date": last.invoice_date if last else None,
        }
    )


async def list_customer_billing(
    client: Client,
    filters: CustomerBillingFilters,
    *,
    entities: frozenset[str] | None = None,
    limit: int = 1000,
) -> list[CustomerBillingRow]:
    """The customer billing workflows that match ``filters`` (only of ``entities`` when they
    are given), by id; each workflow's latest run once."""
    latest: dict[str, WorkflowExecution] = {}
    async for wf in client.list_workflows(visibility_query(filters.status), limit=limit):
        key = key_of(wf.id)
        if key is None:
            continue
        entity, customer, _ = key
        if entities is not None and entity not in entities:
            continue
        if filters.legal_entity and entity != filters.legal_entity:
            continue
        if filters.customer and customer != filters.customer:
            continue
        known = latest.get(wf.id)
        if known is None or wf.start_time > known.start_time:
            latest[wf.id] = wf
    semaphore = asyncio.Semaphore(QUERY_CONCURRENCY)

    async def read(wf: WorkflowExecution) -> CustomerBillingRow:
        async with semaphore:
            try:
                status = await customer_billing_status(
                    client, wf.id, run_id=wf.run_id, rpc_timeout=QUERY_TIMEOUT
                )
            except Exception as exc:  # listed still, without what only the query knows
                log.warning("customer billing status unreadable", workflow_id=wf.id, error=str(exc))
                return row_of(wf, None).model_copy(update={"unreadable": str(exc) or "no answer"})
        return row_of(wf, status)

    return list(await asyncio.gather(*(read(latest[i]) for i in sorted(latest))))
