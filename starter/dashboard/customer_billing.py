"""The dashboard's customer billing pages (consolidated invoicing): ``/customer-billing`` lists
the customers' billing workflows (running ones unless the filters say otherwise), and
``/customer-billing/{workflow_id}`` shows one: its members, the sections waiting by period,
its invoices with what is paid of each section, the payments and the history. Both read
Temporal as ``GET /api/customer-billing`` does, and a login limited to some legal entities
sees only theirs (another entity's workflow is answered as one that does not exist).
"""

from __future__ import annotations

from typing import get_args

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from temporalio.service import RPCError, RPCStatusCode

from c2c.logs import get_logger
from domain.consolidation import CUSTOMER_BILLING_PREFIX
from starter.api.context import context_of
from starter.api.contracts import customer_billing_status
from starter.api.customer_billing import (
    CustomerBillingFilters,
    RunStatus,
    entity_of,
    list_customer_billing,
)
from starter.api.fields import problems
from starter.dashboard.pages import (
    DashboardError,
    _temporal,
    check_own_entity,
    render,
    viewer,
)
from starter.dashboard.views import Problem

log = get_logger("c2c.dashboard")
router = APIRouter(include_in_schema=False)

#: The statuses the list's filter offers.
STATUSES = get_args(RunStatus)
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-")


def _filters(request: Request) -> CustomerBillingFilters:
    """The list's filters from the query string; an invalid one is refused by name."""
    params = request.query_params
    values = {
        name: params[name]
        for name in ("status", "legal_entity", "customer")
        if params.get(name, "").strip()
    }
    try:
        return CustomerBillingFilters.model_validate(values)
    except ValidationError as exc:
        found = [Problem(p.field or "filters", p.message) for p in problems(exc)]
        raise DashboardError(422, "; ".join(str(p) for p in found), field=found[0].field) from None


@router.get("/customer-billing", response_class=HTMLResponse)
async def customer_billing_list(request: Request) -> Response:
    """The customers' billing workflows, filtered by the query string."""
    session = viewer(request)
    filters = _filters(request)
    check_own_entity(session.identity, filters.legal_entity)
    client = await _temporal(context_of(request))
    rows = await list_customer_billing(client, filters, entities=session.identity.entities)
    return render(
        request,
        "customer_billings.html",
        session,
        rows=rows,
        filters=filters,
        statuses=STATUSES,
    )


@router.get("/customer-billing/{workflow_id}", response_class=HTMLResponse)
async def customer_billing_page(workflow_id: str, request: Request) -> Response:
    """One customer's consolidated invoicing."""
    session = viewer(request)
    if (
        not workflow_id.startswith(CUSTOMER_BILLING_PREFIX)
        or len(workflow_id) > 200
        or not set(workflow_id) <= _ID_CHARS
    ):
        raise DashboardError(
            422,
            "a customer billing workflow's id: customer-billing-, then letters, digits and "
            ". _ : - (at most 200 in all)",
            field="workflow_id",
        )
    # Before anything is asked of the workflow: another entity's is as if it did not exist.
    if not session.identity.sees(entity_of(workflow_id)):
        raise DashboardError(404, f"no customer billing {workflow_id}")
    client = await _temporal(context_of(request))
    try:
        status = await customer_billing_status(client, workflow_id)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise DashboardError(404, f"no customer billing {workflow_id}") from None
        raise DashboardError(503, "Temporal did not answer; try again") from None
    except Exception as exc:
        log.warning("customer billing unavailable", workflow_id=workflow_id, error=str(exc))
        raise DashboardError(502, "the customer billing workflow could not answer") from None
    return render(request, "customer_billing.html", session, billing=status)
