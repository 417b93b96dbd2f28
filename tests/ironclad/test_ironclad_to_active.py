"""A contract from an Ironclad workflow to ``active``, over real HTTP: the sandbox completes
the workflow and sends its signed ``workflow_completed`` webhook to the API, which verifies it
with the key it fetched from the sandbox's Ironclad and records it; the event queue starts the
intake, whose activity reads the workflow's attributes from Ironclad; the contract starts, is
provisioned, and its signed copy is archived with its hash verified. A resent event is a
duplicate, a changed byte is 401, a rotated key still verifies, a missing term is a dead
letter naming the Ironclad field."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import rsa
from temporalio.client import Client

from c2c.ironclad_webhook import sign_webhook
from c2c.settings import Settings
from domain.names import Stage
from ledger import Ledger
from tests.ironclad.support import contract_attributes
from tests.support import new_contract_id, serve
from tests.workflows.helpers import wait_for

pytestmark = pytest.mark.usefixtures("worker")


@pytest.fixture(scope="module")
def api_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "clm_sources": ["c2c", "ironclad"],
            "webhook_queue": True,
            # Every failed verification may fetch the key again: the rotation test needs no
            # wait. The bound itself is tested in test_ironclad_signature.py.
            "ironclad_key_refresh_s": 0.0,
        }
    )


@pytest.fixture(scope="module")
def api_url(api_settings: Settings) -> Iterator[str]:
    with serve(api_settings) as url:
        yield url


@pytest_asyncio.fixture
async def ironclad(sandbox: httpx.AsyncClient, api_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The sandbox's Ironclad, sending webhooks to the API."""
    answer = await sandbox.put(
        "/_admin/ironclad/webhook", json={"url": f"{api_url}/webhooks/ironclad"}
    )
    assert answer.status_code == 200, answer.text
    yield sandbox


async def complete(ironclad: httpx.AsyncClient, attributes: dict[str, Any]) -> dict[str, Any]:
    """Create and complete a workflow; what the sandbox sent and the API answered."""
    created = await ironclad.post("/_admin/ironclad/workflows", json={"attributes": attributes})
    assert created.status_code == 201, created.text
    workflow_id = created.json()["workflow_id"]
    answer = await ironclad.post(f"/_admin/ironclad/workflows/{workflow_id}/complete", json={})
    assert answer.status_code == 200, answer.text
    sent: dict[str, Any] = answer.json()
    return sent


async def resend(api_url: str, sent: dict[str, Any], body: bytes | None = None) -> httpx.Response:
    raw = base64.b64decode(sent["message"]) if body is None else body
    async with httpx.AsyncClient(timeout=60) as client:
        return await client.post(
            f"{api_url}/webhooks/ironclad", content=raw, headers=sent["headers"]
        )


async def dead_letter_reasons(api_url: str, workflow_id: str) -> list[str]:
    """The reasons of the dead letters of a workflow's event, once the queue has made one."""
    async with httpx.AsyncClient(timeout=30) as client:
        for _ in range(240):
            dead = await client.get(
                f"{api_url}/api/dead-letters",
                params={"source": "ironclad", "status": "dead_letter"},
            )
            assert dead.status_code == 200, dead.text
            reasons = [
                item["reason"] or ""
                for item in dead.json()["items"]
                if item["event_id"] == f"{workflow_id}:workflow_completed"
            ]
            if reasons:
                return reasons
            await asyncio.sleep(0.25)
    return []


