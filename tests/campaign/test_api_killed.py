"""The API killed mid-ingestion: every event it accepted is processed exactly once, and every
event it did not accept can be sent again and is then processed exactly once too.

``c2c api`` runs as its own process, with the event queue on (the default), beside the
session's worker. Approvals of new contracts and payments of issued invoices are sent to it
concurrently; the API is killed with SIGKILL while requests are in flight, and started again.
Events answered ``2xx`` before the kill were recorded in the ledger, so the restarted API's
queue delivers those the dead one had not; the others are sent again, as their senders retry.
Afterwards each contract was started once (one workflow run, one ERP and one PSA project)
and each payment applied once (one ERP payment, its invoice paid, one ledger fact), and the
ledger holds every event once, processed.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select
from temporalio.client import Client
from temporalio.worker import Worker

from c2c.settings import Settings
from domain.models import ClosePeriod, ContractApproved
from domain.names import contract_workflow_id
from ledger import Ledger
from ledger.models import PaymentFact
from starter.api.contracts import close_period_for, get_status, start_contract
from tests.campaign.processes import ApiProcess, deliver, deliver_until_accepted, envelope
from tests.support import approval_payload

pytestmark = pytest.mark.timeout(600)

#: Contracts approved through the API while it is killed.
APPROVALS = 24
#: Contracts invoiced beforehand, whose payments are sent to the API while it is killed.
PAYMENTS = 6
#: Requests in flight at once.
CONCURRENCY = 6
#: The API is killed once this many requests were answered 2xx.
KILL_AFTER = 8


@pytest.fixture
def api(settings: Settings, tmp_path: Path) -> Iterator[ApiProcess]:
    """``c2c api`` on the session's dev server, sandbox, task queue and ledger."""
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": settings.temporal_address,
        "TEMPORAL_NAMESPACE": settings.temporal_namespace,
        "C2C_TASK_QUEUE": settings.task_queue,
        "C2C_SANDBOX_URL": settings.sandbox_url,
        "C2C_DATABASE_URL": settings.ledger_url,
        "C2C_STATE_DIR": str(tmp_path),
        "C2C_LOG_LEVEL": "WARNING",
    }
    process = ApiProcess(env, tmp_path / "api.log")
    process.start()
    try:
        yield process
    finally:
        process.stop()


async def _invoiced(
    client: Client, sandbox: httpx.AsyncClient, settings: Settings, count: int
) -> list[dict[str, Any]]:
    """``count`` contracts started, their October time entered and billed: the payment each
    invoice is due (a ``payment.succeeded`` payload)."""
    cids = []
    for _ in range(count):
        event = ContractApproved.model_validate(approval_payload(not_to_exceed=None))
        await start_contract(client, event, task_queue=settings.task_queue)
        cids.append(event.contract_id)
    for cid in cids:
        status = await _wait(client, cid, lambda s: s.stage == "active")
        response = await sandbox.post(
            f"/psa/v1/projects/{status.refs['psa_project_id']}/time-entries",
            json={
                "consultant_id": "u-1",
                "role": "Senior Consultant",
                "work_date": "2026-10-05",
                "hours": "8",
                "billable": True,
                "approved": True,
            },
        )
        assert response.status_code == 201, response.text
        await close_period_for(client, cid, ClosePeriod(period="2026-10"))
    payments = []
    for cid in cids:
        status = await _wait(client, cid, lambda s: len(s.invoices) == 1)
        payments.append(
            {
                "payment_id": f"pay-{cid}",
                "invoice_id": status.invoices[0].invoice_id,
                "amount": str(status.balance_due),
                "currency": status.currency,
                "received_on": "2026-11-20",
            }
        )
    return payments


async def _wait(client: Client, cid: str, check: Any, tries: int = 1200) -> Any:
    for _ in range(tries):
        try:
            status = await get_status(client, cid)
            if check(status):
                return status
        except Exception:
            pass
        await asyncio.sleep(0.25)
    raise AssertionError(f"{cid} never got there")


async def _items(sandbox: httpx.AsyncClient, path: str, **params: str) -> list[dict[str, Any]]:
    response = await sandbox.get(path, params={**params, "limit": "500"})
    response.raise_for_status()
    return list(response.json()["items"])


