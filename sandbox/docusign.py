"""DocuSign stand-in (``/vendors/docusign``): envelopes, their custom fields and combined PDF
on DocuSign's eSignature REST paths, and Connect messages when an envelope completes.

The REST paths are DocuSign's own (``/restapi/v2.1/accounts/{accountId}/envelopes/...``), as
DocuSign's Python client calls them; errors are DocuSign's ``{"errorCode", "message"}``. A
request needs ``Authorization: Bearer <token>`` when the sandbox has a token configured
(``C2C_DOCUSIGN_ACCESS_TOKEN``). Test and demo control is under ``/_admin/docusign``: create an
envelope (sent), complete it, which sends a JSON (SIM) Connect ``envelope-completed`` message
signed with every configured HMAC key (``X-DocuSign-Signature-1..N``), and change the keys.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any
from uuid import NAMESPACE_URL, uuid5

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import JSON, Text
from sqlmodel import Field as SqlField

from c2c.docusign_hmac import signature_headers
from sandbox.db import Db, Row, UtcDateTime, find, next_number, utcnow

router = APIRouter(tags=["docusign"])
admin_router = APIRouter(tags=["admin"])

#: The Connect configuration id the sandbox's messages name.
CONFIGURATION_ID = 10501
DEFAULT_ACCOUNT = "c2c-sandbox-account"


class DocuSignEnvelope(Row, table=True):
    """An envelope: its status, custom fields and combined document."""

    __tablename__ = "sbx_docusign_envelope"

    envelope_id: str = SqlField(unique=True)
    account_id: str = SqlField(index=True)
    status: str
    email_subject: str
    sender_email: str
    sender_name: str
    text_custom_fields: dict[str, str] = SqlField(default_factory=dict, sa_type=JSON)
    list_custom_fields: dict[str, str] = SqlField(default_factory=dict, sa_type=JSON)
    #: The combined PDF, base64.
    document: str = SqlField(sa_type=Text)
    created_at: datetime = SqlField(sa_type=UtcDateTime)
    completed_at: datetime | None = SqlField(default=None, sa_type=UtcDateTime)


class ConnectConfig:
    """Where Connect messages go and the HMAC keys that sign them."""

    def __init__(self, url: str, keys: list[str], token: str | None) -> None:
        self.url = url
        self.keys = keys
        self.token = token


def config_of(request: Request) -> ConnectConfig:
    config: ConnectConfig = request.app.state.docusign
    return config


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"errorCode": code, "message": message}, status_code=status)


def _authorized(request: Request) -> JSONResponse | None:
    token = config_of(request).token
    if token is None:
        return None
    if request.headers.get("Authorization") != f"Bearer {token}":
        return _error(401, "AUTHORIZATION_INVALID_TOKEN", "The access token provided is invalid.")
    return None


def _envelope(db: Db, account_id: str, envelope_id: str) -> DocuSignEnvelope | None:
    with db.read() as session:
        found = find(session, DocuSignEnvelope, DocuSignEnvelope.envelope_id, envelope_id)
    if found is None or found.account_id != account_id:
        return None
    return found


def _missing(envelope_id: str) -> JSONResponse:
    return _error(404, "ENVELOPE_DOES_NOT_EXIST", f"The envelope {envelope_id} does not exist.")


def _stamp(at: datetime | None) -> str:
    # DocuSign writes seven digits of fractional seconds.
    return "" if at is None else at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def custom_fields_of(envelope: DocuSignEnvelope) -> dict[str, Any]:
    """The envelope's custom fields as DocuSign writes them."""
    text = [
        {"fieldId": str(n), "name": name, "show": "true", "required": "false", "value": value}
        for n, (name, value) in enumerate(envelope.text_custom_fields.items(), 1)
    ]
    listed = [
        {
            "fieldId": str(n),
            "name": name,
            "show": "true",
            "required": "false",
            "value": value,
            "listItems": [value],
        }
        for n, (name, value) in enumerate(envelope.list_custom_fields.items(), 1000)
    ]
    return {"textCustomFields": text, "listCustomFields": listed}


