"""Inbound events through the API with no worker: each recorded once by its event id; those
that cannot be processed kept as dead letters with the reason, listed by ``GET
/api/dead-letters`` and ``c2c ops dead-letters`` and replayed; duplicates answered without
reaching Temporal; transient failures left for the sender's retry."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from click.testing import Result
from temporalio.client import Client
from typer.testing import CliRunner

from c2c.settings import Settings
from domain.names import contract_workflow_id
from ledger import Ledger, get_ledger
from starter.cli import ops as cli_ops
from starter.cli.main import app
from tests.starter.helpers import approval, signed
from tests.support import WEBHOOK_SECRET, new_contract_id, serve

CLM = "/webhooks/clm"
PSA = "/webhooks/psa"
PAYMENTS = "/webhooks/payments"

Cli = Callable[..., Result]


def new_event_id() -> str:
    return f"evt_{uuid.uuid4().hex[:12]}"


def envelope(kind: str, data: dict[str, Any], event_id: str | None = None) -> bytes:
    """A webhook body; without ``event_id`` the envelope has no ``id`` at all."""
    payload: dict[str, Any] = {"type": kind, "data": data}
    if event_id is not None:
        payload = {"id": event_id, **payload}
    return json.dumps(payload).encode()


def milestone(contract_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "contract_id": contract_id,
        "psa_project_id": "PRJ-1",
        "milestone_id": "M1",
        "completed_on": "2026-10-20",
        **changes,
    }


def payment(invoice_id: str) -> dict[str, Any]:
    return {
        "payment_id": f"PAY-{uuid.uuid4().hex[:8]}",
        "invoice_id": invoice_id,
        "amount": "10.00",
        "currency": "USD",
        "received_on": "2026-11-02",
    }


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error"]["code"] == code
    return body


@pytest.fixture(scope="module")
def inbound(api_settings: Settings) -> Ledger:
    """The ledger of the API under test, read directly."""
    return get_ledger(api_settings.ledger_url)


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, api_settings: Settings) -> Cli:
    """``c2c …`` in this process, configured like the API under test."""
    monkeypatch.setattr(cli_ops, "get_settings", lambda: api_settings)
    runner = CliRunner()
    # The CLI points the root logger at the runner's stream, closed after each command; the
    # API's thread logs on afterwards.
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level

    def invoke(*args: str) -> Result:
        try:
            return runner.invoke(app, list(args))
        finally:
            root.handlers[:] = handlers
            root.setLevel(level)

    return invoke


def test_a_milestone_of_an_unknown_contract_is_a_dead_letter_until_its_contract_exists(
    api_url: str, cli: Cli, inbound: Ledger
) -> None:
    cid, eid = new_contract_id(), new_event_id()
    body = envelope("milestone.completed", milestone(cid), eid)
    with httpx.Client(base_url=api_url, timeout=30) as api:
        refused = assert_error(
            api.post(PSA, content=body, headers=signed(body, WEBHOOK_SECRET)),
            404,
            "contract_not_found",
        )
        assert (refused["event_id"], refused["dead_letter"]) == (eid, True)

        [item] = api.get("/api/dead-letters", params={"contract_id": cid}).json()["items"]
        assert item["source"] == "psa" and item["event_id"] == eid
        assert item["type"] == "milestone.completed"
        assert (item["status"], item["reason"], item["attempts"]) == (
            "dead_letter",
            "contract_not_found: no such contract",
            1,
        )
        assert "body" not in item

        listed = cli("ops", "dead-letters", "--contract", cid)
        assert listed.exit_code == 0, listed.output
        assert "SOURCE" in listed.output and "REASON" in listed.output
        assert eid in listed.output and "contract_not_found: no such contract" in listed.output
        other = cli("ops", "dead-letters", "--source", "payments", "--contract", cid)
        assert other.exit_code == 0 and "No dead letters." in other.output

        # The contract still does not exist: a replay leaves it a dead letter, with the reason.
        replayed = cli("ops", "replay", "psa", eid)
        assert replayed.exit_code == 1
        assert f"psa event {eid} is a dead letter: contract_not_found" in replayed.output
        again = assert_error(api.post(f"/api/dead-letters/psa/{eid}/replay"), 409, "replay_failed")
        assert "contract_not_found: no such contract" in again["error"]["message"]
        assert (again["event"]["status"], again["event"]["attempts"]) == ("dead_letter", 3)

        # The sender's own retry processes it again too (it might succeed now).
        assert_error(
            api.post(PSA, content=body, headers=signed(body, WEBHOOK_SECRET)),
            404,
            "contract_not_found",
        )
        stored = inbound.get_inbound_event("psa", eid)
        assert stored is not None and stored.body == body.decode()
        assert (stored.status, stored.attempts) == ("dead_letter", 4)

        unknown = cli("ops", "replay", "psa", "evt-nope")
        assert unknown.exit_code == 1 and "no psa event 'evt-nope'" in unknown.output
        assert_error(
            api.post("/api/dead-letters/psa/evt-nope/replay"), 404, "dead_letter_not_found"
        )
        wrong = api.post(f"/api/dead-letters/erp/{eid}/replay")
        assert wrong.status_code == 422 and wrong.json()["error"]["field"] == "source"


def test_events_malformed_after_their_signature_check_are_dead_letters(
    api_url: str, cli: Cli
) -> None:
    eid = new_event_id()
    without_id = {k: v for k, v in milestone(new_contract_id()).items() if k != "milestone_id"}
    no_milestone = envelope("milestone.completed", without_id, eid)
    # No envelope id: the event is known by the SHA-256 of its body.
    unknown_invoice = envelope("payment.succeeded", payment(f"INV-{uuid.uuid4().hex[:8]}"))
    not_json = b"{not json " + uuid.uuid4().hex.encode()
    with httpx.Client(base_url=api_url, timeout=30) as api:

        def post(path: str, body: bytes) -> httpx.Response:
            return api.post(path, content=body, headers=signed(body, WEBHOOK_SECRET))

        invalid = assert_error(post(PSA, no_milestone), 422, "validation_error")
        assert invalid["error"]["field"] == "data.milestone_id"
        assert invalid["dead_letter"] is True
        assert_error(post(PAYMENTS, unknown_invoice), 404, "unknown_invoice")
        assert_error(post(PAYMENTS, not_json), 400, "invalid_json")

        dead = {
            (i["source"], i["event_id"]): i for i in api.get("/api/dead-letters").json()["items"]
        }
        assert dead["psa", eid]["reason"] == "validation_error: data.milestone_id: Field required"
        by_hash = dead["payments", hashlib.sha256(unknown_invoice).hexdigest()]
        assert by_hash["type"] == "payment.succeeded" and by_hash["contract_id"] is None
        assert by_hash["reason"].startswith("unknown_invoice: no contract has")
        garbled = dead["payments", hashlib.sha256(not_json).hexdigest()]
        assert (garbled["type"], garbled["reason"]) == (
            "",
            "invalid_json: the body is not valid JSON",
        )

    listed = cli("ops", "dead-letters", "--source", "payments")
    assert listed.exit_code == 0, listed.output
    assert hashlib.sha256(not_json).hexdigest() in listed.output
    assert eid not in listed.output
    bad = cli("ops", "dead-letters", "--status", "lost")
    assert bad.exit_code == 2 and "--status" in bad.output


async def test_a_body_with_a_bad_signature_is_never_recorded(
    api: httpx.AsyncClient, inbound: Ledger
) -> None:
    eid = new_event_id()
    body = envelope("milestone.completed", milestone(new_contract_id()), eid)
    response = await api.post(PSA, content=body, headers=signed(body, "not-the-secret"))
    assert_error(response, 401, "invalid_signature")
    assert inbound.get_inbound_event("psa", eid) is None


async def test_a_processed_event_delivered_again_is_a_duplicate_that_reaches_no_workflow(
    api: httpx.AsyncClient, temporal_client: Client, inbound: Ledger
) -> None:
    data = approval()
    cid = data["contract_id"]
    approved = envelope("contract.approved", data, new_event_id())
    done = envelope("milestone.completed", milestone(cid), new_event_id())

    async def post(path: str, body: bytes) -> httpx.Response:
        return await api.post(path, content=body, headers=signed(body, WEBHOOK_SECRET))

    first = await post(CLM, approved)
    again = await post(CLM, approved)
    assert first.status_code == again.status_code == 202
    assert first.json()["duplicate"] is False and again.json()["duplicate"] is True
    assert again.json()["run_id"] == first.json()["run_id"]
    assert again.json()["workflow_id"] == contract_workflow_id(cid)

    signalled = await post(PSA, done)
    assert signalled.status_code == 202, signalled.text
    assert signalled.json() == {
        "contract_id": cid,
        "workflow_id": contract_workflow_id(cid),
        "duplicate": False,
    }
    # Temporal would refuse anything for this contract now (409): a duplicate never asks it.
    await temporal_client.get_workflow_handle(contract_workflow_id(cid)).terminate("test")
    duplicate = await post(PSA, done)
    assert duplicate.status_code == 202 and duplicate.json()["duplicate"] is True
    stored = inbound.list_inbound_events(source="psa", contract_id=cid)
    assert [(e.status, e.attempts) for e in stored] == [("processed", 1)]

    # A new event does reach it, and one that a closed contract refuses is a dead letter.
    late = envelope("milestone.completed", milestone(cid, milestone_id="M2"), new_event_id())
    assert_error(await post(PSA, late), 409, "contract_closed")
    listed = await api.get("/api/dead-letters", params={"contract_id": cid})
    assert [i["reason"] for i in listed.json()["items"]] == [
        "contract_closed: the contract's workflow has finished"
    ]
    # Only an event not processed yet can be replayed.
    processed_id = json.loads(done)["id"]
    response = await api.post(f"/api/dead-letters/psa/{processed_id}/replay")
    refused = assert_error(response, 409, "already_processed")
    assert "is processed already" in refused["error"]["message"]
    replayed = await api.get(
        "/api/dead-letters", params={"contract_id": cid, "status": "processed"}
    )
    assert len(replayed.json()["items"]) == 2


async def test_an_event_left_received_when_its_sender_gave_up_is_replayed_by_an_operator(
    api: httpx.AsyncClient, api_settings: Settings, inbound: Ledger, cli: Cli
) -> None:
    """Temporal was down while the webhook was processed, and the sender stopped retrying:
    the event is ``received``, and an operator's replay (the API's, or ``c2c ops replay``)
    delivers it, once."""
    data = approval()
    cid = data["contract_id"]
    approved = envelope("contract.approved", data, new_event_id())
    assert (
        await api.post(CLM, content=approved, headers=signed(approved, WEBHOOK_SECRET))
    ).status_code == 202
    first, second = new_event_id(), new_event_id()
    down = api_settings.model_copy(
        update={"temporal_address": "127.0.0.1:9", "webhook_queue": False}
    )
    with serve(down) as down_url:
        async with httpx.AsyncClient(base_url=down_url, timeout=30) as unreachable:
            for eid, mid in ((first, "M1"), (second, "M2")):
                body = envelope("milestone.completed", milestone(cid, milestone_id=mid), eid)
                for _ in range(3):  # the sender's retries, all while Temporal is down
                    response = await unreachable.post(
                        PSA, content=body, headers=signed(body, WEBHOOK_SECRET)
                    )
                    assert_error(response, 503, "temporal_unavailable")
    for eid in (first, second):
        left = inbound.get_inbound_event("psa", eid)
        assert left is not None and (left.status, left.attempts) == ("received", 3)

    replayed = await api.post(f"/api/dead-letters/psa/{first}/replay")
    assert replayed.status_code == 200, replayed.text
    assert replayed.json()["event"]["status"] == "replayed"
    by_cli = await asyncio.to_thread(cli, "ops", "replay", "psa", second)
    assert by_cli.exit_code == 0, by_cli.output
    assert "it is now replayed" in by_cli.output
    again = await api.post(f"/api/dead-letters/psa/{first}/replay")
    assert_error(again, 409, "already_processed")
    history = await api_history_signals(api_settings, cid)
    assert history.count("milestone_completed") == 2


async def api_history_signals(settings: Settings, contract_id: str) -> list[str]:
    """The names of the signals a contract's workflow received, from its history."""
    client = await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)
    handle = client.get_workflow_handle(contract_workflow_id(contract_id))
    return [
        event.workflow_execution_signaled_event_attributes.signal_name
        async for event in handle.fetch_history_events()
        if event.HasField("workflow_execution_signaled_event_attributes")
    ]


