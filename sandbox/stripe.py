"""Stripe stand-in (``/vendors/stripe``): PaymentIntents, refunds and events, as Stripe's API
takes and answers them, and signed events sent to c2c's ``/webhooks/stripe``.

What the ``stripe`` client sends is what is read: a bearer secret key, form-encoded bodies in
Stripe's bracket notation (``metadata[c2c_invoice_id]=...``), amounts as integers in the
currency's minor unit, ``Idempotency-Key`` on writes. Answers are Stripe's objects and lists
(``{"object": "list", "data", "has_more", "url"}``); errors are Stripe's
``{"error": {"type", "code", "message", "param"}}``.

Paths (under ``/vendors/stripe``):

- ``POST /v1/payment_intents``, ``GET /v1/payment_intents[/{id}]``,
  ``GET /v1/payment_intents/search?query=metadata['key']:'value'``;
- ``POST /v1/refunds`` (``payment_intent`` or ``charge``; ``amount`` defaults to what is left),
  ``GET /v1/refunds[/{id}]``;
- ``GET /v1/events[/{id}]``.

Idempotency follows Stripe's: a key with the same parameters answers the first answer again
(``Idempotent-Replayed: true``); with other parameters, ``400 idempotency_error``. Keys are
forgotten after 24 hours, as Stripe forgets them, or at once by ``POST
/_admin/stripe/idempotency-keys/expire``.

Test and demo control (``/_admin/stripe``): ``PUT /webhook`` (where events go and the secret
that signs them), ``POST /payment_intents/{id}/succeed`` (the customer pays: the intent
succeeds and ``payment_intent.succeeded`` is sent), ``POST /events/{id}/send`` (send an event
again, optionally signed at another time), ``POST /idempotency-keys/expire``, ``POST
/lose-answers`` (the next writes are made, then answered ``500`` as if the answer were lost;
optionally with their keys forgotten at once).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy import JSON
from sqlmodel import Field, Session, col, select

from sandbox.db import Database, Row, UtcDateTime, utcnow

router = APIRouter(tags=["stripe"])
admin_router = APIRouter(tags=["admin"])

API_VERSION = "2025-10-29.clover"
#: Stripe forgets an idempotency key after this long.
KEY_LIFETIME = timedelta(hours=24)
_INTENT_PARAMS = frozenset({
    "amount", "currency", "metadata", "description", "customer", "receipt_email",
    "automatic_payment_methods", "payment_method_types", "statement_descriptor_suffix",
})  # fmt: skip
_REFUND_PARAMS = frozenset({"payment_intent", "charge", "amount", "reason", "metadata"})
_REFUND_REASONS = frozenset({"duplicate", "fraudulent", "requested_by_customer"})


class StripeObject(Row, table=True):
    """A PaymentIntent, refund or event: its id, kind and body as the API shows it."""

    __tablename__ = "stripe_object"

    object_id: str = Field(unique=True)
    kind: str = Field(index=True)
    body: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)


class StripeIdempotencyKey(Row, table=True):
    """A write's key, its parameters' digest and its answer, until Stripe forgets it."""

    __tablename__ = "stripe_idempotency_key"

    key: str = Field(unique=True)
    request_hash: str
    status: int
    answer: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    created_at: datetime = Field(sa_type=UtcDateTime)


@dataclass
class StripeConfig:
    """Where events are sent and the endpoint secrets; the first signs."""

    url: str
    secrets: list[str]
    #: Writes still to be made and then answered ``500`` (a lost answer).
    lose_answers: int = 0
    #: Whether a lost answer's key is forgotten at once (the retry comes a day later).
    forget_lost_keys: bool = False
    sent: list[dict[str, Any]] = field(default_factory=list)


class StripeError(Exception):
    def __init__(
        self,
        status: int,
        kind: str,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.kind, self.message, self.code, self.param = (
            status,
            kind,
            message,
            code,
            param,
        )

    def response(self) -> JSONResponse:
        error: dict[str, Any] = {"type": self.kind, "message": self.message}
        if self.code:
            error["code"] = self.code
        if self.param:
            error["param"] = self.param
        return JSONResponse({"error": error}, status_code=self.status)


def invalid_request(
    message: str, *, code: str | None = None, param: str | None = None
) -> StripeError:
    return StripeError(400, "invalid_request_error", message, code=code, param=param)


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def _config(request: Request) -> StripeConfig:
    config: StripeConfig = request.app.state.stripe
    return config


def _authorize(request: Request) -> None:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not re.fullmatch(r"(sk|rk)_(test|live)_\w+", key):
        raise StripeError(
            401, "invalid_request_error", "Invalid API Key provided: a secret key is required"
        )


def decode_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's bracket notation as nested dicts and lists: ``metadata[a]=1`` → ``{"metadata":
    {"a": "1"}}``, ``types[0]=card`` → ``{"types": ["card"]}``."""
    out: dict[str, Any] = {}
    for name, value in pairs:
        parts = re.findall(r"[^\[\]]+", name)
        if not parts:
            continue
        node: Any = out
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                if last:
                    node.append(value)
                    break
                if not node or not isinstance(node[-1], dict):
                    node.append({})
                node = node[-1]
                continue
            if last:
                node[part] = value
            else:
                following = parts[i + 1]
                node = node.setdefault(part, [] if following.isdigit() else {})
    return out


