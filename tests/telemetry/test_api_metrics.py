"""``GET /metrics`` of the API after real webhooks: requests by route template, webhooks by
outcome, and contracts by stage and open exceptions read from the ledger at scrape time."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import pytest_asyncio
from sqlmodel import Session, col, create_engine, func, select
from temporalio.client import Client

from c2c.settings import Settings
from c2c.signing import sign
from domain.names import SIGNATURE_HEADER, ExceptionQueue, Stage
from ledger import Ledger
from ledger.models import ContractRecord
from starter.api.metrics import exposition
from tests.support import WEBHOOK_SECRET, approval_payload, serve
from tests.telemetry.conftest import Samples, parse
from tests.workflows.helpers import wait_stage

pytestmark = pytest.mark.usefixtures("worker")


@pytest_asyncio.fixture(scope="module")
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The API, served over HTTP for the session's worker."""
    with serve(settings) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            yield client


async def scrape(api: httpx.AsyncClient) -> Samples:
    response = await api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


async def deliver(
    api: httpx.AsyncClient, event_id: str, data: object, *, secret: str = WEBHOOK_SECRET
) -> httpx.Response:
    """A signed CLM approval webhook."""
    body = json.dumps({"id": event_id, "type": "contract.approved", "data": data}).encode()
    headers = {SIGNATURE_HEADER: sign(body, secret), "Content-Type": "application/json"}
    return await api.post("/webhooks/clm", content=body, headers=headers)


async def test_webhooks_and_requests_are_counted_by_outcome_and_route(
    api: httpx.AsyncClient, temporal_client: Client
) -> None:
    before = await scrape(api)
    data = approval_payload()
    event_id = f"evt-{data['contract_id']}"
    assert (await deliver(api, event_id, data)).status_code == 202
    assert (await deliver(api, event_id, data)).json()["duplicate"] is True
    assert (await deliver(api, "evt-forged", data, secret="wrong")).status_code == 401
    invalid = await deliver(api, f"{event_id}-x", {**data, "currency": "X"})
    assert invalid.status_code == 422
    assert (await api.get(f"/nothing/here/{data['contract_id']}")).status_code == 404
    await wait_stage(temporal_client, data["contract_id"], "active")

    after = await scrape(api)

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    webhooks = "c2c_webhooks_received_total"
    for outcome in ("accepted", "duplicate", "rejected_signature", "dead_letter"):
        assert delta(webhooks, source="clm", outcome=outcome) == 1, outcome
    requests = "c2c_http_requests_total"
    assert delta(requests, method="POST", route="/webhooks/clm", status="202") == 2
    assert delta(requests, method="POST", route="/webhooks/clm", status="401") == 1
    assert delta(requests, method="POST", route="/webhooks/clm", status="422") == 1
    assert delta(requests, method="GET", route="unmatched", status="404") == 1
    assert delta("c2c_http_request_duration_seconds_count", route="/webhooks/clm") == 4
    # No raw path became a label.
    assert not any(data["contract_id"] in str(labels) for _, labels, _ in after.samples)


async def test_contracts_by_stage_and_open_exceptions_come_from_the_ledger(
    api: httpx.AsyncClient, ledger: Ledger
) -> None:
    samples = await scrape(api)
    with Session(ledger.engine) as session:
        counts = dict(
            session.exec(
                select(ContractRecord.stage, func.count()).group_by(col(ContractRecord.stage))
            ).all()
        )
    for stage in Stage:
        assert samples.value("c2c_contracts", stage=stage.value) == counts.get(stage.value, 0)
    open_by_queue = {
        queue.value: len(ledger.list_exceptions(status="open", queue=queue, contract_id=None))
        for queue in ExceptionQueue
    }
    for queue, count in open_by_queue.items():
        assert samples.value("c2c_open_exceptions", queue=queue) == count
    # prometheus_client's own process metrics come along.
    assert "python_info" in samples.names()


def test_a_scrape_answers_without_the_ledger_when_the_database_does_not(tmp_path: Path) -> None:
    unreachable = SimpleNamespace(engine=create_engine(f"sqlite:///{tmp_path}/missing/ledger.db"))
    body, content_type = exposition(unreachable)  # type: ignore[arg-type]
    samples = parse(body.decode())
    assert content_type.startswith("text/plain")
    assert "c2c_contracts" not in samples.names()
    assert "python_info" in samples.names()  # the process's registry is still served
