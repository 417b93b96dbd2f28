"""An operator's decision on a real held contract, made over HTTP with a named token limited
to the contract's legal entity: the decision, the ledger's audit trail and the workflow's
history name the token's holder, not what the client wrote; another entity's operator neither
sees the exception nor may decide it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr
from temporalio.client import Client

from c2c.settings import Settings
from ledger import Ledger
from starter.api.contracts import start_contract
from tests.support import serve
from tests.workflows.helpers import approval, wait_stage

pytestmark = pytest.mark.usefixtures("worker")

ENTITY = f"Z{uuid.uuid4().hex[:6].upper()}"
OLGA = "olga-operator-3f9a0c1d"
URSULA = "ursula-operator-8e2b7d4a"


@pytest.fixture(scope="module")
def api_url(settings: Settings) -> Iterator[str]:
    tokens = f"{OLGA}:operator:{ENTITY}@olga,{URSULA}:operator:US01@ursula"
    with serve(settings.model_copy(update={"api_tokens": SecretStr(tokens)})) as url:
        yield url


async def test_a_decision_names_the_tokens_holder_everywhere(
    api_url: str, temporal_client: Client, settings: Settings, ledger: Ledger
) -> None:
    # A legal entity the ERP does not know: validation holds the contract for a decision.
    event = approval(legal_entity=ENTITY)
    cid = event.contract_id
    await start_contract(temporal_client, event, task_queue=settings.task_queue)
    held = await wait_stage(temporal_client, cid, "on_hold")
    [exception] = held.open_exceptions
    path = f"/api/exceptions/{exception.exception_id}/abort"

    async with httpx.AsyncClient(base_url=api_url, timeout=60) as http:
        ursula = {"Authorization": f"Bearer {URSULA}"}
        listed = await http.get("/api/exceptions", params={"contract_id": cid}, headers=ursula)
        assert listed.status_code == 200 and listed.json()["items"] == []
        hidden = await http.post(path, json={"note": "not mine"}, headers=ursula)
        assert hidden.status_code == 404
        assert (await http.get(f"/api/contracts/{cid}", headers=ursula)).status_code == 404

        olga = {"Authorization": f"Bearer {OLGA}"}
        listed = await http.get("/api/exceptions", params={"contract_id": cid}, headers=olga)
        assert [i["exception_id"] for i in listed.json()["items"]] == [exception.exception_id]
        assert (await http.get(f"/api/contracts/{cid}", headers=olga)).status_code == 200
        decided = await http.post(
            path, json={"operator": "mallory", "note": "entity retired"}, headers=olga
        )
        assert decided.status_code == 200, decided.text

    # The workflow's history, through its status.
    status = decided.json()
    assert any("by olga" in line["event"] for line in status["history"])
    assert not any("mallory" in line["event"] for line in status["history"])
    # The ledger: the exception and the audit trail (written by the workflow's steps).
    for _ in range(300):
        record = ledger.get_exception(exception.exception_id)
        trail = [e.event for e in ledger.audit_trail(cid)]
        if record is not None and record.resolved_by and any("by olga" in e for e in trail):
            break
        await asyncio.sleep(0.1)
    assert record is not None and (record.status, record.resolved_by) == ("aborted", "olga")
    assert any("by olga" in e for e in trail)
    assert not any("mallory" in e for e in trail)
