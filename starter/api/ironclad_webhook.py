"""``POST /webhooks/ironclad``: Ironclad's webhooks, a ``workflow_completed`` starting the
contract its workflow's attributes describe.

The body is verified before it is read: ``X-Ironclad-Webhook-Verification`` against Ironclad's
public key (``c2c.ironclad_webhook``), fetched from Ironclad's verification key endpoint, kept,
and fetched again, at most once every ``C2C_IRONCLAD_KEY_REFRESH_S``, when a signature fails
(a rotation). A missing or wrong signature is ``401`` and nothing is recorded. Other events
are answered ``200`` and ignored.

The webhook names only the workflow; its terms are Ironclad's to give, and the API never calls
Ironclad. It records the event in the ledger, keyed by the workflow's id
(``<workflowID>:workflow_completed``: a resent event is a duplicate), and answers ``202``.
Processing it (now, from the event queue, or as an operator's replay) starts the
``IroncladIntake`` workflow, whose activity reads the workflow's attributes from Ironclad and
maps them; the intake's approval then starts the contract, and its refusal (a term missing or
invalid) is a ``422`` naming the Ironclad field, kept as a dead letter.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from temporalio.common import WorkflowIDConflictPolicy

from c2c import json_input
from c2c.ironclad_webhook import (
    EVENT_ID_HEADER,
    IroncladSignatureError,
    VerificationKeys,
    VerificationKeyUnavailable,
)
from c2c.logs import get_logger
from c2c.settings import Settings
from domain.ironclad import (
    INTAKE_WORKFLOW_TYPE,
    IroncladIntakeRequest,
    IroncladIntakeResult,
    intake_workflow_id,
)
from ledger import InboundSource
from starter.api import webhooks
from starter.api.context import ApiContext, api_context
from starter.api.contracts import start_contract
from starter.api.errors import ApiError, error_responses
from starter.api.metrics import record_webhook
from starter.api.middleware import bind_contract
from starter.ops.dead_letters import Answer

log = get_logger("c2c.api.ironclad")

SOURCE = InboundSource.IRONCLAD
WORKFLOW_COMPLETED = "workflow_completed"
#: Fields of a webhook body that may change from one delivery of an event to the next.
_VOLATILE = ("timestamp",)

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
        s401="the Ironclad signature is missing or does not verify; nothing was recorded",
    ),
)


def verification_keys(request: Request) -> VerificationKeys:
    keys: VerificationKeys = request.app.state.ironclad_keys
    return keys


async def ironclad_body(
    request: Request,
    context: ApiContext = Depends(api_context),
    keys: VerificationKeys = Depends(verification_keys),
) -> bytes:
    """Dependency: the raw body, once Ironclad's signature verifies it.

    Raises:
        ApiError: ``404`` when Ironclad is not one of ``C2C_CLM_SOURCES``; ``401`` for a
            missing or wrong signature; ``503`` while Ironclad's key cannot be fetched.
    """
    if "ironclad" not in context.settings.clm_sources:
        raise ApiError(
            404, "source_disabled", "Ironclad is not a CLM source here (C2C_CLM_SOURCES)"
        )
    body = await request.body()
    try:
        await keys.verify(request.headers, body)
    except IroncladSignatureError as exc:
        log.warning("ironclad signature rejected", reason=str(exc))
        record_webhook(SOURCE.value, "rejected_signature")
        raise ApiError(401, "invalid_signature", str(exc)) from None
    except VerificationKeyUnavailable as exc:
        log.error("ironclad verification key unavailable", error=str(exc))
        raise ApiError(
            503,
            "ironclad_key_unavailable",
            f"Ironclad's webhook verification key could not be fetched: {exc}",
            headers={"Retry-After": "30"},
        ) from None
    return body


def _fail(field: str, message: str) -> ApiError:
    return ApiError(422, "invalid_field", f"{field}: {message}", field=field)


def read_event(payload: Any) -> tuple[str, str]:
    """The event name and workflow id of an Ironclad webhook body.

    Raises:
        ApiError: ``422`` naming the field that is missing or not a string.
    """
    if not isinstance(payload, dict):
        raise _fail("body", "must be a JSON object (an Ironclad webhook)")
    inner = payload.get("payload")
    if not isinstance(inner, dict):
        raise _fail("payload", "Field required: an object")
    event = inner.get("event")
    if not isinstance(event, str) or not event:
        raise _fail("payload.event", "Field required: the event name")
    workflow_id = inner.get("workflowID")
    if event == WORKFLOW_COMPLETED and (not isinstance(workflow_id, str) or not workflow_id):
        raise _fail("payload.workflowID", "Field required: the workflow's id")
    return event, workflow_id if isinstance(workflow_id, str) else ""


def recorded_body(payload: dict[str, Any], workflow_id: str) -> bytes:
    """What the ledger keeps: c2c's envelope around the webhook, keyed by the workflow, without
    what differs between two deliveries of one completion (the webhook's ``timestamp``; the
    event id is a header), so that every delivery of it is the same event."""
    kept = {key: value for key, value in payload.items() if key not in _VOLATILE}
    wrapped = {
        "id": f"{workflow_id}:{WORKFLOW_COMPLETED}",
        "type": WORKFLOW_COMPLETED,
        "data": {"ironclad": kept},
    }
    return json.dumps(wrapped, sort_keys=True, separators=(",", ":")).encode()


def _unwrap(body: bytes) -> IroncladIntakeRequest:
    """The intake a recorded body asks for.

    Raises:
        ApiError: ``400`` for a body that is not a recorded webhook; ``422`` naming a field.
    """
    try:
        wrapped = json_input.loads(body)
    except json_input.JsonTooDeep as exc:
        raise ApiError(400, "json_too_deep", str(exc)) from None
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json", "the body is not valid JSON") from None
    data = wrapped.get("data") if isinstance(wrapped, dict) else None
    if not isinstance(data, dict) or "ironclad" not in data:
        raise ApiError(400, "invalid_message", "the body is not an Ironclad webhook")
    event, workflow_id = read_event(data["ironclad"])
    if event != WORKFLOW_COMPLETED:
        raise _fail("payload.event", f"{event!r} is not {WORKFLOW_COMPLETED}")
    return IroncladIntakeRequest(
        event_id=f"{workflow_id}:{WORKFLOW_COMPLETED}", workflow_id=workflow_id
    )


async def process_ironclad(context: ApiContext, body: bytes) -> Answer:
    """A completed workflow starts its contract (``202``), once the intake has read it."""
    request = _unwrap(body)
    client = await context.temporal()
    handle = await client.start_workflow(
        INTAKE_WORKFLOW_TYPE,
        request,
        id=intake_workflow_id(request.workflow_id),
        task_queue=context.settings.task_queue,
        # A resent event, or the queue's retry, joins the intake that is reading it.
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        result_type=IroncladIntakeResult,
    )
    try:
        result = await asyncio.wait_for(
            handle.result(), timeout=context.settings.ironclad_intake_wait_s
        )
    except TimeoutError:
        raise ApiError(
            503,
            "ironclad_intake_pending",
            f"workflow {request.workflow_id} is still being read from Ironclad",
            headers={"Retry-After": "30"},
        ) from None
    if result.approved is None:
        field = result.field or "payload.workflowID"
        raise ApiError(422, "invalid_field", result.reason or field, field=field)
    approved = result.approved
    bind_contract(approved.contract_id)
    started = await start_contract(client, approved, task_queue=context.settings.task_queue)
    log.info(
        "ironclad workflow completed",
        workflow_id=request.workflow_id,
        duplicate=started.duplicate,
    )
    return Answer(
        202, {"contract_id": approved.contract_id, **asdict(started)}, approved.contract_id
    )


webhooks.PROCESSORS[SOURCE] = process_ironclad
webhooks.IDEMPOTENT_TYPES[SOURCE] = frozenset({WORKFLOW_COMPLETED})
webhooks.QUEUED_TYPES[SOURCE] = frozenset({WORKFLOW_COMPLETED})


@router.post(
    "/ironclad",
    status_code=202,
    responses={200: {"description": "an event other than workflow_completed, ignored"}},
    summary="Ironclad: workflow completed",
)
async def ironclad_webhook(
    request: Request,
    body: bytes = Depends(ironclad_body),
    context: ApiContext = Depends(api_context),
) -> JSONResponse:
    """A ``workflow_completed`` webhook starts the contract the workflow's attributes
    describe (read from Ironclad by the worker), and its signed copy is archived once the ERP
    contract exists. Answered ``202`` once recorded; the same workflow's event again is
    answered as the first, with ``duplicate``. Other events are answered ``200`` and
    ignored."""
    try:
        payload = json_input.loads(body)
    except (ValueError, UnicodeDecodeError):
        payload = None
    try:
        event, workflow_id = read_event(payload)
    except ApiError as exc:
        # Verified but unreadable: kept as a dead letter under its digest, with the reason.
        raw = {"type": "", "data": {"raw": body.decode("utf-8", "replace")}}
        log.warning("ironclad webhook unreadable", reason=exc.message)
        return await webhooks.receive(context, SOURCE, json.dumps(raw).encode())
    if event != WORKFLOW_COMPLETED:
        record_webhook(SOURCE.value, "ignored")
        return JSONResponse({"ignored": True, "event": event}, status_code=200)
    assert isinstance(payload, dict)  # read_event accepted it
    log.info(
        "ironclad workflow_completed received",
        workflow_id=workflow_id,
        event_id=request.headers.get(EVENT_ID_HEADER),
    )
    return await webhooks.receive(context, SOURCE, recorded_body(payload, workflow_id))


def queued_answer(body: bytes) -> Answer | None:
    """What a recorded ``workflow_completed`` is answered when the event queue takes it:
    ``202`` naming the intake, ``"queued": true`` (the contract is not known until the intake
    has read the workflow). ``None`` for a body that is refused: it is processed now, and kept
    as a dead letter."""
    try:
        request = _unwrap(body)
    except ApiError:
        return None
    body_out = {
        "ironclad_workflow_id": request.workflow_id,
        "intake_workflow_id": intake_workflow_id(request.workflow_id),
        "duplicate": False,
        "queued": True,
    }
    return Answer(202, body_out, None)


webhooks.QUEUED_ANSWERS[SOURCE] = queued_answer


def install(app: FastAPI, settings: Settings) -> None:
    """Add the Ironclad webhook, with the verification keys it keeps."""
    token = settings.ironclad_access_token
    app.state.ironclad_keys = VerificationKeys(
        settings.ironclad_base_url,
        token=token.get_secret_value() if token else None,
        refresh_s=settings.ironclad_key_refresh_s,
        timeout_s=settings.connector_timeout_s,
    )
    app.include_router(router)