async def test_events_accepted_before_a_kill_are_processed_once_and_the_rest_can_be_resent(
    api: ApiProcess,
    temporal_client: Client,
    worker: Worker,
    sandbox: httpx.AsyncClient,
    settings: Settings,
    ledger: Ledger,
) -> None:
    client = temporal_client
    payments = await _invoiced(client, sandbox, settings, PAYMENTS)
    approvals = [approval_payload(not_to_exceed=None) for _ in range(APPROVALS)]
    # (path, event id, body), in an order that mixes the two sources.
    events = [("clm", *envelope("contract.approved", a)) for a in approvals] + [
        ("payments", *envelope("payment.succeeded", p)) for p in payments
    ]
    random.Random(20261207).shuffle(events)
    await api.ready()

    accepted: set[str] = set()
    unanswered: list[tuple[str, str, bytes]] = []
    pending = list(events)
    killed = asyncio.Event()

    async def sender(http: httpx.AsyncClient) -> None:
        while pending:
            source, event_id, body = pending.pop(0)
            status = await deliver(http, f"{api.url}/webhooks/{source}", body)
            if status is not None and 200 <= status < 300:
                accepted.add(event_id)
                if len(accepted) >= KILL_AFTER and not killed.is_set():
                    killed.set()
                    # Killed while the other senders' requests are in flight.
                    api.kill()
            else:
                unanswered.append((source, event_id, body))

    async with httpx.AsyncClient(timeout=30) as http:
        await asyncio.gather(*(sender(http) for _ in range(CONCURRENCY)))
        assert api.kills == 1
        assert accepted and unanswered, (len(accepted), len(unanswered))

        api.start()
        await api.ready()
        for source, _, body in unanswered:
            await deliver_until_accepted(http, f"{api.url}/webhooks/{source}", body)
        # A redelivery of an event accepted before the kill is a duplicate, processed once.
        source, event_id, body = next(e for e in events if e[1] in accepted)
        await deliver_until_accepted(http, f"{api.url}/webhooks/{source}", body)

    # Events the dead API had claimed wait for their claim to run out, then are delivered.
    for a in approvals:
        await _wait(client, a["contract_id"], lambda s: s.stage == "active")
    for p in payments:
        await _wait(client, p["payment_id"].removeprefix("pay-"), lambda s: s.stage == "closed")

    for a in approvals:
        cid = a["contract_id"]
        query = f"WorkflowId = '{contract_workflow_id(cid)}'"
        runs = [wf async for wf in client.list_workflows(query)]
        assert len(runs) == 1, cid
        assert len(await _items(sandbox, "/erp/v1/projects", contract_id=cid)) == 1, cid
        assert len(await _items(sandbox, "/psa/v1/projects", contract_id=cid)) == 1, cid
    with Session(ledger.engine) as session:
        for p in payments:
            cid = p["payment_id"].removeprefix("pay-")
            erp = await _items(sandbox, "/erp/v1/payments", contract_id=cid)
            assert [(e["payment_id"], Decimal(e["amount"])) for e in erp] == [
                (p["payment_id"], Decimal(p["amount"]))
            ], cid
            invoices = await _items(sandbox, "/erp/v1/invoices", contract_id=cid)
            assert [i["status"] for i in invoices] == ["paid"], cid
            facts = session.exec(select(PaymentFact).where(PaymentFact.contract_id == cid)).all()
            assert [f.payment_id for f in facts] == [p["payment_id"]], cid
            assert facts[0].received_on == date(2026, 11, 20)
    # An event the dead API was processing stays claimed until its claim runs out; the
    # restarted API then processes it again, and its second start or signal changes nothing.
    for source, event_id, _ in events:
        for _ in range(1200):
            stored = ledger.get_inbound_event(source, event_id)
            if stored is not None and stored.status != "received":
                break
            await asyncio.sleep(0.25)
        assert stored is not None and stored.status == "processed", (event_id, stored)
    print(
        f"\nAPI killed with {len(accepted)} of {len(events)} events accepted; "
        f"{len(unanswered)} sent again; {APPROVALS} contracts started once, "
        f"{PAYMENTS} payments applied once"
    )