def summary_of(envelope: DocuSignEnvelope, *, custom_fields: bool = True) -> dict[str, Any]:
    """The envelope summary of a Connect message and of ``GET .../envelopes/{id}``."""
    base = f"/envelopes/{envelope.envelope_id}"
    summary: dict[str, Any] = {
        "status": envelope.status,
        "emailSubject": envelope.email_subject,
        "envelopeId": envelope.envelope_id,
        "envelopeUri": base,
        "documentsUri": f"{base}/documents",
        "documentsCombinedUri": f"{base}/documents/combined",
        "customFieldsUri": f"{base}/custom_fields",
        "createdDateTime": _stamp(envelope.created_at),
        "sentDateTime": _stamp(envelope.created_at),
        "statusChangedDateTime": _stamp(envelope.completed_at or envelope.created_at),
        "sender": {
            "userName": envelope.sender_name,
            "userId": str(uuid5(NAMESPACE_URL, envelope.sender_email)),
            "accountId": envelope.account_id,
            "email": envelope.sender_email,
        },
    }
    if envelope.completed_at is not None:
        summary["completedDateTime"] = _stamp(envelope.completed_at)
    if custom_fields:
        summary["customFields"] = custom_fields_of(envelope)
    return summary


# ---------------------------------------------------------------- DocuSign's REST paths

_ENVELOPE = "/restapi/v2.1/accounts/{account_id}/envelopes/{envelope_id}"


def _found(
    request: Request, db: Db, account_id: str, envelope_id: str
) -> DocuSignEnvelope | Response:
    """The envelope a REST call names, or DocuSign's refusal (token, unknown envelope)."""
    refused = _authorized(request)
    if refused is not None:
        return refused
    envelope = _envelope(db, account_id, envelope_id)
    return _missing(envelope_id) if envelope is None else envelope


@router.get(_ENVELOPE, response_model=None)
def get_envelope(account_id: str, envelope_id: str, request: Request, db: Db) -> Response:
    envelope = _found(request, db, account_id, envelope_id)
    if isinstance(envelope, Response):
        return envelope
    return JSONResponse(summary_of(envelope, custom_fields=False))


@router.get(f"{_ENVELOPE}/custom_fields", response_model=None)
def list_custom_fields(account_id: str, envelope_id: str, request: Request, db: Db) -> Response:
    envelope = _found(request, db, account_id, envelope_id)
    if isinstance(envelope, Response):
        return envelope
    return JSONResponse(custom_fields_of(envelope))


@router.get(f"{_ENVELOPE}/documents/{{document_id}}", response_model=None)
def get_document(
    account_id: str, envelope_id: str, document_id: str, request: Request, db: Db
) -> Response:
    envelope = _found(request, db, account_id, envelope_id)
    if isinstance(envelope, Response):
        return envelope
    if document_id not in ("combined", "1"):
        return _error(400, "INVALID_DOCUMENT_ID", f"The document {document_id} does not exist.")
    return Response(
        base64.b64decode(envelope.document),
        media_type="application/pdf",
        headers={"Content-Disposition": f'file; filename="{envelope.envelope_id}.pdf"'},
    )


# ---------------------------------------------------------------- test and demo control


class EnvelopeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account_id: str = Field(default=DEFAULT_ACCOUNT, min_length=1, max_length=64)
    envelope_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9\-]{1,64}$")
    email_subject: str = Field(default="Please sign this statement of work", max_length=100)
    sender_email: str = Field(default="contracts@example.com", max_length=100)
    sender_name: str = Field(default="Contracts Desk", max_length=100)
    text_custom_fields: dict[str, str] = Field(default_factory=dict)
    list_custom_fields: dict[str, str] = Field(default_factory=dict)
    #: The combined PDF, base64; a one-page PDF naming the envelope when left out.
    document_base64: str | None = None


class CompleteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: Leave the custom fields out of the Connect message (the receiver reads them by REST).
    include_custom_fields: bool = True
    #: Send the Connect message (else only complete the envelope).
    send: bool = True


class ConnectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = None
    keys: list[str] | None = None
    #: The bearer token the REST paths require; an empty string: none.
    token: str | None = None


def sample_pdf(text: str) -> bytes:
    """A one-page PDF showing ``text``."""
    safe = "".join(c for c in text if c.isalnum() or c in " .:-_/")[:80]
    stream = f"BT /F1 14 Tf 72 720 Td (Signed: {safe}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


