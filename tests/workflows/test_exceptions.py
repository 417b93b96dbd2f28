"""A business rejection holds the contract with an exception until an operator decides."""

from __future__ import annotations

import uuid
from decimal import Decimal

import httpx
import pytest
from temporalio.client import Client, WorkflowUpdateFailedError

from c2c.settings import Settings
from domain.models import ClosePeriod, ResolveException
from domain.names import SA_OPEN_EXCEPTIONS, SA_STAGE
from ledger import Ledger
from starter.api.contracts import (
    close_period_for,
    contract_handle,
    contract_result,
    resolve_exception,
    start_contract,
)
from tests.workflows.helpers import add_time, approval, items, wait_stage

pytestmark = pytest.mark.usefixtures("worker")


async def test_unknown_legal_entity_holds_until_fixed_and_retried(
    temporal_client: Client, settings: Settings, sandbox: httpx.AsyncClient, ledger: Ledger
) -> None:
    entity = f"Z{uuid.uuid4().hex[:6].upper()}"
    event = approval(legal_entity=entity)
    cid = event.contract_id
    await start_contract(temporal_client, event, task_queue=settings.task_queue)

    held = await wait_stage(temporal_client, cid, "on_hold")
    [exception] = held.open_exceptions
    assert (exception.system, exception.code, exception.queue) == (
        "erp",
        "unknown_legal_entity",
        "legal",
    )
    assert exception.stage == "validating"
    assert entity in exception.message
    assert "operator decision" in held.waiting_for
    # Nothing was created in the ERP while validation failed.
    assert await items(sandbox, "/erp/v1/projects", contract_id=cid) == []
    [record] = ledger.list_exceptions(status="open", queue=None, contract_id=cid)
    assert record.exception_id == exception.exception_id
    description = await contract_handle(temporal_client, cid).describe()
    assert description.typed_search_attributes.get(SA_OPEN_EXCEPTIONS) == 1
    assert description.typed_search_attributes.get(SA_STAGE) == "on_hold"

    # A wrong id and an unsafe decision are refused before they enter history.
    with pytest.raises(WorkflowUpdateFailedError):
        await resolve_exception(
            temporal_client,
            cid,
            ResolveException(exception_id="EXC-NOPE", action="retry", operator="ops@example.com"),
        )

    # Finance sets up the legal entity in the ERP, then retries.
    created = await sandbox.post(
        "/erp/v1/legal-entities",
        json={"code": entity, "name": "New entity", "country": "US", "functional_currency": "USD"},
    )
    assert created.status_code == 201, created.text
    after = await resolve_exception(
        temporal_client,
        cid,
        ResolveException(
            exception_id=exception.exception_id,
            action="retry",
            operator="ops@example.com",
            note="legal entity created in ERP",
        ),
    )
    assert after.open_exceptions == []
    await wait_stage(temporal_client, cid, "active")
    resolved = ledger.get_exception(exception.exception_id)
    assert resolved is not None
    assert (resolved.status, resolved.resolved_by) == ("retried", "ops@example.com")
    assert len(await items(sandbox, "/erp/v1/projects", contract_id=cid)) == 1


async def test_an_aborted_contract_ends_cancelled(
    temporal_client: Client, settings: Settings, sandbox: httpx.AsyncClient, ledger: Ledger
) -> None:
    event = approval(
        customer={
            "crm_account_id": "NO-SUCH-ACCOUNT",
            "name": "Ghost",
            "country": "US",
            "region": "CA",
        }
    )
    cid = event.contract_id
    await start_contract(temporal_client, event, task_queue=settings.task_queue)
    held = await wait_stage(temporal_client, cid, "on_hold")
    [exception] = held.open_exceptions
    assert (exception.system, exception.code, exception.queue) == (
        "crm",
        "account_not_found",
        "finance",
    )

    await resolve_exception(
        temporal_client,
        cid,
        ResolveException(
            exception_id=exception.exception_id,
            action="abort",
            operator="ops@example.com",
            note="customer withdrew",
        ),
    )
    summary = await contract_result(temporal_client, cid)
    assert summary.status.stage == "cancelled"
    assert await items(sandbox, "/erp/v1/projects", contract_id=cid) == []
    record = ledger.get_exception(exception.exception_id)
    assert record is not None and record.status == "aborted"


