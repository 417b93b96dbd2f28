"""Every business message waits its turn in one inbox, and none is lost in silence.

A hold decides, in arrival order, the messages a hold does not stop (operator decisions,
amendments, terminations); an update that arrives while the contract is being set up waits for
its turn instead of being refused; a decision refused in its turn is a business answer; an
unreadable signal is a line in the status and an exception for the integration team. A reset
decides all of it again the same way.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from c2c.settings import Settings
from domain.models import Amendment, ClosePeriod, ResolveException
from domain.names import SIGNAL_AMEND, contract_workflow_id
from ledger import Ledger
from starter.api.contracts import (
    close_period_for,
    contracts_query,
    count_contracts,
    list_contracts,
    resolve_exception,
    start_contract,
)
from starter.api.updates import amend
from starter.ops.exception_queue import get_exception, resolve
from starter.ops.reset import LAST_FAILURE, reset_point
from tests.workflows.billing_helpers import start_active
from tests.workflows.helpers import add_time, approval, items, wait_for, wait_stage
from tests.workflows.reset_helpers import reset_somehow

pytestmark = pytest.mark.usefixtures("worker")

OPERATOR = "ops@example.com"


async def test_a_cap_hold_raised_and_retried_is_decided_the_same_after_a_reset(
    temporal_client: Client, settings: Settings, sandbox: httpx.AsyncClient, ledger: Ledger
) -> None:
    cid, status = await start_active(
        temporal_client, settings, end_date="2026-12-31", not_to_exceed="1000.00"
    )
    refs = status.refs
    await add_time(sandbox, refs["psa_project_id"], "Analyst", "2026-10-20", "10")
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-10"))
    held = await wait_stage(temporal_client, cid, "on_hold")
    [exception] = held.open_exceptions
    assert exception.code == "not_to_exceed_reached"
    assert exception.stage == "active"
    # The hold is a hold everywhere: the ledger's read model says so while it lasts.
    record = ledger.get_contract(cid)
    assert record is not None and record.stage == "on_hold"

    raised = Amendment(
        amendment_id="A-CAP",
        effective_date=date(2026, 11, 1),
        not_to_exceed=Decimal("5000.00"),
        reason="scope grew",
    )
    assert (await amend(temporal_client, cid, raised)).status == "applied"
    item = await get_exception(ledger, exception.exception_id)
    answer = await resolve(temporal_client, item, "retry", operator=OPERATOR)
    # A retry answers with what the retried step did: the held-back work is invoiced.
    assert answer.open_exceptions == []
    assert [i.subtotal for i in answer.invoices] == [Decimal("1000.00"), Decimal("200.00")]
    before = await wait_stage(temporal_client, cid, "active")
    erp_before = await items(sandbox, "/erp/v1/invoices", contract_id=cid)

    await reset_somehow(temporal_client, cid, "client-first", random.Random(0))

    after = await wait_for(
        temporal_client,
        cid,
        lambda s: s.stage == "active" and len(s.invoices) == 2 and len(s.amendments) == 1,
        what="the new run to decide the hold again",
    )
    assert [(i.invoice_id, i.subtotal) for i in after.invoices] == [
        (i.invoice_id, i.subtotal) for i in before.invoices
    ]
    assert [(a.amendment_id, a.status) for a in after.amendments] == [("A-CAP", "applied")]
    assert after.open_exceptions == []
    assert await items(sandbox, "/erp/v1/invoices", contract_id=cid) == erp_before
    # The exception the new run opened again has the same id, and the same decision.
    resolved = ledger.get_exception(exception.exception_id)
    assert resolved is not None and resolved.status == "retried"


async def test_a_reset_supersedes_the_exceptions_its_new_run_does_not_open(
    temporal_client: Client, settings: Settings, sandbox: httpx.AsyncClient, ledger: Ledger
) -> None:
    entity = f"Z{uuid.uuid4().hex[:6].upper()}"
    event = approval(legal_entity=entity)
    cid = event.contract_id
    await start_contract(temporal_client, event, task_queue=settings.task_queue)
    held = await wait_stage(temporal_client, cid, "on_hold")
    [exception] = held.open_exceptions
    assert [c.contract_id for c in await list_contracts(temporal_client, stage="on_hold")].count(
        cid
    ) == 1

    # The legal entity is set up in the ERP; instead of a retry, the operator resets.
    created = await sandbox.post(
        "/erp/v1/legal-entities",
        json={"code": entity, "name": "New entity", "country": "US", "functional_currency": "USD"},
    )
    assert created.status_code == 201, created.text
    await reset_somehow(temporal_client, cid, "cli", random.Random(0))
    await wait_stage(temporal_client, cid, "active")

    record = await wait_for_ledger_status(ledger, exception.exception_id, "superseded")
    assert record.resolved_by == "c2c"
    assert ledger.list_exceptions(status="open", contract_id=cid) == []
    # Each contract is listed once, at its latest run.
    listed = [c for c in await list_contracts(temporal_client) if c.contract_id == cid]
    assert [(c.stage, c.status) for c in listed] == [("active", "running")]
    on_hold = await list_contracts(temporal_client, stage="on_hold")
    assert cid not in {c.contract_id for c in on_hold}
    # The mark a reset leaves in its new run is not a failure to reset to.
    history = await temporal_client.get_workflow_handle(contract_workflow_id(cid)).fetch_history()
    with pytest.raises(ValueError, match="no failure"):
        reset_point(list(history.events), LAST_FAILURE)


async def test_a_contract_reset_after_it_ended_is_listed_and_counted_once(
    temporal_client: Client, settings: Settings
) -> None:
    """A reset of a run that already ended (here: aborted by an operator) starts a new run and
    leaves the old one closed as it was; lists and counts show the contract once."""
    entity = f"Z{uuid.uuid4().hex[:6].upper()}"
    event = approval(legal_entity=entity)
    cid = event.contract_id
    await start_contract(temporal_client, event, task_queue=settings.task_queue)
    held = await wait_stage(temporal_client, cid, "on_hold")
    [exception] = held.open_exceptions
    decision = ResolveException(exception_id=exception.exception_id, action="abort", operator="ops")
    await resolve_exception(temporal_client, cid, decision)
    await wait_stage(temporal_client, cid, "cancelled")

    await reset_somehow(temporal_client, cid, "client-first", random.Random(0))

    handle = temporal_client.get_workflow_handle(contract_workflow_id(cid))
    runs = [wf async for wf in temporal_client.list_workflows(f"WorkflowId = '{handle.id}'")]
    for _ in range(120):  # visibility shows the new run moments after the reset
        if len(runs) == 2:
            break
        await asyncio.sleep(0.25)
        runs = [wf async for wf in temporal_client.list_workflows(f"WorkflowId = '{handle.id}'")]
    assert len(runs) == 2
    listed = [c for c in await list_contracts(temporal_client) if c.contract_id == cid]
    assert len(listed) == 1
    assert await count_contracts(temporal_client, contracts_query(legal_entity=entity)) == 1


async def wait_for_ledger_status(ledger: Ledger, exception_id: str, status: str) -> Any:
    """The exception's record once it has ``status`` (the ledger write follows the run)."""
    record = None
    for _ in range(100):
        record = ledger.get_exception(exception_id)
        if record is not None and record.status == status:
            return record
        await asyncio.sleep(0.2)
    raise AssertionError(f"{exception_id} never became {status}: {record}")