async def test_a_completed_ironclad_workflow_makes_an_active_contract_with_its_signed_pdf(
    ironclad: httpx.AsyncClient, api_url: str, temporal_client: Client, ledger: Ledger
) -> None:
    contract_id = new_contract_id()
    sent = await complete(ironclad, contract_attributes(contract_id))
    assert sent["delivery"]["status"] == 202, sent["delivery"]
    assert sent["delivery"]["body"]["queued"] is True
    workflow_id = sent["workflow_id"]

    status = await wait_for(
        temporal_client, contract_id, lambda s: s.stage == Stage.ACTIVE, what="active"
    )
    sha256 = status.refs["archive_document_id"]

    # The signed copy, as Ironclad's workflow document, archived with its hash verified.
    workflow = (
        await ironclad.get(f"/vendors/ironclad/public/api/v1/workflows/{workflow_id}")
    ).json()
    download = workflow["attributes"]["signedCopy"][0]["download"]
    original = await ironclad.get(f"/vendors/ironclad{download}")
    assert original.status_code == 200
    async with httpx.AsyncClient(timeout=30) as client:
        served = await client.get(f"{api_url}/api/contracts/{contract_id}/document")
    assert served.status_code == 200, served.text
    assert served.content == original.content
    assert hashlib.sha256(served.content).hexdigest() == sha256
    assert served.headers["etag"] == f'"{sha256}"'
    record = ledger.get_signed_document(contract_id)
    assert record is not None
    assert (record.sha256, record.size, record.source) == (
        sha256,
        len(original.content),
        "ironclad",
    )
    assert record.source_ref.startswith(f"{workflow_id}/signed-")

    # The terms came from the workflow's attributes.
    async with httpx.AsyncClient(timeout=30) as client:
        contract = (await client.get(f"{api_url}/api/contracts/{contract_id}")).json()
    assert contract["billing_model"] == "time_and_materials"
    assert contract["currency"] == "USD"

    # Ironclad resends the event: a duplicate. A changed byte: 401, nothing recorded.
    again = await resend(api_url, sent)
    assert again.status_code == 202, again.text
    assert again.json()["duplicate"] is True
    # A second webhook of the same completion (another event id): a duplicate too.
    second = await ironclad.post(f"/_admin/ironclad/workflows/{workflow_id}/complete", json={})
    assert (
        second.json()["headers"]["X-Ironclad-Webhook-Event-Id"]
        != sent["headers"]["X-Ironclad-Webhook-Event-Id"]
    )
    assert second.json()["delivery"]["status"] == 202, second.json()["delivery"]
    assert second.json()["delivery"]["body"]["duplicate"] is True
    raw = base64.b64decode(sent["message"])
    changed = raw.replace(b"workflow_completed", b"workflow_completes", 1)
    tampered = await resend(api_url, sent, changed)
    assert tampered.status_code == 401, tampered.text
    assert tampered.json()["error"]["code"] == "invalid_signature"


async def test_a_rotated_key_keeps_working_and_a_forged_signature_is_refused(
    ironclad: httpx.AsyncClient, api_url: str, temporal_client: Client
) -> None:
    # Make sure the API holds the current key, then Ironclad rotates its key pair.
    first = await complete(ironclad, contract_attributes(new_contract_id()))
    assert first["delivery"]["status"] == 202, first["delivery"]
    rotated = await ironclad.put("/_admin/ironclad/webhook", json={"rotate_key": True})
    assert rotated.status_code == 200
    contract_id = new_contract_id()
    sent = await complete(ironclad, contract_attributes(contract_id))
    assert sent["delivery"]["status"] == 202, sent["delivery"]
    await wait_for(temporal_client, contract_id, lambda s: s.stage == Stage.ACTIVE, what="active")

    # A webhook signed with a key Ironclad never published.
    raw = base64.b64decode(sent["message"])
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = sign_webhook(stranger, "webhookEventForged", raw, "nonce")
    async with httpx.AsyncClient(timeout=30) as client:
        refused = await client.post(
            f"{api_url}/webhooks/ironclad",
            content=raw,
            headers={"Content-Type": "application/json", **forged},
        )
    assert refused.status_code == 401, refused.text


async def test_a_missing_term_is_a_dead_letter_naming_the_ironclad_field(
    ironclad: httpx.AsyncClient, api_url: str
) -> None:
    sent = await complete(ironclad, contract_attributes(new_contract_id(), billingModel=None))
    # Recorded and answered at once; the intake's refusal makes the dead letter.
    assert sent["delivery"]["status"] in (202, 422), sent["delivery"]
    reasons = await dead_letter_reasons(api_url, sent["workflow_id"])
    assert reasons, "no dead letter"
    assert "attributes.billingModel is missing" in reasons[0], reasons
    assert "billing_model" in reasons[0]

    # Replayed as it is, it is refused again for the same reason.
    async with httpx.AsyncClient(timeout=60) as client:
        replayed = await client.post(
            f"{api_url}/api/dead-letters/ironclad/{sent['workflow_id']}:workflow_completed/replay"
        )
    assert replayed.status_code == 409, replayed.text
    assert "attributes.billingModel is missing" in replayed.json()["error"]["message"]


async def test_an_unsigned_webhook_is_refused_and_the_source_can_be_off(
    ironclad: httpx.AsyncClient, api_url: str, settings: Settings
) -> None:
    sent = await complete(ironclad, contract_attributes(new_contract_id()))
    raw = base64.b64decode(sent["message"])
    async with httpx.AsyncClient(timeout=30) as client:
        unsigned = await client.post(f"{api_url}/webhooks/ironclad", content=raw)
    assert unsigned.status_code == 401
    assert "X-Ironclad-Webhook-Event-Id" in unsigned.json()["error"]["message"]

    # The session's own settings take the c2c dialect only.
    with serve(settings) as only_c2c:
        async with httpx.AsyncClient(timeout=30) as client:
            off = await client.post(
                f"{only_c2c}/webhooks/ironclad", content=raw, headers=sent["headers"]
            )
    assert off.status_code == 404
    assert off.json()["error"]["code"] == "source_disabled"