@admin_router.post("/envelopes", status_code=201, response_model=None)
def create_envelope(body: EnvelopeIn, db: Db) -> dict[str, Any] | JSONResponse:
    """An envelope, sent for signature."""
    with db.write() as session:
        number = next_number(session, "docusign-envelope")
        envelope_id = body.envelope_id or str(uuid5(NAMESPACE_URL, f"c2c-sandbox/{number}"))
        if find(session, DocuSignEnvelope, DocuSignEnvelope.envelope_id, envelope_id):
            return _error(409, "ENVELOPE_EXISTS", f"envelope {envelope_id} exists")
        document = (
            body.document_base64
            or base64.b64encode(sample_pdf(f"{body.email_subject} {envelope_id}")).decode()
        )
        envelope = DocuSignEnvelope(
            envelope_id=envelope_id,
            account_id=body.account_id,
            status="sent",
            email_subject=body.email_subject,
            sender_email=body.sender_email,
            sender_name=body.sender_name,
            text_custom_fields=body.text_custom_fields,
            list_custom_fields=body.list_custom_fields,
            document=document,
            created_at=utcnow(),
        )
        session.add(envelope)
    return {"account_id": body.account_id, "envelope_id": envelope_id, "status": "sent"}


def connect_message(envelope: DocuSignEnvelope, *, custom_fields: bool) -> dict[str, Any]:
    """The JSON (SIM) Connect message of an envelope's status."""
    return {
        "event": f"envelope-{envelope.status}",
        "apiVersion": "v2.1",
        "uri": f"/restapi/v2.1/accounts/{envelope.account_id}/envelopes/{envelope.envelope_id}",
        "retryCount": 0,
        "configurationId": CONFIGURATION_ID,
        "generatedDateTime": _stamp(utcnow()),
        "data": {
            "accountId": envelope.account_id,
            "userId": str(uuid5(NAMESPACE_URL, envelope.sender_email)),
            "envelopeId": envelope.envelope_id,
            "envelopeSummary": summary_of(envelope, custom_fields=custom_fields),
        },
    }


@admin_router.post("/envelopes/{envelope_id}/complete", response_model=None)
async def complete_envelope(
    envelope_id: str, body: CompleteIn, request: Request, db: Db
) -> dict[str, Any] | JSONResponse:
    """Complete an envelope and send its Connect message; the answer has the message's exact
    body and headers, and what the receiver answered."""
    with db.write() as session:
        envelope = find(session, DocuSignEnvelope, DocuSignEnvelope.envelope_id, envelope_id)
        if envelope is None:
            return _missing(envelope_id)
        if envelope.completed_at is None:
            envelope.status = "completed"
            envelope.completed_at = utcnow()
            session.add(envelope)
        message = connect_message(envelope, custom_fields=body.include_custom_fields)
    raw = json.dumps(message).encode()
    config = config_of(request)
    headers = {"Content-Type": "application/json", **signature_headers(raw, config.keys)}
    sent: dict[str, Any] = {"status": None, "body": None}
    if body.send:
        try:
            async with httpx.AsyncClient(timeout=30.0) as client:
                answer = await client.post(config.url, content=raw, headers=headers)
            sent = {"status": answer.status_code, "body": _json_or_text(answer)}
        except httpx.HTTPError as exc:
            sent = {"status": None, "body": f"{type(exc).__name__}: {exc}"}
    return {
        "envelope_id": envelope_id,
        "message": base64.b64encode(raw).decode(),
        "headers": headers,
        "delivery": sent,
    }


def _json_or_text(answer: httpx.Response) -> Any:
    try:
        return answer.json()
    except ValueError:
        return answer.text


@admin_router.get("/connect")
def get_connect(request: Request) -> dict[str, Any]:
    config = config_of(request)
    return {"url": config.url, "keys": len(config.keys)}


@admin_router.put("/connect")
def put_connect(body: ConnectIn, request: Request) -> dict[str, Any]:
    """Change where Connect messages go, or the active HMAC keys (a key rotation)."""
    config = config_of(request)
    if body.url is not None:
        config.url = body.url
    if body.keys is not None:
        config.keys = [key for key in body.keys if key]
    if body.token is not None:
        config.token = body.token or None
    return {"url": config.url, "keys": len(config.keys), "token": config.token is not None}