@pytest.mark.parametrize(
    ("changes", "system", "code", "queue"),
    [
        (
            {"currency": "CHF", "rate_card": [{"role": "Analyst", "hourly_rate": "150.00"}]},
            "erp",
            "currency_not_allowed",
            "legal",
        ),
        (
            {
                "customer": {
                    "crm_account_id": "DORMANT-CO",
                    "name": "Dormant",
                    "country": "US",
                    "region": "TX",
                }
            },
            "crm",
            "account_inactive",
            "finance",
        ),
        (
            {
                "customer": {
                    "crm_account_id": "ACME-US",
                    "name": "Acme",
                    "country": "US",
                    "region": "CA",
                }
            },
            "crm",
            "hierarchy_mismatch",
            "finance",
        ),
        (
            {
                "customer": {
                    "crm_account_id": "ACME-US",
                    "name": "Acme",
                    "country": "BR",
                    "parent_crm_account_id": "ACME-HOLD",
                }
            },
            "tax",
            "unknown_jurisdiction",
            "finance",
        ),
    ],
    ids=["currency", "inactive-account", "hierarchy", "tax-address"],
)
async def test_validation_holds_what_a_system_of_record_refuses(
    temporal_client: Client,
    settings: Settings,
    sandbox: httpx.AsyncClient,
    changes: dict[str, object],
    system: str,
    code: str,
    queue: str,
) -> None:
    event = approval(**changes)
    await start_contract(temporal_client, event, task_queue=settings.task_queue)
    held = await wait_stage(temporal_client, event.contract_id, "on_hold")
    [exception] = held.open_exceptions
    assert (exception.stage, exception.system, exception.code, exception.queue) == (
        "validating",
        system,
        code,
        queue,
    )
    assert await items(sandbox, "/erp/v1/projects", contract_id=event.contract_id) == []


async def test_an_abort_after_billing_credits_the_unpaid_invoice_and_closes_the_projects(
    temporal_client: Client, settings: Settings, sandbox: httpx.AsyncClient
) -> None:
    # A cap of 500.00 against 8 h at 200.00: 500.00 is invoiced, the rest held for delivery.
    event = approval(not_to_exceed="500.00")
    cid = event.contract_id
    await start_contract(temporal_client, event, task_queue=settings.task_queue)
    status = await wait_stage(temporal_client, cid, "active")
    await add_time(sandbox, status.refs["psa_project_id"], "Senior Consultant", "2026-10-05", "8")
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-10"))
    held = await wait_stage(temporal_client, cid, "on_hold")
    [exception] = held.open_exceptions
    assert exception.code == "not_to_exceed_reached"
    invoice = held.invoices[0]
    assert invoice.subtotal == Decimal("500.00")

    await resolve_exception(
        temporal_client,
        cid,
        ResolveException(
            exception_id=exception.exception_id,
            action="abort",
            operator="ops@example.com",
            note="engagement cancelled",
        ),
    )
    summary = await contract_result(temporal_client, cid)
    status = summary.status
    assert status.stage == "cancelled"
    # Newest first: the unpaid invoice credited in full, then the projects closed.
    [note] = status.credit_notes
    assert (note.invoice_id, note.total) == (invoice.invoice_id, invoice.total)
    assert status.invoices[0].status == "credited"
    assert status.balance_due == 0
    erp_invoice = (await sandbox.get(f"/erp/v1/invoices/{invoice.invoice_id}")).json()
    assert erp_invoice["status"] == "credited"
    [psa] = await items(sandbox, "/psa/v1/projects", contract_id=cid)
    [erp] = await items(sandbox, "/erp/v1/projects", contract_id=cid)
    assert psa["status"] == erp["status"] == "closed"
