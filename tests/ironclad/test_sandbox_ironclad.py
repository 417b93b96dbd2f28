"""The sandbox's Ironclad over HTTP: the verification key, a workflow and its signed copy,
the record a completed workflow makes and its attachment, and Ironclad's refusals."""

from __future__ import annotations

import base64

import httpx

from c2c.ironclad_webhook import load_public_key, verify_webhook

API = "/vendors/ironclad/public/api/v1"


async def test_a_completed_workflow_has_a_record_and_one_signed_copy(
    sandbox: httpx.AsyncClient,
) -> None:
    created = await sandbox.post(
        "/_admin/ironclad/workflows",
        json={"title": "SOW 7", "attributes": {"contractId": "C-7", "paymentTermsDays": 45}},
    )
    assert created.status_code == 201, created.text
    workflow_id = created.json()["workflow_id"]
    active = (await sandbox.get(f"{API}/workflows/{workflow_id}")).json()
    assert active["status"] == "active"
    assert "signedCopy" not in active["attributes"]

    done = await sandbox.post(
        f"/_admin/ironclad/workflows/{workflow_id}/complete", json={"send": False}
    )
    assert done.status_code == 200, done.text
    sent = done.json()
    body = base64.b64decode(sent["message"])
    key = load_public_key((await sandbox.get(f"{API}/webhooks/verification-key")).text)
    assert verify_webhook(sent["headers"], body, [key]).startswith("webhookEvent")

    workflow = (await sandbox.get(f"{API}/workflows/{workflow_id}")).json()
    assert workflow["status"] == "completed"
    assert workflow["attributes"]["paymentTermsDays"] == 45
    document = await sandbox.get(
        f"/vendors/ironclad{workflow['attributes']['signedCopy'][0]['download']}"
    )
    assert document.status_code == 200
    assert document.content.startswith(b"%PDF-")

    record = (await sandbox.get(f"{API}/records/{sent['record_id']}")).json()
    assert record["source"] == {"type": "workflow", "workflowId": workflow_id}
    assert record["properties"]["contractId"] == {"type": "string", "value": "C-7"}
    attachment = await sandbox.get(
        f"/vendors/ironclad{record['attachments']['signedCopy']['href']}"
    )
    assert attachment.content == document.content


async def test_unknown_things_and_wrong_tokens_are_refused_as_ironclad_refuses(
    sandbox: httpx.AsyncClient,
) -> None:
    missing = await sandbox.get(f"{API}/workflows/no-such-workflow")
    assert missing.status_code == 404
    assert missing.json()["code"] == "NOT_FOUND"
    assert (await sandbox.get(f"{API}/records/no-such-record")).status_code == 404
    await sandbox.put("/_admin/ironclad/webhook", json={"token": "sandbox-token"})
    try:
        refused = await sandbox.get(f"{API}/webhooks/verification-key")
        allowed = await sandbox.get(
            f"{API}/webhooks/verification-key", headers={"Authorization": "Bearer sandbox-token"}
        )
    finally:
        await sandbox.put("/_admin/ironclad/webhook", json={"token": ""})
    assert refused.status_code == 401
    assert allowed.status_code == 200
    assert "BEGIN PUBLIC KEY" in allowed.text
