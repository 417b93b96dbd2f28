"""Ironclad stand-in (``/vendors/ironclad``): workflows, their attributes and signed copy, the
records completed workflows make, and the webhook verification key, on Ironclad's public API
paths (``/public/api/v1/...``); and signed ``workflow_completed`` webhooks.

Errors are ``{"code", "message"}``. A request needs ``Authorization: Bearer <token>`` when the
sandbox has a token configured (``C2C_IRONCLAD_ACCESS_TOKEN``). Webhooks are signed as Ironclad
signs them: RSA-SHA256 over the event id, the raw body and a nonce, with a key pair the sandbox
makes at start; its public half is what ``GET /public/api/v1/webhooks/verification-key``
answers. Test and demo control is under ``/_admin/ironclad``: create a workflow (in review),
complete it (which sends the webhook), rotate the key pair, and change where webhooks go.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import NAMESPACE_URL, uuid5

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import JSON, Text
from sqlmodel import Field as SqlField

from c2c.ironclad_webhook import sign_webhook
from sandbox.db import Db, Row, UtcDateTime, find, next_number, utcnow
from sandbox.docusign import sample_pdf

router = APIRouter(tags=["ironclad"])
admin_router = APIRouter(tags=["admin"])

API = "/public/api/v1"
COMPANY_ID = "c2c-sandbox-company"
TEMPLATE_ID = "c2c-sandbox-sow-template"
WEBHOOK_ID = "c2c-sandbox-webhook"
#: The attribute a completed workflow keeps its signed copy under.
SIGNED_COPY = "signedCopy"


class IroncladWorkflow(Row, table=True):
    """A workflow: its status, attributes and signed copy."""

    __tablename__ = "sbx_ironclad_workflow"

    workflow_id: str = SqlField(unique=True)
    #: The record it makes when it completes.
    record_id: str = SqlField(index=True)
    title: str
    status: str
    step: str
    creator_email: str
    attributes: dict[str, Any] = SqlField(default_factory=dict, sa_type=JSON)
    #: The signed PDF, base64.
    document: str = SqlField(sa_type=Text)
    document_key: str
    created_at: datetime = SqlField(sa_type=UtcDateTime)
    updated_at: datetime = SqlField(sa_type=UtcDateTime)


class WebhookConfig:
    """Where webhooks go, the key pair that signs them, and the API's token."""

    def __init__(self, url: str, token: str | None) -> None:
        self.url = url
        self.token = token
        self.private_key = new_key()

    def public_pem(self) -> str:
        return (
            self.private_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode("ascii")
        )


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def config_of(request: Request) -> WebhookConfig:
    config: WebhookConfig = request.app.state.ironclad
    return config


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status)


def _refused(request: Request) -> JSONResponse | None:
    token = config_of(request).token
    if token is None or request.headers.get("Authorization") == f"Bearer {token}":
        return None
    return _error(401, "UNAUTHORIZED", "The API token is missing or invalid.")


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def _download(workflow: IroncladWorkflow) -> str:
    return f"{API}/workflows/{workflow.workflow_id}/document/{workflow.document_key}/download"


def workflow_json(workflow: IroncladWorkflow) -> dict[str, Any]:
    """The workflow as Retrieve a Workflow answers it."""
    attributes = dict(workflow.attributes)
    if workflow.status == "completed":
        attributes[SIGNED_COPY] = [
            {
                "version": "1",
                "filename": f"{workflow.title}.pdf",
                "download": _download(workflow),
            }
        ]
    return {
        "id": workflow.workflow_id,
        "title": workflow.title,
        "template": TEMPLATE_ID,
        "step": workflow.step,
        "status": workflow.status,
        "created": _stamp(workflow.created_at),
        "lastUpdated": _stamp(workflow.updated_at),
        "creator": {"displayName": "Contracts Desk", "email": workflow.creator_email},
        "attributes": attributes,
    }


