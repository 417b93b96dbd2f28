"""Ironclad's webhook signature and the verification key the API keeps, against the sandbox's
Ironclad over HTTP: a signature verifies only the exact bytes, and forged webhooks make c2c
fetch the key at most once per refresh interval."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from c2c.ironclad_webhook import (
    IroncladSignatureError,
    VerificationKeys,
    VerificationKeyUnavailable,
    load_public_key,
    sign_webhook,
    verify_webhook,
)
from c2c.ports import free_port


@pytest.fixture(scope="module")
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_a_signature_verifies_its_bytes_only(private_key: rsa.RSAPrivateKey) -> None:
    body = b'{"payload": {"event": "workflow_completed", "workflowID": "wf-1"}}'
    headers = sign_webhook(private_key, "webhookEvent1", body, "n0nce")
    public = private_key.public_key()
    assert verify_webhook(headers, body, [public]) == "webhookEvent1"
    with pytest.raises(IroncladSignatureError, match="does not verify"):
        verify_webhook(headers, body.replace(b"wf-1", b"wf-2"), [public])
    with pytest.raises(IroncladSignatureError, match="does not verify"):
        verify_webhook({**headers, "X-Ironclad-Webhook-Event-Id": "other"}, body, [public])
    bad = json.loads(headers["X-Ironclad-Webhook-Verification"])
    bad["encoding"] = "hex"
    with pytest.raises(IroncladSignatureError, match="encoding"):
        verify_webhook(
            {**headers, "X-Ironclad-Webhook-Verification": json.dumps(bad)}, body, [public]
        )
    with pytest.raises(IroncladSignatureError, match="X-Ironclad-Webhook-Verification"):
        verify_webhook({"X-Ironclad-Webhook-Event-Id": "e"}, body, [public])


async def test_forged_webhooks_fetch_the_key_at_most_once_per_interval(
    sandbox: httpx.AsyncClient, sandbox_url: str
) -> None:
    keys = VerificationKeys(f"{sandbox_url}/vendors/ironclad", refresh_s=3600)
    sandbox_key: dict[str, Any] = (await sandbox.get("/_admin/ironclad/webhook")).json()
    assert load_public_key(sandbox_key["public_key"]) is not None
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    body = b'{"payload": {"event": "workflow_completed", "workflowID": "wf-forged"}}'
    for n in range(5):
        with pytest.raises(IroncladSignatureError):
            await keys.verify(sign_webhook(stranger, f"forged{n}", body, "x"), body)
    # The first request fetched the key; the bound refused every fetch after it.
    assert keys.fetches == 1
    # Malformed headers cost no fetch either.
    fresh = VerificationKeys(f"{sandbox_url}/vendors/ironclad", refresh_s=0)
    with pytest.raises(IroncladSignatureError):
        await fresh.verify({"X-Ironclad-Webhook-Event-Id": "e"}, body)
    assert fresh.fetches == 0


async def test_a_rotation_is_followed_and_the_previous_key_still_verifies(
    sandbox: httpx.AsyncClient, sandbox_url: str
) -> None:
    keys = VerificationKeys(f"{sandbox_url}/vendors/ironclad", refresh_s=0)
    created = await sandbox.post("/_admin/ironclad/workflows", json={"attributes": {}})
    workflow_id = created.json()["workflow_id"]
    before = (
        await sandbox.post(
            f"/_admin/ironclad/workflows/{workflow_id}/complete", json={"send": False}
        )
    ).json()
    body_before = base64.b64decode(before["message"])
    assert await keys.verify(before["headers"], body_before)
    await sandbox.put("/_admin/ironclad/webhook", json={"rotate_key": True})
    after = (
        await sandbox.post(
            f"/_admin/ironclad/workflows/{workflow_id}/complete", json={"send": False}
        )
    ).json()
    assert await keys.verify(after["headers"], base64.b64decode(after["message"]))
    assert keys.fetches == 2
    # Signed before the rotation, delivered after it: the key it replaced is kept.
    assert await keys.verify(before["headers"], body_before)
    assert keys.fetches == 2


async def test_an_unreachable_ironclad_is_said_so_and_not_asked_again_at_once() -> None:
    keys = VerificationKeys(f"http://127.0.0.1:{free_port()}", refresh_s=3600, timeout_s=2)
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(VerificationKeyUnavailable, match="ConnectError"):
        await keys.verify(sign_webhook(private, "e", b"{}", "n"), b"{}")
    with pytest.raises(VerificationKeyUnavailable, match="the last fetch failed"):
        await keys.verify(sign_webhook(private, "e", b"{}", "n"), b"{}")
    assert keys.fetches == 1
