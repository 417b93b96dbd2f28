"""A contract from a DocuSign envelope to ``active``, over real HTTP: the sandbox completes
the envelope and sends its signed Connect message to the API, the event queue starts the
contract, the worker provisions it and archives the signed PDF; the API serves the PDF once
its hash is verified. Resends are duplicates, a changed byte is 401, a rotated key still
verifies, a missing term is a dead letter naming the field."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr
from temporalio.client import Client
from typer.testing import CliRunner

from c2c.docusign_hmac import signature_headers
from c2c.settings import Settings
from domain.models import ContractApproved
from domain.names import Stage
from ledger import Ledger
from ledger.archive import LocalArchive, archive_from_settings
from starter.api import documents
from starter.api.contracts import start_contract
from starter.cli.main import app as cli
from tests.docusign.support import connect_message, contract_fields
from tests.support import approval_payload, new_contract_id, serve
from tests.workflows.helpers import wait_for

pytestmark = pytest.mark.usefixtures("worker")

#: The keys c2c accepts: the one being retired and its replacement.
C2C_KEYS = "connect-key-2025,connect-key-2026"


@pytest.fixture(scope="module")
def api_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "clm_sources": ["c2c", "docusign"],
            "docusign_connect_keys": SecretStr(C2C_KEYS),
            "webhook_queue": True,
        }
    )


@pytest.fixture(scope="module")
def api_url(api_settings: Settings) -> Iterator[str]:
    with serve(api_settings) as url:
        yield url


@pytest_asyncio.fixture
async def docusign(sandbox: httpx.AsyncClient, api_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The sandbox's DocuSign, sending Connect messages to the API with the old key."""
    answer = await sandbox.put(
        "/_admin/docusign/connect",
        json={"url": f"{api_url}/webhooks/docusign", "keys": ["connect-key-2025"]},
    )
    assert answer.status_code == 200, answer.text
    yield sandbox
    await sandbox.put("/_admin/docusign/connect", json={"keys": []})


async def complete(docusign: httpx.AsyncClient, fields: dict[str, str]) -> dict[str, Any]:
    """Create and complete an envelope; what the sandbox sent and the API answered."""
    created = await docusign.post("/_admin/docusign/envelopes", json={"text_custom_fields": fields})
    assert created.status_code == 201, created.text
    envelope_id = created.json()["envelope_id"]
    answer = await docusign.post(f"/_admin/docusign/envelopes/{envelope_id}/complete", json={})
    assert answer.status_code == 200, answer.text
    sent: dict[str, Any] = answer.json()
    return sent


async def resend(api_url: str, sent: dict[str, Any], body: bytes | None = None) -> httpx.Response:
    raw = base64.b64decode(sent["message"]) if body is None else body
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.post(
            f"{api_url}/webhooks/docusign", content=raw, headers=sent["headers"]
        )