def record_json(workflow: IroncladWorkflow) -> dict[str, Any]:
    """The record a completed workflow made, as Retrieve a Record answers it."""
    properties = {
        name: {"type": "number" if isinstance(value, int | float) else "string", "value": value}
        for name, value in workflow.attributes.items()
        if isinstance(value, str | int | float)
    }
    return {
        "id": workflow.record_id,
        "ironcladId": f"IC-{workflow.id}",
        "type": "statementOfWork",
        "name": workflow.title,
        "lastUpdated": _stamp(workflow.updated_at),
        "properties": properties,
        "attachments": {
            SIGNED_COPY: {
                "contentType": "application/pdf",
                "filename": f"{workflow.title}.pdf",
                "href": f"{API}/records/{workflow.record_id}/attachments/{SIGNED_COPY}",
            }
        },
        "source": {"type": "workflow", "workflowId": workflow.workflow_id},
    }


def record_id_of(workflow_id: str) -> str:
    """The id of the record a workflow makes when it completes."""
    return str(uuid5(NAMESPACE_URL, f"c2c-sandbox/ironclad-record/{workflow_id}"))


def _workflow(db: Db, workflow_id: str) -> IroncladWorkflow | None:
    with db.read() as session:
        return find(session, IroncladWorkflow, IroncladWorkflow.workflow_id, workflow_id)


def _completed_by_record(db: Db, record: str) -> IroncladWorkflow | None:
    with db.read() as session:
        workflow = find(session, IroncladWorkflow, IroncladWorkflow.record_id, record)
    return workflow if workflow is not None and workflow.status == "completed" else None


# ---------------------------------------------------------------- Ironclad's public API


@router.get(f"{API}/webhooks/verification-key", response_model=None)
def verification_key(request: Request) -> Response:
    refused = _refused(request)
    if refused is not None:
        return refused
    return PlainTextResponse(config_of(request).public_pem(), media_type="application/x-pem-file")


def _served(
    request: Request,
    workflow: IroncladWorkflow | None,
    missing: str,
    render: Callable[[IroncladWorkflow], Response],
) -> Response:
    """Ironclad's answer to a read: the token refused, the thing missing, or ``render``."""
    refused = _refused(request)
    if refused is not None:
        return refused
    if workflow is None:
        return _error(404, "NOT_FOUND", missing)
    return render(workflow)


def _pdf(workflow: IroncladWorkflow) -> Response:
    return Response(
        base64.b64decode(workflow.document),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{workflow.workflow_id}.pdf"'},
    )


@router.get(f"{API}/workflows/{{workflow_id}}", response_model=None)
def retrieve_workflow(workflow_id: str, request: Request, db: Db) -> Response:
    return _served(
        request,
        _workflow(db, workflow_id),
        f"workflow {workflow_id} does not exist",
        lambda found: JSONResponse(workflow_json(found)),
    )


@router.get(f"{API}/workflows/{{workflow_id}}/document/{{key}}/download", response_model=None)
def retrieve_workflow_document(workflow_id: str, key: str, request: Request, db: Db) -> Response:
    workflow = _workflow(db, workflow_id)
    if workflow is not None and (key != workflow.document_key or workflow.status != "completed"):
        workflow = None
    return _served(request, workflow, f"workflow {workflow_id} has no document {key}", _pdf)


@router.get(f"{API}/records/{{record}}", response_model=None)
def retrieve_record(record: str, request: Request, db: Db) -> Response:
    return _served(
        request,
        _completed_by_record(db, record),
        f"record {record} does not exist",
        lambda found: JSONResponse(record_json(found)),
    )


@router.get(f"{API}/records/{{record}}/attachments/{{key}}", response_model=None)
def retrieve_record_attachment(record: str, key: str, request: Request, db: Db) -> Response:
    workflow = _completed_by_record(db, record) if key == SIGNED_COPY else None
    return _served(request, workflow, f"record {record} has no attachment {key}", _pdf)


# ---------------------------------------------------------------- test and demo control


class WorkflowIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workflow_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9\-_]{1,64}$")
    title: str = Field(default="Statement of work", min_length=1, max_length=200)
    creator_email: str = Field(default="contracts@example.com", max_length=100)
    attributes: dict[str, Any] = Field(default_factory=dict)
    #: The signed PDF, base64; a one-page PDF naming the workflow when left out.
    document_base64: str | None = None


class CompleteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: Send the webhook (else only complete the workflow).
    send: bool = True


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = None
    #: Make a new key pair: webhooks are signed with it, the endpoint answers its public half.
    rotate_key: bool = False
    #: The bearer token the API paths require; an empty string: none.
    token: str | None = None


@admin_router.post("/workflows", status_code=201, response_model=None)
def create_workflow(body: WorkflowIn, db: Db) -> dict[str, Any] | JSONResponse:
    """A workflow, in review."""
    with db.write() as session:
        number = next_number(session, "ironclad-workflow")
        workflow_id = body.workflow_id or uuid5(NAMESPACE_URL, f"c2c-sandbox/wf/{number}").hex
        if find(session, IroncladWorkflow, IroncladWorkflow.workflow_id, workflow_id):
            return _error(409, "CONFLICT", f"workflow {workflow_id} exists")
        document = body.document_base64 or base64.b64encode(
            sample_pdf(f"{body.title} {workflow_id}")
        ).decode("ascii")
        now = utcnow()
        session.add(
            IroncladWorkflow(
                workflow_id=workflow_id,
                record_id=record_id_of(workflow_id),
                title=body.title,
                status="active",
                step="Review",
                creator_email=body.creator_email,
                attributes=body.attributes,
                document=document,
                document_key=f"signed-{secrets.token_hex(6)}",
                created_at=now,
                updated_at=now,
            )
        )
    return {"workflow_id": workflow_id, "status": "active"}


def webhook_body(workflow: IroncladWorkflow) -> dict[str, Any]:
    """The ``workflow_completed`` webhook of a workflow."""
    return {
        "companyID": COMPANY_ID,
        "payload": {
            "event": "workflow_completed",
            "templateID": TEMPLATE_ID,
            "workflowID": workflow.workflow_id,
        },
        "timestamp": _stamp(workflow.updated_at),
        "webhookID": WEBHOOK_ID,
    }


@admin_router.post("/workflows/{workflow_id}/complete", response_model=None)
async def complete_workflow(
    workflow_id: str, body: CompleteIn, request: Request, db: Db
) -> dict[str, Any] | JSONResponse:
    """Complete a workflow and send its signed webhook; the answer has the webhook's exact
    body and headers, and what the receiver answered."""
    with db.write() as session:
        workflow = find(session, IroncladWorkflow, IroncladWorkflow.workflow_id, workflow_id)
        if workflow is None:
            return _error(404, "NOT_FOUND", f"workflow {workflow_id} does not exist")
        if workflow.status != "completed":
            workflow.status = "completed"
            workflow.step = "Archive"
            workflow.updated_at = utcnow()
            session.add(workflow)
        message = webhook_body(workflow)
    raw = json.dumps(message).encode()
    config = config_of(request)
    event_id = f"webhookEvent{secrets.token_hex(12)}"
    headers = {
        "Content-Type": "application/json",
        **sign_webhook(config.private_key, event_id, raw, secrets.token_hex(8)),
    }
    sent: dict[str, Any] = {"status": None, "body": None}
    if body.send:
        try:
            async with httpx.AsyncClient(timeout=60.0) as client:
                answer = await client.post(config.url, content=raw, headers=headers)
            try:
                sent = {"status": answer.status_code, "body": answer.json()}
            except ValueError:
                sent = {"status": answer.status_code, "body": answer.text}
        except httpx.HTTPError as exc:
            sent = {"status": None, "body": f"{type(exc).__name__}: {exc}"}
    return {
        "workflow_id": workflow_id,
        "record_id": record_id_of(workflow_id),
        "message": base64.b64encode(raw).decode("ascii"),
        "headers": headers,
        "delivery": sent,
    }


@admin_router.get("/webhook")
def get_webhook(request: Request) -> dict[str, Any]:
    config = config_of(request)
    return {"url": config.url, "public_key": config.public_pem()}


@admin_router.put("/webhook")
def put_webhook(body: WebhookIn, request: Request) -> dict[str, Any]:
    """Change where webhooks go, rotate the signing key pair, or set the API's token."""
    config = config_of(request)
    if body.url is not None:
        config.url = body.url
    if body.rotate_key:
        config.private_key = new_key()
    if body.token is not None:
        config.token = body.token or None
    return {"url": config.url, "public_key": config.public_pem(), "token": config.token is not None}
