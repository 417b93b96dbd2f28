"""``POST /webhooks/stripe``: Stripe's events about the PaymentIntents c2c opens for its
invoices (``C2C_PAYMENTS=stripe``).

The body is verified before it is read, by ``Stripe-Signature`` (``t=...,v1=...``, an
HMAC-SHA256 of ``"{t}.{body}"``) with the ``stripe`` library's own check, against every secret
in ``C2C_STRIPE_WEBHOOK_SECRET`` and with Stripe's tolerance of 300 s: a missing, wrong or
stale signature is ``401`` and nothing is recorded.

Taken events (``c2c.stripe_events.EVENT_TYPES``); any other is answered ``200`` and ignored:

- ``payment_intent.succeeded``: c2c's ``payment_received`` for the invoice in the intent's
  ``metadata`` (payment id: the PaymentIntent's id);
- ``invoice.paid`` (a Stripe-hosted invoice carrying c2c's metadata): the same, named by the
  invoice's PaymentIntent, so both events of one payment apply it once;
- ``charge.refunded``: recorded with its contract, for the audit trail and operators; c2c's
  contract has no message that takes cash back, so it changes no contract.

Each event is recorded in the ledger's inbound events under Stripe's event id, so a resent
event is answered as the first time with ``duplicate``. Events may come in any order: each is
decided on its own (a refund recorded before its payment, a payment after its refund), and a
payment of a contract whose workflow is still starting is retried by the event queue.
From there it takes the path of the c2c dialect's ``payment.succeeded``: answered ``202`` once
valid and recorded, delivered by the event queue; an event that names no c2c invoice is a
``422`` dead letter naming the metadata key.
"""

from __future__ import annotations

from typing import Any

import stripe
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from c2c import json_input
from c2c.logs import get_logger
from c2c.stripe_events import (
    CHARGE_REFUNDED,
    CONTRACT_ID_KEY,
    EVENT_TYPES,
    INVOICE_ID_KEY,
    StripePayment,
    payment_of,
)
from domain.models import PaymentReceived
from domain.names import contract_workflow_id
from ledger import InboundSource
from starter.api import webhooks
from starter.api.context import ApiContext, api_context
from starter.api.contracts import record_payment
from starter.api.errors import ApiError, error_responses, from_validation, invalid_field
from starter.api.metrics import record_webhook
from starter.api.middleware import bind_contract
from starter.ops import dead_letters
from starter.ops.dead_letters import Answer

log = get_logger("c2c.api.stripe")

SOURCE = InboundSource.STRIPE
SIGNATURE_HEADER = "Stripe-Signature"
#: Stripe's own tolerance: a signature older than this is refused.
TOLERANCE_S = 300

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
        s401="no Stripe-Signature verifies the body with a configured secret within 300 s; "
        "nothing was recorded",
    ),
)


async def stripe_body(request: Request, context: ApiContext = Depends(api_context)) -> bytes:
    """Dependency: the raw body, once ``Stripe-Signature`` verifies it.

    Raises:
        ApiError: ``404`` when no Stripe endpoint secret is configured; ``401`` for a
            missing, wrong or stale signature.
    """
    secrets = context.settings.stripe_webhook_secrets()
    if not secrets:
        raise ApiError(
            404, "source_disabled", "Stripe events are not taken here (C2C_STRIPE_WEBHOOK_SECRET)"
        )
    body = await request.body()
    header = request.headers.get(SIGNATURE_HEADER)
    reason = f"no {SIGNATURE_HEADER} header"
    if header:
        try:
            payload = body.decode("utf-8")
        except UnicodeDecodeError:
            payload = None
            reason = "the body is not UTF-8"
        for secret in secrets:
            if payload is None:
                break
            try:
                stripe.WebhookSignature.verify_header(payload, header, secret, TOLERANCE_S)
            except stripe.SignatureVerificationError as exc:
                reason = str(exc.user_message or exc)
            else:
                return body
    log.warning("stripe signature rejected", reason=reason)
    record_webhook(SOURCE.value, "rejected_signature")
    raise ApiError(401, "invalid_signature", reason)


def _object(body: bytes) -> tuple[webhooks.Event, dict[str, Any]]:
    """The event and its ``data.object``.

    Raises:
        ApiError: ``400`` or ``422`` naming what is missing.
    """
    event = webhooks.parse_event(body, EVENT_TYPES)
    obj = event.data.get("object")
    if not isinstance(obj, dict):
        raise invalid_field("data.object", "must be an object")
    return event, obj


def _payment(event_type: str, obj: dict[str, Any], created: Any = None) -> StripePayment:
    try:
        payment = payment_of(event_type, obj, created if isinstance(created, int) else None)
    except (KeyError, TypeError, ValueError) as exc:
        raise invalid_field("data.object", f"not a Stripe {event_type} object: {exc}") from None
    if not payment.invoice_id:
        raise invalid_field(
            f"data.object.metadata.{INVOICE_ID_KEY}",
            "Field required: the payment names no c2c invoice (was it made by c2c?)",
        )
    return payment