async def _params(request: Request) -> dict[str, Any]:
    if request.method == "GET":
        return decode_form(list(request.query_params.multi_items()))
    raw = (await request.body()).decode()
    return decode_form(parse_qsl(raw, keep_blank_values=True))


def _amount(params: dict[str, Any], name: str, *, required: bool) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise invalid_request(
                f"Missing required param: {name}.", code="parameter_missing", param=name
            )
        return None
    if not re.fullmatch(r"\d{1,12}", str(value)):
        raise invalid_request(
            f"Invalid integer: {value}; {name} is a whole number of the currency's minor unit",
            code="parameter_invalid_integer",
            param=name,
        )
    number = int(value)
    if number < 1:
        raise invalid_request("Amount must be at least 1", code="amount_too_small", param=name)
    return number


def _unknown(params: dict[str, Any], known: frozenset[str]) -> None:
    for name in params:
        if name not in known and name != "expand":
            raise invalid_request(
                f"Received unknown parameter: {name}", code="parameter_unknown", param=name
            )


def _metadata(params: dict[str, Any]) -> dict[str, str]:
    metadata = params.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise invalid_request("metadata must be a hash", code="parameter_invalid", param="metadata")
    for key, value in metadata.items():
        if len(key) > 40 or len(str(value)) > 500:
            raise invalid_request(
                "metadata keys are at most 40 characters and values at most 500",
                code="parameter_invalid",
                param=f"metadata[{key}]",
            )
    return {str(k): str(v) for k, v in metadata.items()}


def _find(session: Session, object_id: str, kind: str) -> StripeObject:
    found = session.exec(
        select(StripeObject)
        .where(col(StripeObject.object_id) == object_id)
        .where(col(StripeObject.kind) == kind)
    ).first()
    if found is None:
        raise StripeError(
            404,
            "invalid_request_error",
            f"No such {kind}: '{object_id}'",
            code="resource_missing",
            param="id",
        )
    return found


def _save(session: Session, body: dict[str, Any]) -> None:
    session.add(StripeObject(object_id=body["id"], kind=body["object"], body=body))


def _update(session: Session, row: StripeObject, body: dict[str, Any]) -> None:
    row.body = body
    session.add(row)