async def test_an_amendment_sent_during_set_up_waits_its_turn(
    temporal_client: Client, settings: Settings, faults: Any
) -> None:
    # The ERP answers slowly, so the update arrives while the contract is being set up.
    await faults(system="erp", path_prefix="/erp/v1/contracts", latency_ms=1500, times=1)
    event = approval(end_date="2026-12-31")
    await start_contract(temporal_client, event, task_queue=settings.task_queue)
    result = await amend(
        temporal_client,
        event.contract_id,
        Amendment(
            amendment_id="A-EARLY",
            effective_date=date(2026, 11, 1),
            rate_card=[{"role": "Analyst", "hourly_rate": "130.00"}],
            reason="agreed at signature",
        ),
    )
    assert (result.status, result.reason) == ("applied", None)


async def test_a_decision_refused_in_turn_reads_as_a_business_refusal(
    temporal_client: Client, settings: Settings
) -> None:
    cid, _ = await start_active(temporal_client, settings)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await resolve_exception(
            temporal_client,
            cid,
            ResolveException(exception_id="EXC-NOPE", action="retry", operator=OPERATOR),
        )
    cause = refused.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.message == "exception EXC-NOPE is not open on this contract"
    assert cause.non_retryable


async def test_an_unreadable_signal_is_reported_not_dropped(
    temporal_client: Client, settings: Settings, ledger: Ledger
) -> None:
    cid, _ = await start_active(temporal_client, settings, end_date="2026-12-31")
    handle = temporal_client.get_workflow_handle(contract_workflow_id(cid))
    await handle.signal(
        SIGNAL_AMEND,
        {"amendment_id": "A-BAD", "effective_date": "2026-13-45", "reason": "typo", "x": 1},
    )
    status = await wait_for(
        temporal_client, cid, lambda s: bool(s.open_exceptions), what="the integration exception"
    )
    [exception] = status.open_exceptions
    assert (exception.code, exception.queue, exception.stage) == (
        "malformed_message",
        "integration",
        "active",
    )
    assert "effective_date" in exception.message and "2026-13-45" in exception.message
    assert status.stage == "active", "an unreadable message holds nothing"
    assert any("amend signal refused" in h.event for h in status.history)
    item = await get_exception(ledger, exception.exception_id)
    after = await resolve(temporal_client, item, "skip", operator=OPERATOR, note="sender told")
    assert after.open_exceptions == []
    assert status.amendments == []