async def test_an_envelope_completed_in_docusign_makes_an_active_contract_with_its_signed_pdf(
    docusign: httpx.AsyncClient,
    api_url: str,
    api_settings: Settings,
    temporal_client: Client,
    ledger: Ledger,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    contract_id = new_contract_id()
    sent = await complete(docusign, contract_fields(contract_id))
    assert sent["delivery"]["status"] == 202, sent["delivery"]
    assert sent["delivery"]["body"]["queued"] is True
    assert sent["delivery"]["body"]["contract_id"] == contract_id

    status = await wait_for(
        temporal_client, contract_id, lambda s: s.stage == Stage.ACTIVE, what="active"
    )
    sha256 = status.refs["archive_document_id"]

    # The signed PDF, as DocuSign's combined document, archived and linked from the ERP.
    envelope_id = json.loads(base64.b64decode(sent["message"]))["data"]["envelopeId"]
    async with httpx.AsyncClient(timeout=30) as client:
        original = await docusign.get(
            f"/vendors/docusign/restapi/v2.1/accounts/c2c-sandbox-account/envelopes/"
            f"{envelope_id}/documents/combined"
        )
        served = await client.get(f"{api_url}/api/contracts/{contract_id}/document")
    assert served.status_code == 200, served.text
    assert served.headers["content-type"] == "application/pdf"
    assert served.content == original.content
    assert hashlib.sha256(served.content).hexdigest() == sha256
    assert served.headers["etag"] == f'"{sha256}"'
    record = ledger.get_signed_document(contract_id)
    assert record is not None
    assert (record.sha256, record.size, record.source) == (
        sha256,
        len(original.content),
        "docusign",
    )
    assert record.source_ref == f"c2c-sandbox-account/{envelope_id}"
    erp = (await docusign.get("/erp/v1/contracts", params={"contract_id": contract_id})).json()
    assert erp["items"][0]["document_url"].endswith(f"/api/contracts/{contract_id}/document")
    assert erp["items"][0]["document_sha256"] == sha256

    # The CLI downloads the same bytes.
    monkeypatch.setattr(documents, "get_settings", lambda: api_settings)
    target = tmp_path / "signed.pdf"
    run = CliRunner().invoke(cli, ["contracts", "document", contract_id, "-o", str(target)])
    assert run.exit_code == 0, run.output
    assert target.read_bytes() == original.content

    # DocuSign resends the message: a duplicate. A changed byte: 401, nothing recorded.
    again = await resend(api_url, sent)
    assert again.status_code == 202, again.text
    assert again.json()["duplicate"] is True
    raw = base64.b64decode(sent["message"])
    changed = raw.replace(b'"completed"', b'"complete!"', 1)
    tampered = await resend(api_url, sent, changed)
    assert tampered.status_code == 401, tampered.text
    assert tampered.json()["error"]["code"] == "invalid_signature"

    # An altered archive object is reported, never served.
    store = archive_from_settings(api_settings)
    assert isinstance(store, LocalArchive)
    path = store.path_of(sha256)
    path.chmod(0o644)
    path.write_bytes(original.content + b"% changed")
    async with httpx.AsyncClient(timeout=30) as client:
        altered = await client.get(f"{api_url}/api/contracts/{contract_id}/document")
        path.unlink()
        gone = await client.get(f"{api_url}/api/contracts/{contract_id}/document")
        none = await client.get(f"{api_url}/api/contracts/{new_contract_id()}/document")
    assert altered.status_code == 502
    assert altered.json()["error"]["code"] == "archive_document_altered"
    assert gone.status_code == 502
    assert gone.json()["error"]["code"] == "archive_document_missing"
    assert none.status_code == 404
    run = CliRunner().invoke(cli, ["contracts", "document", contract_id, "-o", str(target)])
    assert run.exit_code == 1
    assert "archive_document_missing" in run.output


async def test_a_rotated_key_keeps_working_and_an_unknown_one_is_refused(
    docusign: httpx.AsyncClient, api_url: str, temporal_client: Client
) -> None:
    # DocuSign now signs with the new key only (the old one removed there first).
    await docusign.put("/_admin/docusign/connect", json={"keys": ["connect-key-2026"]})
    contract_id = new_contract_id()
    sent = await complete(docusign, contract_fields(contract_id))
    assert sent["delivery"]["status"] == 202, sent["delivery"]
    await wait_for(temporal_client, contract_id, lambda s: s.stage == Stage.ACTIVE, what="active")

    await docusign.put("/_admin/docusign/connect", json={"keys": ["someone-elses-key"]})
    refused = await complete(docusign, contract_fields(new_contract_id()))
    assert refused["delivery"]["status"] == 401


async def test_a_missing_term_is_a_dead_letter_naming_the_field(
    docusign: httpx.AsyncClient, api_url: str
) -> None:
    fields = contract_fields(new_contract_id())
    del fields["billing_model"]
    sent = await complete(docusign, fields)
    assert sent["delivery"]["status"] == 422, sent["delivery"]
    error = sent["delivery"]["body"]["error"]
    assert error["field"] == "customFields.billing_model"
    assert "customFields.billing_model is missing" in error["message"]
    async with httpx.AsyncClient(timeout=30) as client:
        letters = await client.get(
            f"{api_url}/api/dead-letters", params={"source": "docusign", "status": "dead_letter"}
        )
    assert letters.status_code == 200, letters.text
    mine = [
        item
        for item in letters.json()["items"]
        if "customFields.billing_model" in (item["reason"] or "")
        and item["event_id"].endswith(":completed")
    ]
    assert mine, letters.json()
    # Replayed as it is, it is refused again for the same reason.
    async with httpx.AsyncClient(timeout=30) as client:
        replayed = await client.post(
            f"{api_url}/api/dead-letters/docusign/{mine[-1]['event_id']}/replay"
        )
    assert replayed.status_code == 409, replayed.text
    assert replayed.json()["error"]["code"] == "replay_failed"
    assert "customFields.billing_model is missing" in replayed.json()["error"]["message"]


async def test_a_document_docusign_cannot_give_holds_the_contract_until_an_operator_decides(
    api_url: str, api_settings: Settings, temporal_client: Client
) -> None:
    contract_id = new_contract_id()
    approved = ContractApproved.model_validate(
        approval_payload(
            contract_id,
            signed_document={"account_id": "c2c-sandbox-account", "envelope_id": "no-such-env"},
        )
    )
    await start_contract(temporal_client, approved, task_queue=api_settings.task_queue)
    held = await wait_for(
        temporal_client, contract_id, lambda s: s.stage == Stage.ON_HOLD, what="on hold"
    )
    [exception] = held.open_exceptions
    assert (exception.system, exception.code) == ("docusign", "ENVELOPE_DOES_NOT_EXIST")
    async with httpx.AsyncClient(timeout=60) as client:
        skipped = await client.post(
            f"{api_url}/api/exceptions/{exception.exception_id}/skip",
            json={"operator": "ops@c2c.example", "note": "signed copy filed by hand"},
        )
    assert skipped.status_code == 200, skipped.text
    active = await wait_for(
        temporal_client, contract_id, lambda s: s.stage == Stage.ACTIVE, what="active"
    )
    assert "archive_document_id" not in active.refs


async def test_a_message_without_custom_fields_is_a_dead_letter_naming_the_setting(
    docusign: httpx.AsyncClient, api_url: str
) -> None:
    """The API never calls DocuSign: Connect must send the envelope's custom fields, and a
    message without them is kept as a dead letter saying which Connect setting sends them."""
    contract_id = new_contract_id()
    created = await docusign.post(
        "/_admin/docusign/envelopes", json={"text_custom_fields": contract_fields(contract_id)}
    )
    envelope_id = created.json()["envelope_id"]
    answer = await docusign.post(
        f"/_admin/docusign/envelopes/{envelope_id}/complete",
        json={"include_custom_fields": False},
    )
    delivery = answer.json()["delivery"]
    assert delivery["status"] in (202, 422), delivery  # refused at once, or by the event queue
    reasons: list[str] = []
    async with httpx.AsyncClient(timeout=30) as client:
        for _ in range(120):
            dead = await client.get(f"{api_url}/api/dead-letters", params={"source": "docusign"})
            items = dead.json()["items"]
            reasons = [i["reason"] for i in items if i["event_id"].startswith(envelope_id)]
            if reasons:
                break
            await asyncio.sleep(0.25)
    assert reasons and "Include Custom Fields" in reasons[0], reasons


async def test_an_unusable_mapping_file_is_a_503_for_docusign_to_retry(
    api_settings: Settings, tmp_path: Path
) -> None:
    bad = tmp_path / "mapping.json"
    bad.write_text('{"fields": {"title": {"custom_fields": "x"}}}')
    misconfigured = api_settings.model_copy(update={"docusign_mapping_file": bad})
    body = json.dumps(connect_message("e-503", contract_fields(new_contract_id()))).encode()
    with serve(misconfigured) as url:
        async with httpx.AsyncClient(timeout=30) as client:
            answer = await client.post(
                f"{url}/webhooks/docusign",
                content=body,
                headers=signature_headers(body, ["connect-key-2026"]),
            )
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["code"] == "docusign_mapping_invalid"
    assert "unknown keys" in answer.json()["error"]["message"]


async def test_other_envelope_events_are_ignored_and_sources_can_be_turned_off(
    settings: Settings, api_url: str
) -> None:
    body = json.dumps(
        {"event": "envelope-sent", "data": {"accountId": "a", "envelopeId": str(uuid.uuid4())}}
    ).encode()
    headers = signature_headers(body, ["connect-key-2026"])
    async with httpx.AsyncClient(timeout=30) as client:
        sent = await client.post(f"{api_url}/webhooks/docusign", content=body, headers=headers)
    assert sent.status_code == 200
    assert sent.json() == {"ignored": True, "event": "envelope-sent"}

    # The session's own settings take the c2c dialect only.
    with serve(settings) as only_c2c:
        async with httpx.AsyncClient(timeout=30) as client:
            off = await client.post(f"{only_c2c}/webhooks/docusign", content=body, headers=headers)
    assert off.status_code == 404
    assert off.json()["error"]["code"] == "source_disabled"
    docusign_only = settings.model_copy(update={"clm_sources": ["docusign"]})
    with serve(docusign_only) as url:
        async with httpx.AsyncClient(timeout=30) as client:
            clm = await client.post(f"{url}/webhooks/clm", content=b"{}")
    assert clm.status_code == 404
    assert clm.json()["error"]["code"] == "source_disabled"