async def _contract_of(context: ApiContext, contract_id: str | None, invoice_id: str) -> str:
    """The contract: from the metadata c2c wrote, else from the ledger's invoice xrefs."""
    if contract_id:
        return contract_id
    found = await webhooks.contract_of_invoice(context, invoice_id)
    if found is None:
        raise ApiError(
            404,
            "unknown_invoice",
            f"no contract has invoice {invoice_id}",
            field=f"data.object.metadata.{INVOICE_ID_KEY}",
        )
    return found


async def process_stripe(context: ApiContext, body: bytes) -> Answer:
    """A paid event applies cash to the invoice's contract (``202``); a refund is recorded
    (``200``)."""
    event, obj = _object(body)
    metadata = obj.get("metadata") or {}
    if event.type == CHARGE_REFUNDED:
        contract_id = metadata.get(CONTRACT_ID_KEY)
        if contract_id:
            bind_contract(contract_id)
        log.info(
            "stripe charge refunded",
            event_id=event.id,
            payment_intent=obj.get("payment_intent"),
            amount_refunded=obj.get("amount_refunded"),
        )
        return Answer(200, {"recorded": True, "duplicate": False}, contract_id)
    paid = _payment(event.type, obj, json_input.loads(body).get("created"))
    assert paid.invoice_id is not None  # checked by _payment
    try:
        payment = PaymentReceived(
            payment_id=paid.payment_id,
            invoice_id=paid.invoice_id,
            amount=paid.amount,
            currency=paid.currency,
            received_on=paid.received_on,
        )
    except ValidationError as exc:
        raise from_validation(exc, ("data", "object")) from None
    contract_id = await _contract_of(context, paid.contract_id, paid.invoice_id)
    bind_contract(contract_id)
    await webhooks.to_contract(
        context, contract_id, record_payment(await context.temporal(), contract_id, payment)
    )
    log.info("stripe payment received", event_id=event.id, payment_id=payment.payment_id)
    body_out = {
        "contract_id": contract_id,
        "workflow_id": contract_workflow_id(contract_id),
        "duplicate": False,
    }
    return Answer(202, body_out, contract_id)


# The event queue and replays of dead letters take Stripe's events as the c2c dialect's.
webhooks.PROCESSORS[SOURCE] = process_stripe
webhooks.QUEUED_TYPES[SOURCE] = frozenset(EVENT_TYPES)


def _queued_answer(body: bytes) -> Answer | None:
    """What a valid event is answered when queued; ``None`` to process it now (refused)."""
    try:
        event, obj = _object(body)
        if event.type != CHARGE_REFUNDED:
            _payment(event.type, obj)
    except ApiError:
        return None
    contract_id = (obj.get("metadata") or {}).get(CONTRACT_ID_KEY) or None
    return Answer(
        202,
        {
            "contract_id": contract_id,
            "workflow_id": contract_workflow_id(contract_id) if contract_id else None,
            "run_id": None,
            "duplicate": False,
            "queued": True,
        },
        contract_id,
    )


@router.post(
    "/stripe",
    status_code=202,
    response_model=webhooks.EventAccepted,
    responses={200: {"description": "an event c2c does not take, ignored; or a refund"}},
    summary="Stripe: payment succeeded, invoice paid, charge refunded",
)
async def stripe_webhook(
    body: bytes = Depends(stripe_body), context: ApiContext = Depends(api_context)
) -> JSONResponse:
    """A ``payment_intent.succeeded`` or ``invoice.paid`` applies the payment to the c2c
    invoice in its metadata; a ``charge.refunded`` is recorded. Answered ``202`` once valid and
    recorded (``queued``); the same event id again is answered as the first, with
    ``duplicate``. Other event types are answered ``200`` and ignored."""
    try:
        kind = webhooks.parse_event(body, EVENT_TYPES).type
    except ApiError as exc:
        if exc.field == "type":
            record_webhook(SOURCE.value, "ignored")
            return JSONResponse({"ignored": True}, status_code=200)
        kind = None
    log.info("stripe event", type=kind)
    try:
        answer = await _queue(context, body)
        if answer is None:
            answer = await dead_letters.deliver(
                context, SOURCE, body, process_stripe, idempotent_types=frozenset()
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
    queue = context.event_queue
    if queue is None:
        return None
    answer = _queued_answer(body)
    if answer is None:
        return None
    if answer.contract_id is not None:
        bind_contract(answer.contract_id)
    queued = await dead_letters.enqueue(context, SOURCE, body, answer)
    if queued is not None and not queued.body.get("duplicate"):
        queue.wake()
        log.info("stripe event queued")
    return queued


def install(app: FastAPI) -> None:
    """Add ``POST /webhooks/stripe``."""
    app.include_router(router)
