"""``POST /webhooks/docusign``: DocuSign Connect messages, an ``envelope-completed`` starting
the contract its envelope carries.

The body is verified before it is read: ``X-DocuSign-Signature-1..N`` (``c2c.docusign_hmac``)
against every key in ``C2C_DOCUSIGN_CONNECT_KEYS``; a missing or wrong signature is ``401``
and nothing is recorded. Other events (an envelope sent, delivered, voided) are answered
``200`` and ignored: only a completed envelope is an approval.

Connect messages have no timestamp and no event id, so the ledger records each as the
envelope's id and status (``<envelopeId>:completed``): DocuSign's resends of a message, and
replays of its bytes, are answered as duplicates. What is recorded is the message without
``retryCount`` and ``generatedDateTime`` (which change between resends), and with the
envelope's custom fields read from DocuSign when the Connect configuration leaves them out,
so that processing it (now, from the event queue, or as an operator's replay) reads no system.
From there it takes the path of the c2c dialect's ``contract.approved``: recorded in the
ledger's inbound events, answered ``202`` once recorded, delivered by the event queue; a term
missing or invalid is a ``422`` naming the DocuSign field, kept as a dead letter.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from c2c import json_input
from c2c.docusign_connect import (
    ENVELOPE_COMPLETED,
    MappingError,
    load_mapping,
    parse_message,
    to_contract,
)
from c2c.docusign_hmac import ConnectSignatureError, verify_connect
from c2c.logs import get_logger
from c2c.settings import Settings
from domain.models import ContractApproved
from domain.names import contract_workflow_id
from ledger import InboundSource
from starter.api import documents, webhooks
from starter.api.context import ApiContext, api_context
from starter.api.contracts import start_contract
from starter.api.errors import ApiError, error_responses
from starter.api.metrics import record_webhook
from starter.api.middleware import bind_contract
from starter.ops import dead_letters
from starter.ops.dead_letters import Answer

log = get_logger("c2c.api.docusign")

SOURCE = InboundSource.DOCUSIGN
#: Fields of a Connect message that change from one resend to the next.
_VOLATILE = ("retryCount", "generatedDateTime")

router = APIRouter(
    prefix="/webhooks",
    tags=["webhooks"],
    responses=error_responses(
        400,
        404,
        413,
        422,
        500,
        502,
        503,
        s401="no X-DocuSign-Signature header matches a configured key; nothing was recorded",
    ),
)


async def connect_body(request: Request, context: ApiContext = Depends(api_context)) -> bytes:
    """Dependency: the raw body, once a Connect signature verifies it.

    Raises:
        ApiError: ``404`` when DocuSign is not one of ``C2C_CLM_SOURCES``; ``401`` for a
            missing or wrong signature.
    """
    if "docusign" not in context.settings.clm_sources:
        raise ApiError(
            404, "source_disabled", "DocuSign is not a CLM source here (C2C_CLM_SOURCES)"
        )
    body = await request.body()
    try:
        verify_connect(request.headers, body, context.settings.docusign_keys())
    except ConnectSignatureError as exc:
        log.warning("docusign signature rejected", reason=str(exc))
        record_webhook(SOURCE.value, "rejected_signature")
        raise ApiError(401, "invalid_signature", str(exc)) from None
    return body


def recorded_body(
    message: dict[str, Any],
    envelope_id: str,
    status: str,
    event: str,
    *,
    fields_error: str | None = None,
) -> bytes:
    """What the ledger keeps of a Connect message: c2c's envelope around it, keyed by the
    envelope's id and status (with why it cannot give the contract's terms, if so)."""
    kept = {key: value for key, value in message.items() if key not in _VOLATILE}
    data: dict[str, Any] = {"connect": kept}
    if fields_error is not None:
        data["custom_fields_error"] = fields_error
    wrapped = {"id": f"{envelope_id}:{status}", "type": event, "data": data}
    return json.dumps(wrapped, sort_keys=True, separators=(",", ":")).encode()


def _unwrap(body: bytes) -> dict[str, Any]:
    """The Connect message of a recorded body.

    Raises:
        ApiError: ``400`` for one that is not a recorded message; ``422`` for a message
            without its envelope's custom fields.
    """
    try:
        payload = json_input.loads(body)
    except json_input.JsonTooDeep as exc:
        raise ApiError(400, "json_too_deep", str(exc)) from None
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json", "the body is not valid JSON") from None
    data = payload.get("data") if isinstance(payload, dict) else None
    connect = data.get("connect") if isinstance(data, dict) else None
    if not isinstance(connect, dict):
        raise ApiError(400, "invalid_message", "the body is not a DocuSign Connect message")
    assert isinstance(data, dict)  # it holds the message
    if data.get("custom_fields_error"):
        raise ApiError(
            422,
            "invalid_field",
            f"data.envelopeSummary.customFields: {data['custom_fields_error']}",
            field="data.envelopeSummary.customFields",
        )
    return connect


def approval_of(body: bytes, context: ApiContext) -> ContractApproved:
    """The approval a recorded Connect message carries.

    Raises:
        ApiError: ``400`` for a body that is not a Connect message, ``422`` naming the
            DocuSign field of a term that is missing or invalid, ``503`` while the mapping
            file is unreadable (a configuration to fix; DocuSign's retries then succeed).
    """
    try:
        mapping = load_mapping(context.settings.docusign_mapping_file)
    except ValueError as exc:
        log.error("docusign mapping unusable", error=str(exc))
        raise ApiError(
            503, "docusign_mapping_invalid", str(exc), headers={"Retry-After": "60"}
        ) from None
    try:
        message = parse_message(_unwrap(body))
        if message.event != ENVELOPE_COMPLETED:
            raise MappingError("event", f"{message.event!r} is not {ENVELOPE_COMPLETED}")
        return to_contract(message, mapping)
    except MappingError as exc:
        raise ApiError(422, "invalid_field", str(exc), field=exc.field or None) from None


async def process_docusign(context: ApiContext, body: bytes) -> Answer:
    """A completed envelope starts its contract (``202``)."""
    approved = approval_of(body, context)
    bind_contract(approved.contract_id)
    client = await context.temporal()
    result = await start_contract(client, approved, task_queue=context.settings.task_queue)
    log.info(
        "docusign envelope completed",
        envelope_id=getattr(approved.signed_document, "envelope_id", None),
        duplicate=result.duplicate,
    )
    return Answer(202, asdict(result), approved.contract_id)


# The event queue, replays of dead letters and the ledger's first-then-record path take
# DocuSign's messages as they take the c2c dialect's approvals.
webhooks.PROCESSORS[SOURCE] = process_docusign
webhooks.IDEMPOTENT_TYPES[SOURCE] = frozenset({ENVELOPE_COMPLETED})
webhooks.QUEUED_TYPES[SOURCE] = frozenset({ENVELOPE_COMPLETED})


#: Why a message without its envelope's custom fields cannot start a contract. The API never
#: calls DocuSign (every call to a system is an activity): Connect must send them.
NO_CUSTOM_FIELDS = (
    "the message has none: set Connect's configuration to include the envelope's custom "
    "fields (Include Custom Fields; includeCustomFields in the REST API), then replay"
)


def _custom_fields_error(message: dict[str, Any]) -> str | None:
    """Why the message cannot give the contract's terms, if it carries no custom fields."""
    return None if parse_message(message).has_custom_fields else NO_CUSTOM_FIELDS


@router.post(
    "/docusign",
    status_code=202,
    response_model=webhooks.EventAccepted,
    responses={200: {"description": "an event other than envelope-completed, ignored"}},
    summary="DocuSign Connect: envelope completed",
)
async def docusign_webhook(
    body: bytes = Depends(connect_body), context: ApiContext = Depends(api_context)
) -> JSONResponse:
    """An ``envelope-completed`` Connect message (JSON) starts the contract its envelope's
    custom fields describe, and its signed document is archived once the ERP contract
    exists. Answered ``202`` once valid and recorded (``queued``); a message for the same
    envelope and status again is answered as the first, with ``duplicate``. Other events are
    answered ``200`` and ignored."""
    try:
        message = json_input.loads(body)
    except (ValueError, UnicodeDecodeError):
        message = None
    try:
        parsed = parse_message(message)
    except MappingError as exc:
        # Verified but unreadable: kept as a dead letter under its digest, with the reason.
        raw = {"type": "", "data": {"raw": body.decode("utf-8", "replace")}}
        log.warning("docusign message unreadable", reason=str(exc))
        return await _receive(context, json.dumps(raw).encode(), unreadable=True)
    if parsed.event != ENVELOPE_COMPLETED:
        record_webhook(SOURCE.value, "ignored")
        return JSONResponse({"ignored": True, "event": parsed.event}, status_code=200)
    assert isinstance(message, dict)  # parse_message accepted it
    fields_error = _custom_fields_error(message)
    record = recorded_body(
        message, parsed.envelope_id, parsed.status, parsed.event, fields_error=fields_error
    )
    return await _receive(context, record)


async def _receive(context: ApiContext, body: bytes, *, unreadable: bool = False) -> JSONResponse:
    try:
        answer = None if unreadable else await _queue(context, body)
        if answer is None:
            answer = await dead_letters.deliver(
                context,
                SOURCE,
                body,
                process_docusign,
                idempotent_types=webhooks.IDEMPOTENT_TYPES[SOURCE],
            )
    except ApiError as exc:
        record_webhook(SOURCE.value, "dead_letter" if exc.status < 500 else "failed")
        raise
    except Exception:
        record_webhook(SOURCE.value, "failed")
        raise
    if answer.body.get("duplicate"):
        outcome = "duplicate"
    else:
        outcome = "queued" if answer.body.get("queued") else "accepted"
    record_webhook(SOURCE.value, outcome)
    return answer.response()


async def _queue(context: ApiContext, body: bytes) -> Answer | None:
    """Record a valid message for the event queue and answer now; ``None`` to process it
    while DocuSign waits (no queue, or a message that is refused and kept as a dead letter)."""
    queue = context.event_queue
    if queue is None:
        return None
    try:
        approved = approval_of(body, context)
    except ApiError:
        return None
    contract_id = approved.contract_id
    bind_contract(contract_id)
    answer = Answer(
        202,
        {
            "contract_id": contract_id,
            "workflow_id": contract_workflow_id(contract_id),
            "run_id": None,
            "duplicate": False,
            "queued": True,
        },
        contract_id,
    )
    queued = await dead_letters.enqueue(context, SOURCE, body, answer)
    if queued is not None and not queued.body.get("duplicate"):
        queue.wake()
        log.info("docusign event queued")
    return queued


class ClmSourceGate:
    """Answers ``404 source_disabled`` to the c2c dialect's ``/webhooks/clm`` when ``c2c`` is
    not one of ``C2C_CLM_SOURCES``; passes everything else through.

    A plain ASGI layer, the innermost one: the request log, the request id and the error
    handlers around it see its answer as any route's.
    """

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == "/webhooks/clm"
            and "c2c" not in self.settings.clm_sources
        ):
            error = ApiError(
                404, "source_disabled", "the c2c CLM dialect is off here (C2C_CLM_SOURCES)"
            )
            await JSONResponse(error.body(), status_code=404)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def install(app: FastAPI, settings: Settings) -> None:
    """Add the DocuSign webhook and the signed document route (``starter.api.documents``), and
    refuse the c2c dialect's approvals when ``c2c`` is not one of ``C2C_CLM_SOURCES``."""
    app.include_router(router)
    app.include_router(documents.router)
    # Appended, not added: innermost, where the other layers handle its answer as a route's.
    app.user_middleware.append(Middleware(ClmSourceGate, settings=settings))