async def test_a_transient_failure_is_left_for_the_senders_retry(
    api: httpx.AsyncClient, api_settings: Settings, inbound: Ledger, faults: Any
) -> None:
    data = approval()
    cid = data["contract_id"]
    approved = envelope("contract.approved", data, new_event_id())
    assert (
        await api.post(CLM, content=approved, headers=signed(approved, WEBHOOK_SECRET))
    ).status_code == 202
    eid = new_event_id()
    body = envelope("milestone.completed", milestone(cid), eid)
    headers = signed(body, WEBHOOK_SECRET)

    # Temporal unreachable: 503, and the event is neither processed nor a dead letter.
    down = api_settings.model_copy(update={"temporal_address": "127.0.0.1:9"})
    with serve(down) as down_url:
        async with httpx.AsyncClient(base_url=down_url, timeout=30) as unreachable:
            assert_error(
                await unreachable.post(PSA, content=body, headers=headers),
                503,
                "temporal_unavailable",
            )
    left = inbound.get_inbound_event("psa", eid)
    assert left is not None
    assert (left.status, left.claimed_until, left.attempts) == ("received", None, 1)
    retried = await api.post(PSA, content=body, headers=headers)
    assert retried.status_code == 202 and retried.json()["duplicate"] is False
    stored = inbound.get_inbound_event("psa", eid)
    assert stored is not None and (stored.status, stored.attempts) == ("processed", 2)

    # An invoice the ledger does not know: the ERP is not asked (it fails now, and is not
    # what answers), the payment is a dead letter at once, for an operator to replay.
    invoice_id = f"INV-{uuid.uuid4().hex[:8]}"
    await faults(system="erp", path_prefix=f"/invoices/{invoice_id}", status=503, times=1)
    paid = envelope("payment.succeeded", payment(invoice_id), new_event_id())
    headers = signed(paid, WEBHOOK_SECRET)
    assert_error(await api.post(PAYMENTS, content=paid, headers=headers), 404, "unknown_invoice")
    dead = inbound.get_inbound_event("payments", json.loads(paid)["id"])
    assert dead is not None and (dead.status, dead.attempts) == ("dead_letter", 1)