def _event(session: Session, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    event = {
        "id": _new_id("evt"),
        "object": "event",
        "api_version": API_VERSION,
        "created": int(time.time()),
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": kind,
    }
    _save(session, event)
    return event


def _list(request: Request, items: list[dict[str, Any]], limit: int = 10) -> dict[str, Any]:
    after = request.query_params.get("starting_after")
    if after:
        ids = [item["id"] for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    return {
        "object": "list",
        "data": items[:limit],
        "has_more": len(items) > limit,
        "url": request.url.path.split("/vendors/stripe", 1)[-1],
    }


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit", "10")
    if not raw.isdigit() or not 1 <= int(raw) <= 100:
        raise invalid_request(
            "limit must be between 1 and 100", code="parameter_invalid", param="limit"
        )
    return int(raw)


def _all(session: Session, kind: str) -> list[dict[str, Any]]:
    rows = session.exec(
        select(StripeObject)
        .where(col(StripeObject.kind) == kind)
        .order_by(col(StripeObject.id).desc())
    ).all()
    return [row.body for row in rows]


async def _idempotent(request: Request, params: dict[str, Any], write: Any) -> Response:
    """Run ``write(session)`` once per ``Idempotency-Key`` as Stripe does."""
    db: Database = request.app.state.db
    key = request.headers.get("idempotency-key")
    digest = hashlib.sha256(
        f"{request.url.path}\n{json.dumps(params, sort_keys=True)}".encode()
    ).hexdigest()
    config = _config(request)
    with db.write() as session:
        if key is not None:
            stored = session.exec(
                select(StripeIdempotencyKey).where(col(StripeIdempotencyKey.key) == key)
            ).first()
            if stored is not None and utcnow() - stored.created_at > KEY_LIFETIME:
                session.delete(stored)
                session.flush()
                stored = None
            if stored is not None:
                if stored.request_hash != digest:
                    raise StripeError(
                        400,
                        "idempotency_error",
                        "Keys for idempotent requests can only be used with the same "
                        "parameters they were first used with. Try using a key other than "
                        f"'{key}' if you meant to execute a different request.",
                    )
                return JSONResponse(
                    stored.answer,
                    status_code=stored.status,
                    headers={"Idempotent-Replayed": "true", "Idempotency-Key": key},
                )
        answer = write(session)
        forget = config.lose_answers > 0 and config.forget_lost_keys
        if key is not None and not forget:
            session.add(
                StripeIdempotencyKey(
                    key=key, request_hash=digest, status=200, answer=answer, created_at=utcnow()
                )
            )
    if config.lose_answers > 0:
        config.lose_answers -= 1
        raise StripeError(500, "api_error", "An unknown error occurred (the answer was lost)")
    headers = {"Idempotency-Key": key} if key else {}
    return JSONResponse(answer, status_code=200, headers=headers)


async def _serve(request: Request, handler: Any) -> Response:
    try:
        _authorize(request)
        params = await _params(request)
        result = handler(params)
        if hasattr(result, "__await__"):
            result = await result
    except StripeError as exc:
        return exc.response()
    if isinstance(result, Response):
        return result
    return JSONResponse(result)


@router.post("/v1/payment_intents")
async def create_payment_intent(request: Request) -> Response:
    async def handler(params: dict[str, Any]) -> Response:
        _unknown(params, _INTENT_PARAMS)
        amount = _amount(params, "amount", required=True)
        currency = str(params.get("currency") or "").lower()
        if not re.fullmatch(r"[a-z]{3}", currency):
            raise invalid_request(
                "Missing required param: currency."
                if not currency
                else f"Invalid currency: {currency}",
                code="parameter_missing" if not currency else "parameter_invalid",
                param="currency",
            )
        metadata = _metadata(params)

        def write(session: Session) -> dict[str, Any]:
            intent = {
                "id": _new_id("pi"),
                "object": "payment_intent",
                "amount": amount,
                "amount_capturable": 0,
                "amount_received": 0,
                "currency": currency,
                "status": "requires_payment_method",
                "metadata": metadata,
                "description": params.get("description"),
                "customer": params.get("customer"),
                "receipt_email": params.get("receipt_email"),
                "latest_charge": None,
                "created": int(time.time()),
                "livemode": False,
            }
            intent["client_secret"] = f"{intent['id']}_secret_{secrets.token_hex(8)}"
            _save(session, intent)
            return intent

        return await _idempotent(request, params, write)

    return await _serve(request, handler)


_CLAUSE = re.compile(
    r"""\s*(metadata\[['"]([^'"]+)['"]\]|status|currency)\s*:\s*['"]([^'"]*)['"]\s*"""
)


def _matcher(query: str) -> Any:
    """A predicate for Stripe's search query language, the clauses this stand-in knows:
    ``metadata['key']:'value'``, ``status:'...'``, ``currency:'...'``, joined by ``AND``."""
    clauses = []
    for part in re.split(r"\s+AND\s+", query.strip()):
        match = _CLAUSE.fullmatch(part)
        if match is None:
            raise invalid_request(
                f"Invalid search query: {part!r}", code="parameter_invalid", param="query"
            )
        clauses.append((match.group(2), match.group(1), match.group(3)))

    def matches(body: dict[str, Any]) -> bool:
        for key, name, value in clauses:
            found = body.get("metadata", {}).get(key) if key else body.get(name)
            if found != value:
                return False
        return True

    return matches


@router.get("/v1/payment_intents/search")
async def search_payment_intents(request: Request) -> Response:
    def handler(params: dict[str, Any]) -> dict[str, Any]:
        query = params.get("query")
        if not query:
            raise invalid_request(
                "Missing required param: query.", code="parameter_missing", param="query"
            )
        matches = _matcher(str(query))
        db: Database = request.app.state.db
        with db.read() as session:
            found = [b for b in _all(session, "payment_intent") if matches(b)]
        limit = _limit(request)
        return {
            "object": "search_result",
            "data": found[:limit],
            "has_more": len(found) > limit,
            "next_page": None,
            "url": "/v1/payment_intents/search",
        }

    return await _serve(request, handler)


@router.get("/v1/payment_intents")
async def list_payment_intents(request: Request) -> Response:
    def handler(_: dict[str, Any]) -> dict[str, Any]:
        db: Database = request.app.state.db
        with db.read() as session:
            return _list(request, _all(session, "payment_intent"), _limit(request))

    return await _serve(request, handler)


@router.get("/v1/payment_intents/{intent_id}")
async def get_payment_intent(request: Request, intent_id: str) -> Response:
    def handler(_: dict[str, Any]) -> dict[str, Any]:
        db: Database = request.app.state.db
        with db.read() as session:
            return _find(session, intent_id, "payment_intent").body

    return await _serve(request, handler)


@router.post("/v1/refunds")
async def create_refund(request: Request) -> Response:
    async def handler(params: dict[str, Any]) -> Response:
        _unknown(params, _REFUND_PARAMS)
        amount = _amount(params, "amount", required=False)
        reason = params.get("reason")
        if reason is not None and reason not in _REFUND_REASONS:
            raise invalid_request(
                f"Invalid reason: {reason}", code="parameter_invalid", param="reason"
            )
        metadata = _metadata(params)
        if not params.get("payment_intent") and not params.get("charge"):
            raise invalid_request(
                "One of the following params should be provided for this request: "
                "payment_intent or charge.",
                code="parameter_missing",
                param="payment_intent",
            )

        def write(session: Session) -> dict[str, Any]:
            row = _intent_of(session, params)
            intent = dict(row.body)
            charge = intent.get("latest_charge")
            if intent["status"] != "succeeded" or charge is None:
                raise invalid_request(
                    f"This PaymentIntent ({intent['id']}) does not have a successful charge "
                    "to refund.",
                    code="charge_not_refundable",
                    param="payment_intent",
                )
            left = intent["amount_received"] - intent.get("amount_refunded", 0)
            if left <= 0:
                raise invalid_request(
                    f"Charge {charge} has already been refunded.",
                    code="charge_already_refunded",
                )
            wanted = left if amount is None else amount
            if wanted > left:
                raise invalid_request(
                    f"Refund amount ({wanted}) is greater than unrefunded amount on charge "
                    f"({left})",
                    code="amount_too_large",
                    param="amount",
                )
            refund = {
                "id": _new_id("re"),
                "object": "refund",
                "amount": wanted,
                "currency": intent["currency"],
                "charge": charge,
                "payment_intent": intent["id"],
                "reason": reason,
                "metadata": metadata,
                "status": "succeeded",
                "created": int(time.time()),
            }
            _save(session, refund)
            intent["amount_refunded"] = intent.get("amount_refunded", 0) + wanted
            _update(session, row, intent)
            _event(session, "charge.refunded", _charge(intent))
            return refund

        return await _idempotent(request, params, write)

    return await _serve(request, handler)


def _intent_of(session: Session, params: dict[str, Any]) -> StripeObject:
    if params.get("payment_intent"):
        return _find(session, str(params["payment_intent"]), "payment_intent")
    charge = str(params["charge"])
    for row in session.exec(
        select(StripeObject).where(col(StripeObject.kind) == "payment_intent")
    ).all():
        if row.body.get("latest_charge") == charge:
            return row
    raise StripeError(
        404,
        "invalid_request_error",
        f"No such charge: '{charge}'",
        code="resource_missing",
        param="charge",
    )


def _charge(intent: dict[str, Any]) -> dict[str, Any]:
    """The intent's charge as Stripe shows it."""
    refunded = intent.get("amount_refunded", 0)
    return {
        "id": intent["latest_charge"],
        "object": "charge",
        "amount": intent["amount"],
        "amount_captured": intent["amount_received"],
        "amount_refunded": refunded,
        "refunded": refunded >= intent["amount_received"],
        "currency": intent["currency"],
        "metadata": intent["metadata"],
        "payment_intent": intent["id"],
        "paid": True,
        "status": "succeeded",
        "created": intent.get("succeeded_at", intent["created"]),
    }


@router.get("/v1/refunds")
async def list_refunds(request: Request) -> Response:
    def handler(_: dict[str, Any]) -> dict[str, Any]:
        db: Database = request.app.state.db
        with db.read() as session:
            found = _all(session, "refund")
        intent = request.query_params.get("payment_intent")
        if intent:
            found = [r for r in found if r["payment_intent"] == intent]
        return _list(request, found, _limit(request))

    return await _serve(request, handler)


@router.get("/v1/refunds/{refund_id}")
async def get_refund(request: Request, refund_id: str) -> Response:
    def handler(_: dict[str, Any]) -> dict[str, Any]:
        db: Database = request.app.state.db
        with db.read() as session:
            return _find(session, refund_id, "refund").body

    return await _serve(request, handler)


@router.get("/v1/events")
async def list_events(request: Request) -> Response:
    def handler(_: dict[str, Any]) -> dict[str, Any]:
        db: Database = request.app.state.db
        with db.read() as session:
            found = _all(session, "event")
        kind = request.query_params.get("type")
        if kind:
            found = [e for e in found if e["type"] == kind]
        return _list(request, found, _limit(request))

    return await _serve(request, handler)


@router.get("/v1/events/{event_id}")
async def get_event(request: Request, event_id: str) -> Response:
    def handler(_: dict[str, Any]) -> dict[str, Any]:
        db: Database = request.app.state.db
        with db.read() as session:
            return _find(session, event_id, "event").body

    return await _serve(request, handler)


# Test and demo control.


def sign(payload: bytes, secret: str, at: int) -> str:
    """A ``Stripe-Signature`` header: ``t=<at>,v1=<hex HMAC-SHA256 of "<at>.<payload>">``."""
    mac = hmac.new(secret.encode(), f"{at}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


async def send_event(
    config: StripeConfig, event: dict[str, Any], *, at: int | None = None, secret: str | None = None
) -> dict[str, Any]:
    """Post ``event`` to c2c signed as Stripe signs it; what was sent and what c2c answered."""
    payload = json.dumps(event, separators=(",", ":")).encode()
    key = secret or (config.secrets[0] if config.secrets else None)
    sent: dict[str, Any] = {"event_id": event["id"], "type": event["type"], "url": config.url}
    if key is None:
        return {**sent, "status": None, "answer": None, "sent": False}
    header = sign(payload, key, int(time.time()) if at is None else at)
    async with httpx.AsyncClient(timeout=30) as client:
        answer = await client.post(
            config.url,
            content=payload,
            headers={"Content-Type": "application/json; charset=utf-8", "Stripe-Signature": header},
        )
    try:
        body = answer.json()
    except ValueError:
        body = answer.text
    config.sent.append(sent)
    return {**sent, "sent": True, "status": answer.status_code, "answer": body}


class WebhookConfigIn(BaseModel):
    url: str | None = None
    secrets: list[str] | None = None


@admin_router.put("/webhook")
async def configure_webhook(body: WebhookConfigIn, request: Request) -> dict[str, Any]:
    config = _config(request)
    if body.url is not None:
        config.url = body.url
    if body.secrets is not None:
        config.secrets = list(body.secrets)
    return {"url": config.url, "secrets": len(config.secrets)}


class SucceedIn(BaseModel):
    send: bool = True


@admin_router.post("/payment_intents/{intent_id}/succeed")
async def succeed(intent_id: str, request: Request, body: SucceedIn | None = None) -> Response:
    """The customer pays in full: the intent succeeds with a charge, and
    ``payment_intent.succeeded`` is sent to c2c (unless ``send`` is false)."""
    db: Database = request.app.state.db
    try:
        with db.write() as session:
            row = _find(session, intent_id, "payment_intent")
            intent = dict(row.body)
            if intent["status"] != "succeeded":
                intent |= {
                    "status": "succeeded",
                    "amount_received": intent["amount"],
                    "latest_charge": _new_id("ch"),
                    "succeeded_at": int(time.time()),
                }
                _update(session, row, intent)
            event = _event(session, "payment_intent.succeeded", intent)
    except StripeError as exc:
        return exc.response()
    if body is not None and not body.send:
        return JSONResponse({"event_id": event["id"], "sent": False})
    return JSONResponse(await send_event(_config(request), event))


class SendIn(BaseModel):
    #: Sign at this Unix time instead of now (an old event, or a replay).
    at: int | None = None
    secret: str | None = None


@admin_router.post("/events/{event_id}/send")
async def resend(event_id: str, request: Request, body: SendIn | None = None) -> Response:
    db: Database = request.app.state.db
    try:
        with db.read() as session:
            event = _find(session, event_id, "event").body
    except StripeError as exc:
        return exc.response()
    body = body or SendIn()
    return JSONResponse(await send_event(_config(request), event, at=body.at, secret=body.secret))


@admin_router.post("/idempotency-keys/expire")
async def expire_keys(request: Request) -> dict[str, Any]:
    """Forget every idempotency key, as Stripe does after 24 hours."""
    db: Database = request.app.state.db
    with db.write() as session:
        rows = session.exec(select(StripeIdempotencyKey)).all()
        for row in rows:
            session.delete(row)
    return {"expired": len(rows)}


class LoseAnswersIn(BaseModel):
    count: int = 1
    #: Forget each lost answer's idempotency key too, as Stripe has by a retry a day later.
    forget_keys: bool = False


@admin_router.post("/lose-answers")
async def lose_answers(body: LoseAnswersIn, request: Request) -> dict[str, Any]:
    """The next ``count`` writes are made and kept, then answered ``500``; with
    ``forget_keys``, their idempotency keys are forgotten at once."""
    config = _config(request)
    left = config.lose_answers
    config.lose_answers = max(0, body.count)
    config.forget_lost_keys = body.forget_keys
    return {"lose_answers": body.count, "forget_keys": body.forget_keys, "were_left": left}