async def test_during_a_hold_an_amendment_goes_ahead_of_the_close_that_waits(
    temporal_client: Client, settings: Settings, sandbox: httpx.AsyncClient, ledger: Ledger
) -> None:
    """A close that arrives during a hold waits for its end; an amendment sent after it is
    decided during the hold (it is often the fix the hold waits for), so it applies to the
    period that close then invoices. A reset decides both the same way."""
    cid, status = await start_active(
        temporal_client, settings, end_date="2026-12-31", not_to_exceed="1000.00"
    )
    refs = status.refs
    await add_time(sandbox, refs["psa_project_id"], "Analyst", "2026-10-20", "10")
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-10"))
    held = await wait_stage(temporal_client, cid, "on_hold")
    await add_time(sandbox, refs["psa_project_id"], "Analyst", "2026-11-05", "1")
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-11"))
    handle = temporal_client.get_workflow_handle(contract_workflow_id(cid))
    cheaper = Amendment(
        amendment_id="A-NOV",
        effective_date=date(2026, 11, 2),
        rate_card=[{"role": "Analyst", "hourly_rate": "99.00"}],
        not_to_exceed=Decimal("5000.00"),
        reason="discount and more scope from November",
    )
    await handle.signal(SIGNAL_AMEND, cheaper)
    waiting = await wait_for(
        temporal_client, cid, lambda s: bool(s.amendments), what="the amendment on hold"
    )
    assert waiting.stage == "on_hold" and waiting.queued_messages == 1
    item = await get_exception(ledger, held.open_exceptions[0].exception_id)
    await resolve(temporal_client, item, "skip", operator=OPERATOR, note="write it off")
    before = await wait_for(
        temporal_client,
        cid,
        lambda s: "2026-11" in s.closed_periods and s.queued_messages == 0,
        what="the November close after the hold",
    )
    assert [(a.amendment_id, a.status) for a in before.amendments] == [("A-NOV", "applied")]
    assert [i.subtotal for i in before.invoices] == [Decimal("1000.00"), Decimal("99.00")]
    assert before.written_off == Decimal("200.00")

    await reset_somehow(temporal_client, cid, "client-random", random.Random(7))
    after = await wait_for(
        temporal_client,
        cid,
        lambda s: "2026-11" in s.closed_periods and s.queued_messages == 0 and s.amendments != [],
        what="the new run to decide everything again",
    )
    assert [(i.invoice_id, i.subtotal) for i in after.invoices] == [
        (i.invoice_id, i.subtotal) for i in before.invoices
    ]
    assert [a.model_dump(exclude={"at"}) for a in after.amendments] == [
        a.model_dump(exclude={"at"}) for a in before.amendments
    ]
    assert after.written_off == before.written_off
