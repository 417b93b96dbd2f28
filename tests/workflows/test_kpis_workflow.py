"""Two real contracts on the dev server, then the KPI report of their legal entity.

One contract is provisioned untouched; the other waits in validation for an operator (its
legal entity is not in the ERP yet). Both bill October. The report, read from the ledger the
worker wrote (unbilled time included, which the billing activity read from the sandbox PSA),
must count exactly those facts.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import httpx
import pytest
from temporalio.client import Client

from c2c.settings import Settings
from domain.models import ClosePeriod, ResolveException
from ledger import Ledger
from starter.api.contracts import close_period_for, resolve_exception, start_contract
from starter.api.kpis import build_report
from tests.workflows.helpers import add_time, approval, wait_for, wait_stage

pytestmark = pytest.mark.usefixtures("worker")


async def _bill_october(
    client: Client, sandbox: httpx.AsyncClient, contract_id: str, psa_project_id: str
) -> None:
    await add_time(sandbox, psa_project_id, "Senior Consultant", "2026-10-05", "8")
    await close_period_for(client, contract_id, ClosePeriod(period="2026-10"))
    await wait_for(client, contract_id, lambda s: bool(s.invoices), what="an invoice")


async def test_the_report_counts_two_real_contracts(
    temporal_client: Client, settings: Settings, sandbox: httpx.AsyncClient, ledger: Ledger
) -> None:
    # An entity of this test's own, so other tests' contracts in the session stay out.
    entity = f"K{uuid.uuid4().hex[:6].upper()}"
    held_event = approval(legal_entity=entity)
    await start_contract(temporal_client, held_event, task_queue=settings.task_queue)
    held = await wait_stage(temporal_client, held_event.contract_id, "on_hold")
    [exception] = held.open_exceptions
    assert exception.stage == "validating"

    created = await sandbox.post(
        "/erp/v1/legal-entities",
        json={"code": entity, "name": "KPI entity", "country": "US", "functional_currency": "USD"},
    )
    assert created.status_code == 201, created.text
    await resolve_exception(
        temporal_client,
        held_event.contract_id,
        ResolveException(
            exception_id=exception.exception_id, action="retry", operator="ops@example.com"
        ),
    )
    touchless_event = approval(legal_entity=entity, end_date="2026-12-31")
    await start_contract(temporal_client, touchless_event, task_queue=settings.task_queue)

    for event in (held_event, touchless_event):
        status = await wait_stage(temporal_client, event.contract_id, "active")
        if event is touchless_event:
            # November's work, approved before October closes: October's invoice leaves it
            # unbilled for the next one, and the billing activity records it so.
            await add_time(sandbox, status.refs["psa_project_id"], "Analyst", "2026-11-02", "2.5")
        await _bill_october(
            temporal_client, sandbox, event.contract_id, status.refs["psa_project_id"]
        )

    report = await build_report(settings, ledger, legal_entity=entity)

    assert report.legal_entity == entity
    assert report.project_setup.count == 2
    assert report.project_setup.median_hours is not None
    assert report.touchless_provisioning.model_dump() == {
        "contracts": 2,
        "without_manual_step": 1,
        "share": 0.5,
    }
    assert report.invoice_correction.model_dump() == {
        "invoices": 2,
        "credit_notes": 0,
        "rate": 0.0,
    }
    assert report.billing_cycle.count == 2
    assert report.billing_cycle.median_hours is not None
    assert report.exception_resolution.count == 1
    # Nothing paid yet: the whole of the period's sales is outstanding.
    assert report.dso_days is not None and report.dso_days > 0
    unbilled = report.unbilled_time
    assert unbilled.unavailable is None
    assert unbilled.hours == Decimal("2.5")
    [line] = unbilled.by_contract
    # 2.5 h of an analyst at 120.00.
    assert (line.contract_id, line.value) == (touchless_event.contract_id, Decimal("300.00"))
    assert [(e.legal_entity, e.currency, e.value) for e in unbilled.by_legal_entity] == [
        (entity, "USD", Decimal("300.00"))
    ]
    [month] = [p for p in report.trend if p.invoices_issued]
    assert month.invoices_issued == 2
