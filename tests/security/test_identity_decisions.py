"""An operator's decision on a real held contract, made over HTTP with a named token limited
to the contract's legal entity: the decision, the ledger's audit trail and the workflow's
history name the token's holder, not what the client wrote; another entity's operator neither
sees the exception nor may decide it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
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


def _c2c(*args: str, token: str | None, api_url: str) -> subprocess.CompletedProcess[str]:
    """``c2c`` in its own process, as an operator runs it, pointed at the API."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("C2C_", "TEMPORAL_"))}
    env["C2C_API_URL"] = api_url
    if token:
        env["C2C_API_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "starter.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


async def test_the_clis_decision_names_the_tokens_holder(
    api_url: str, temporal_client: Client, settings: Settings, ledger: Ledger
) -> None:
    event = approval(legal_entity=ENTITY)
    cid = event.contract_id
    await start_contract(temporal_client, event, task_queue=settings.task_queue)
    held = await wait_stage(temporal_client, cid, "on_hold")
    [exception] = held.open_exceptions
    xid = exception.exception_id

    def run(*args: str, token: str | None) -> subprocess.CompletedProcess[str]:
        return _c2c("ops", "abort", *args, token=token, api_url=api_url)

    # A name the operator types is refused where a token names them.
    typed = await asyncio.to_thread(run, xid, "--operator", "mallory", token=OLGA)
    assert typed.returncode == 2, typed.stderr
    assert "--operator is refused" in typed.stderr
    # No token: the API refuses, and the CLI says which setting is missing.
    bare = await asyncio.to_thread(run, xid, "--note", "retired", token=None)
    assert bare.returncode == 1 and "C2C_API_TOKEN" in bare.stderr, bare.stderr
    # Another entity's operator: as if the exception did not exist.
    other = await asyncio.to_thread(run, xid, token=URSULA)
    assert other.returncode == 1 and f"no exception {xid}" in other.stderr, other.stderr
    unknown = await asyncio.to_thread(run, "EXC-404", token=OLGA)
    assert unknown.returncode == 1 and "no exception EXC-404" in unknown.stderr
    assert ledger.get_exception(xid).status == "open"  # type: ignore[union-attr]

    decided = await asyncio.to_thread(run, xid, "--note", "entity retired", token=OLGA)
    assert decided.returncode == 0, decided.stderr
    assert f"abort: exception {xid} resolved" in decided.stdout
    for _ in range(300):
        record = ledger.get_exception(xid)
        if record is not None and record.resolved_by:
            break
        await asyncio.sleep(0.1)
    assert record is not None and (record.status, record.resolved_by) == ("aborted", "olga")
    assert not any("mallory" in e.event for e in ledger.audit_trail(cid))
