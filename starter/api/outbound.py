"""``/api/subscriptions`` and ``/api/outbound-events`` (operator): who receives c2c's
outbound events, each event's deliveries, and a replay (``docs/events.md``).

Subscriptions and events span legal entities, so a token limited to some entities is refused.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.concurrency import run_in_threadpool

from c2c.secret_box import secret_box
from ledger import (
    DeliveryStatus,
    Ledger,
    NotFoundInLedger,
    OutboundDelivery,
    OutboundEventType,
    Subscription,
)
from ledger.outbound import EventDeliveries
from starter.api.auth import Identity, Role, require
from starter.api.context import ApiContext, api_context
from starter.api.errors import ApiError, error_responses, known_query_only

_operator = require(Role.OPERATOR)

router = APIRouter(
    prefix="/api",
    dependencies=[Depends(_operator), Depends(known_query_only)],
    responses=error_responses(400, 401, 403, 413, 422, 500),
    tags=["events"],
)

#: The longest subscriber URL taken.
MAX_URL_CHARS = 2000
#: What a subscriber URL looks like: ``http(s)://``, a host name or IPv4 address, a port from
#: 0 to 65535, and a path (with any query) of printable ASCII.
URL_PATTERN = (
    r"^https?://[A-Za-z0-9.-]+"
    r"(:([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?"
    r"(/[!-~]*)?$"
)


def check_url(value: str) -> str:
    """An absolute ``http`` or ``https`` URL with a host and no credentials in it.

    Raises:
        ValueError: It is not one.
    """
    if len(value) > MAX_URL_CHARS:
        raise ValueError(f"at most {MAX_URL_CHARS} characters")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("a URL has no spaces or control characters")
    try:
        parts = urlsplit(value)
        port = parts.port  # a malformed port raises here
    except ValueError:
        raise ValueError("not a valid URL") from None
    del port
    if parts.scheme not in ("http", "https"):
        raise ValueError("must be an http:// or https:// URL")
    if not parts.hostname:
        raise ValueError("must name a host")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials; the signature authenticates c2c")
    return value


class SubscriptionIn(BaseModel):
    """A subscriber to register."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        max_length=MAX_URL_CHARS,
        pattern=URL_PATTERN,
        description="where events are POSTed: an http(s) URL",
    )
    event_types: list[OutboundEventType] = Field(
        min_length=1, description="the event types it receives"
    )

    _url = field_validator("url")(check_url)


class SubscriptionItem(BaseModel):
    """A subscription, without its secret."""

    subscription_id: str
    url: str
    event_types: list[str]
    created_at: datetime
    created_by: str | None
    removed_at: datetime | None
    paused_at: datetime | None = Field(
        default=None, description="when an operator paused it (its deliveries wait); none: running"
    )

    @classmethod
    def of(cls, row: Subscription) -> SubscriptionItem:
        return cls.model_validate(row, from_attributes=True)


class PauseAction(StrEnum):
    """What an operator does to a subscription's deliveries."""

    PAUSE = "pause"
    RESUME = "resume"


class SubscriptionCreated(SubscriptionItem):
    """A new subscription with its signing secret: shown this once."""

    secret: str


class SubscriptionList(BaseModel):
    """Subscriptions, oldest first."""

    items: list[SubscriptionItem]


class DeliveryItem(BaseModel):
    """One event's delivery to one subscription."""

    subscription_id: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None

    @classmethod
    def of(cls, row: OutboundDelivery) -> DeliveryItem:
        item = cls.model_validate(row, from_attributes=True)
        if row.status != DeliveryStatus.PENDING.value:
            item.next_attempt_at = None
        return item


class OutboundEventItem(BaseModel):
    """An outbound event, its data and its deliveries."""

    event_id: str
    type: str
    contract_id: str | None
    occurred_at: datetime
    created_at: datetime
    data: dict[str, Any]
    deliveries: list[DeliveryItem]

    @classmethod
    def of(cls, found: EventDeliveries) -> OutboundEventItem:
        event = found.event
        return cls(
            event_id=event.event_id,
            type=event.type,
            contract_id=event.contract_id,
            occurred_at=event.occurred_at,
            created_at=event.created_at,
            data=event.payload,
            deliveries=[DeliveryItem.of(d) for d in found.deliveries],
        )


class OutboundEventList(BaseModel):
    """Outbound events, oldest first."""

    items: list[OutboundEventItem]


class ReplayIn(BaseModel):
    """Which subscription to deliver to again (all that take the event's type if none)."""

    model_config = ConfigDict(extra="forbid")

    subscription_id: str | None = Field(default=None, min_length=1, max_length=64)


def _unscoped(identity: Identity) -> None:
    if identity.scoped:
        raise ApiError(
            403,
            "forbidden",
            "subscriptions and outbound events span legal entities: a token limited to some "
            "may not use them",
        )


def _wake(request: Request) -> None:
    dispatcher = getattr(request.app.state, "outbound", None)
    if dispatcher is not None:
        dispatcher.wake()


