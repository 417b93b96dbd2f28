"""Work written off above a not-to-exceed cap reaches the ERP once, on the real dev server and
the sandbox over HTTP: in the reference ERP (with the step's answer lost once, and after a
reset to the first task) and in NetSuite (a journal entry, after a reset too). The write-off's
ERP reference shows in the contract's status and in the work-in-progress report."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client

from c2c.settings import Settings
from domain.models import ClosePeriod, ContractStatus, ResolveException
from starter.api.contracts import close_period_for, resolve_exception, start_contract
from starter.ops.reset import FIRST, reset_contract
from tests.netsuite_support import netsuite, segments
from tests.support import serve
from tests.workflows.helpers import add_time, approval, items, wait_for, wait_stage
from tests.workflows.test_books import new_entity
from worker import contract_worker
from workflows.billing import WRITE_OFFS_TO_ERP
from workflows.releases import NEW_IN_RELEASE


def test_write_offs_reach_the_erp_only_in_runs_of_this_release() -> None:
    assert WRITE_OFFS_TO_ERP in NEW_IN_RELEASE


async def held_above_the_cap(
    client: Client, sandbox: httpx.AsyncClient, task_queue: str, **changes: Any
) -> tuple[str, ContractStatus]:
    """A contract capped at 500.00 whose October time (8 h at 200.00) is held back above it."""
    event = approval(not_to_exceed="500.00", end_date="2026-12-31", **changes)
    await start_contract(client, event, task_queue=task_queue)
    cid = event.contract_id
    status = await wait_stage(client, cid, "active")
    await add_time(sandbox, status.refs["psa_project_id"], "Senior Consultant", "2026-10-05", "8")
    await close_period_for(client, cid, ClosePeriod(period="2026-10"))
    held = await wait_for(client, cid, lambda s: bool(s.open_exceptions), what="the cap's hold")
    assert held.held_back == Decimal("1100.00")
    return cid, held


async def write_off(client: Client, cid: str, held: ContractStatus) -> ContractStatus:
    """The operator skips the cap's hold; the status once the ERP has the write-off."""
    [exception] = held.open_exceptions
    await resolve_exception(
        client,
        cid,
        ResolveException(
            exception_id=exception.exception_id,
            action="skip",
            operator="finance@example.com",
            note="goodwill: over the estimate",
        ),
    )
    return await wait_for(
        client,
        cid,
        lambda s: bool(s.write_offs) and s.write_offs[-1].erp_ref is not None,
        what="the write-off in the ERP",
    )


async def reset_to_the_first_task(client: Client, cid: str) -> ContractStatus:
    """Reset the contract to its first task; the status once the new run has written the
    work off again (the close and the operator's skip delivered again by Temporal)."""
    await reset_contract(client, cid, FIRST, reason="operator test")
    return await wait_for(
        client,
        cid,
        lambda s: s.stage == "active" and bool(s.write_offs) and s.write_offs[0].erp_ref,
        what="the new run to write off again",
    )


@pytest.mark.usefixtures("worker")
async def test_a_skipped_cap_hold_is_one_write_off_in_the_erp_through_a_lost_answer_and_a_reset(
    temporal_client: Client,
    settings: Settings,
    sandbox: httpx.AsyncClient,
    faults: Any,
) -> None:
    # A legal entity of the test's own: the report asks only its contracts.
    entity = await new_entity(sandbox)
    cid, held = await held_above_the_cap(
        temporal_client, sandbox, settings.task_queue, legal_entity=entity
    )
    # The ERP records the first attempt and its answer is lost: the retry finds it.
    await faults(
        system="erp",
        path_prefix="/erp/v1/write-offs",
        method="POST",
        status=503,
        phase="after",
        times=1,
    )
    status = await write_off(temporal_client, cid, held)
    [w] = status.write_offs
    assert (w.write_off_id, w.amount, w.reference, w.operator) == (
        f"{cid}:write-off-1",
        Decimal("1100.00"),
        "2026-10",
        "finance@example.com",
    )
    assert w.erp_ref == w.write_off_id  # the reference ERP keys write-offs by c2c's id
    assert status.written_off == Decimal("1100.00") and status.held_back == 0
    [erp] = await items(sandbox, "/erp/v1/write-offs", contract_id=cid)
    assert (erp["write_off_id"], Decimal(erp["amount"]), erp["period"]) == (
        w.write_off_id,
        Decimal("1100.00"),
        "2026-10",
    )
    assert (erp["operator"], erp["reason"]) == (
        "finance@example.com",
        "goodwill: over the estimate",
    )

    # The work-in-progress report names the ERP's record.
    with serve(settings) as api_url:
        async with httpx.AsyncClient(base_url=api_url, timeout=60) as api:
            report = await api.get("/api/books/wip", params={"legal_entity": entity})
    assert report.status_code == 200, report.text
    [mine] = [c for c in report.json()["contracts"] if c["contract_id"] == cid]
    assert [x["erp_ref"] for x in mine["write_offs"]] == [w.erp_ref]

    # A reset runs the billing, the hold and the operator's skip again: nothing new in the ERP.
    again = await reset_to_the_first_task(temporal_client, cid)
    assert [x.model_dump(exclude={"written_off_on"}) for x in again.write_offs] == [
        w.model_dump(exclude={"written_off_on"})
    ]
    assert len(await items(sandbox, "/erp/v1/write-offs", contract_id=cid)) == 1


@pytest_asyncio.fixture
async def on_netsuite(temporal_client: Client, settings: Settings) -> AsyncIterator[Settings]:
    """A worker whose US01 contracts go to the sandbox's NetSuite."""
    routed = settings.model_copy(
        update={
            "task_queue": f"c2c-write-offs-{uuid.uuid4().hex[:8]}",
            "erp_routes": {"US01": "netsuite", "*": "reference"},
            "netsuite_segments": segments(),
        }
    )
    async with contract_worker(temporal_client, routed):
        yield routed


async def test_a_write_off_on_netsuite_is_one_journal_entry_after_a_reset(
    temporal_client: Client, on_netsuite: Settings, sandbox: httpx.AsyncClient, sandbox_url: str
) -> None:
    cid, held = await held_above_the_cap(
        temporal_client, sandbox, on_netsuite.task_queue, legal_entity="US01"
    )
    status = await write_off(temporal_client, cid, held)
    again = await reset_to_the_first_task(temporal_client, cid)
    assert again.write_offs[0].erp_ref == status.write_offs[0].erp_ref
    erp = netsuite(sandbox_url)
    try:
        entries = await erp._list("journalEntry", f'custbody_c2c_contract_id IS "{cid}"')
    finally:
        await erp.aclose()
    [entry] = entries
    assert entry["id"] == status.write_offs[0].erp_ref
    assert [(x.get("debit"), x.get("credit")) for x in entry["line"]["items"]] == [
        (1100, None),
        (None, 1100),
    ]
