"""The sandbox's DocuSign: envelopes completed with a Connect message of DocuSign's published
shape, and the eSignature REST paths as DocuSign's own Python client reads them."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from jsonschema import Draft202012Validator
from pydantic import SecretStr

from c2c.docusign_hmac import verify_connect
from c2c.settings import Settings
from connectors.docusign import DocuSignClient
from domain.errors import BusinessError
from tests.docusign.connect_schema import connect_schema
from tests.docusign.support import contract_fields


@pytest_asyncio.fixture
async def connect_keys(sandbox: httpx.AsyncClient) -> AsyncIterator[list[str]]:
    """Sign the sandbox's Connect messages with two keys, as during a rotation."""
    keys = ["sbx-key-old", "sbx-key-new"]
    answer = await sandbox.put("/_admin/docusign/connect", json={"keys": keys})
    assert answer.status_code == 200, answer.text
    yield keys
    await sandbox.put("/_admin/docusign/connect", json={"keys": [], "token": ""})


async def new_envelope(sandbox: httpx.AsyncClient, **fields: str) -> str:
    answer = await sandbox.post(
        "/_admin/docusign/envelopes",
        json={"text_custom_fields": contract_fields("T-sbx", **fields)},
    )
    assert answer.status_code == 201, answer.text
    envelope_id: str = answer.json()["envelope_id"]
    return envelope_id


async def test_a_completed_envelope_sends_a_signed_message_of_the_published_shape(
    sandbox: httpx.AsyncClient, connect_keys: list[str]
) -> None:
    envelope_id = await new_envelope(sandbox)
    answer = await sandbox.post(
        f"/_admin/docusign/envelopes/{envelope_id}/complete", json={"send": False}
    )
    assert answer.status_code == 200, answer.text
    sent = answer.json()
    raw = base64.b64decode(sent["message"])
    message = json.loads(raw)
    Draft202012Validator(connect_schema()).validate(message)
    assert message["event"] == "envelope-completed"
    assert message["data"]["envelopeId"] == envelope_id
    summary = message["data"]["envelopeSummary"]
    assert summary["status"] == "completed" and summary["completedDateTime"]
    names = {f["name"] for f in summary["customFields"]["textCustomFields"]}
    assert {"contract_id", "billing_model"} <= names
    # One header per active key, each verifying with its key alone.
    assert verify_connect(sent["headers"], raw, ["sbx-key-old"]) == 1
    assert verify_connect(sent["headers"], raw, ["sbx-key-new"]) == 2

    bare = await sandbox.post(
        f"/_admin/docusign/envelopes/{envelope_id}/complete",
        json={"send": False, "include_custom_fields": False},
    )
    plain = json.loads(base64.b64decode(bare.json()["message"]))
    Draft202012Validator(connect_schema()).validate(plain)
    assert "customFields" not in plain["data"]["envelopeSummary"]


async def test_docusigns_client_reads_custom_fields_and_the_combined_pdf(
    sandbox: httpx.AsyncClient, sandbox_url: str, connect_keys: list[str]
) -> None:
    token = f"tok-{uuid.uuid4().hex[:8]}"
    await sandbox.put("/_admin/docusign/connect", json={"token": token})
    envelope_id = await new_envelope(sandbox, billing_model="retainer")
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, sandbox_url=sandbox_url, docusign_access_token=SecretStr(token)
    )
    client = DocuSignClient.from_settings(settings)
    fields = await client.custom_fields("c2c-sandbox-account", envelope_id)
    assert fields.values["billing_model"] == "retainer"
    pdf = await client.combined_document("c2c-sandbox-account", envelope_id)
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")

    with pytest.raises(BusinessError) as missing:
        await client.combined_document("c2c-sandbox-account", str(uuid.uuid4()))
    assert missing.value.rejection.code == "ENVELOPE_DOES_NOT_EXIST"
    assert missing.value.rejection.status == 404

    wrong = DocuSignClient.from_settings(
        settings.model_copy(update={"docusign_access_token": SecretStr("not-it")})
    )
    with pytest.raises(BusinessError) as refused:
        await wrong.custom_fields("c2c-sandbox-account", envelope_id)
    assert refused.value.rejection.code == "AUTHORIZATION_INVALID_TOKEN"