@router.post("/subscriptions", status_code=201, response_model=SubscriptionCreated)
async def add_subscription(
    body: SubscriptionIn,
    identity: Identity = Depends(_operator),
    context: ApiContext = Depends(api_context),
) -> SubscriptionCreated:
    """Register a subscriber; the answer carries its signing secret, shown only now."""
    _unscoped(identity)
    ledger = await context.ledger()
    box = secret_box(context.settings)
    row = await run_in_threadpool(
        lambda: ledger.add_subscription(
            body.url, [t.value for t in body.event_types], identity.name, box=box
        )
    )
    return SubscriptionCreated(**SubscriptionItem.of(row).model_dump(), secret=row.secret)


@router.get("/subscriptions", response_model=SubscriptionList)
async def list_subscriptions(
    include_removed: bool = Query(default=False, description="the removed ones too"),
    identity: Identity = Depends(_operator),
    context: ApiContext = Depends(api_context),
) -> SubscriptionList:
    """The current subscriptions (their secrets are never shown again)."""
    _unscoped(identity)
    ledger = await context.ledger()
    rows = await run_in_threadpool(
        lambda: ledger.list_subscriptions(include_removed=include_removed)
    )
    return SubscriptionList(items=[SubscriptionItem.of(r) for r in rows])


@router.delete(
    "/subscriptions/{subscription_id}",
    response_model=SubscriptionItem,
    responses=error_responses(404),
)
async def remove_subscription(
    subscription_id: str = Path(min_length=1, max_length=64),
    identity: Identity = Depends(_operator),
    context: ApiContext = Depends(api_context),
) -> SubscriptionItem:
    """Remove a subscription: nothing more is sent to it; its delivery log is kept."""
    _unscoped(identity)
    ledger = await context.ledger()
    try:
        row = await run_in_threadpool(ledger.remove_subscription, subscription_id)
    except NotFoundInLedger:
        raise ApiError(404, "not_found", f"no subscription {subscription_id}") from None
    return SubscriptionItem.of(row)


@router.post(
    "/subscriptions/{subscription_id}/{action}",
    response_model=SubscriptionItem,
    responses=error_responses(404),
)
async def pause_or_resume_subscription(
    request: Request,
    subscription_id: str = Path(min_length=1, max_length=64),
    action: PauseAction = Path(description="pause: its deliveries wait; resume: they are due now"),
    identity: Identity = Depends(_operator),
    context: ApiContext = Depends(api_context),
) -> SubscriptionItem:
    """Pause a subscription (events for it are recorded and wait) or resume it."""
    _unscoped(identity)
    ledger = await context.ledger()
    row = await pause_or_resume(ledger, subscription_id, action)
    if action is PauseAction.RESUME:
        _wake(request)
    return SubscriptionItem.of(row)


async def pause_or_resume(
    ledger: Ledger, subscription_id: str, action: PauseAction
) -> Subscription:
    """Pause or resume one current subscription (the API's and the dashboard's action).

    Raises:
        ApiError: ``404``, no current subscription has that id.
    """
    try:
        return await run_in_threadpool(
            ledger.pause_subscription, subscription_id, action is PauseAction.PAUSE
        )
    except NotFoundInLedger:
        raise ApiError(404, "not_found", f"no subscription {subscription_id}") from None


@router.get("/outbound-events", response_model=OutboundEventList)
async def list_outbound_events(
    status: DeliveryStatus | None = Query(
        default=None, description="only events with a delivery in this status"
    ),
    event_type: OutboundEventType | None = Query(default=None, alias="type"),
    contract_id: str | None = Query(default=None, min_length=1, max_length=64),
    limit: int = Query(default=500, ge=1, le=5000),
    identity: Identity = Depends(_operator),
    context: ApiContext = Depends(api_context),
) -> OutboundEventList:
    """The newest outbound events (oldest first), each with its deliveries: attempts, the
    last status code or error, and when it was delivered."""
    _unscoped(identity)
    ledger = await context.ledger()
    found = await run_in_threadpool(
        lambda: ledger.list_outbound_events(
            status=status, event_type=event_type, contract_id=contract_id, limit=limit
        )
    )
    return OutboundEventList(items=[OutboundEventItem.of(f) for f in found])


@router.post(
    "/outbound-events/{event_id}/replay",
    response_model=OutboundEventItem,
    responses=error_responses(404),
)
async def replay_outbound_event(
    request: Request,
    event_id: str = Path(min_length=1, max_length=64),
    body: ReplayIn | None = Body(default=None),
    identity: Identity = Depends(_operator),
    context: ApiContext = Depends(api_context),
) -> OutboundEventItem:
    """Deliver an event again, to one subscription or to every current one that takes its
    type; each delivery starts over."""
    _unscoped(identity)
    ledger = await context.ledger()
    subscription_id = body.subscription_id if body else None
    try:
        await run_in_threadpool(ledger.replay_outbound_event, event_id, subscription_id)
    except NotFoundInLedger as exc:
        raise ApiError(404, "not_found", str(exc).replace("'", "")) from None
    _wake(request)
    found = await run_in_threadpool(ledger.get_outbound_event, event_id)
    assert found is not None
    return OutboundEventItem.of(found)
