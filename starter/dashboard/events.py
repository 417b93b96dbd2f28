"""The dashboard's outbound events page (``/events``): the subscriptions (URL, event types,
running or paused, their last delivery) and the delivery log (each event's deliveries:
attempts, the last status or error, the next attempt), filtered by delivery status. An
operator replays an event, pauses or resumes a subscription, or removes one; each action
calls the same ledger code as ``/api/subscriptions`` and ``/api/outbound-events``.

Subscriptions span legal entities, so, as the API refuses a token limited to some, a login
limited to some sees only the deliveries of its own entities' contracts, not the
subscriptions, and may not act here.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from c2c.logs import get_logger
from ledger import DeliveryStatus, NotFoundInLedger, OutboundDelivery, Subscription
from ledger.outbound import EventDeliveries
from starter.api import scope
from starter.api.context import context_of
from starter.api.errors import ApiError
from starter.api.outbound import PauseAction, pause_or_resume
from starter.dashboard.pages import (
    DashboardError,
    check_csrf,
    operator,
    read_form,
    redirect,
    refuse,
    render,
    viewer,
)
from starter.dashboard.session import Session
from starter.dashboard.views import Problem

log = get_logger("c2c.dashboard")
router = APIRouter(include_in_schema=False)

#: Events the delivery log shows, the newest.
EVENTS_SHOWN = 200
#: What an operator may do to a subscription from the page.
SUBSCRIPTION_ACTIONS = ("pause", "resume", "remove")
_STATUSES = tuple(s.value for s in DeliveryStatus)


@dataclass(frozen=True)
class SubscriptionRow:
    """A subscription as the page lists it, with its latest attempted delivery."""

    subscription: Subscription
    last: OutboundDelivery | None


def _status_filter(request: Request) -> str | None:
    value = (request.query_params.get("status") or "").strip() or None
    if value is not None and value not in _STATUSES:
        raise refuse([Problem("status", f"must be one of {', '.join(_STATUSES)}")])
    return value


def _may_manage(session: Session) -> Session:
    """An operator's session of every legal entity, which the actions here need.

    Raises:
        DashboardError: ``401``/``403`` (not an operator), ``403`` (a login limited to some
            legal entities).
    """
    if session.identity.scoped:
        raise DashboardError(
            403,
            "subscriptions and outbound events span legal entities: a login limited to some "
            "may not act on them",
        )
    return session


@router.get("/events", response_class=HTMLResponse)
async def events_page(request: Request) -> Response:
    """The subscriptions and the delivery log, filtered by ``?status=``."""
    session = viewer(request)
    status = _status_filter(request)
    context = context_of(request)
    ledger = await context.ledger()
    identity = session.identity
    visible = await scope.contracts_of(ledger, identity)
    found: list[EventDeliveries] = await asyncio.to_thread(
        lambda: ledger.list_outbound_events(status=status, contract_ids=visible, limit=EVENTS_SHOWN)
    )
    subscriptions: list[SubscriptionRow] = []
    if not identity.scoped:
        rows, last = await asyncio.gather(
            asyncio.to_thread(ledger.list_subscriptions),
            asyncio.to_thread(ledger.last_deliveries),
        )
        subscriptions = [SubscriptionRow(r, last.get(r.subscription_id)) for r in rows]
    found.reverse()  # newest first
    return render(
        request,
        "events.html",
        session,
        delivery_status=status,
        statuses=_STATUSES,
        subscriptions=subscriptions,
        paused={r.subscription.subscription_id for r in subscriptions if r.subscription.paused_at},
        events=found,
        scoped=identity.scoped,
        shown=EVENTS_SHOWN,
    )


def _back(form: dict[str, str]) -> str:
    status = form.get("status", "")
    return f"/events?status={status}" if status in _STATUSES else "/events"


@router.post("/ui/events/{event_id}/replay")
async def replay_event(event_id: str, request: Request) -> Response:
    """Deliver an event again to every current subscription that takes its type."""
    session = _may_manage(operator(request))
    form = await read_form(request)
    check_csrf(request, session, form)
    if not 1 <= len(event_id) <= 64:
        raise DashboardError(422, "must be an event id of 1-64 characters", field="event_id")
    ledger = await context_of(request).ledger()
    try:
        deliveries = await asyncio.to_thread(ledger.replay_outbound_event, event_id)
    except NotFoundInLedger:
        raise DashboardError(404, f"no outbound event {event_id}") from None
    if not deliveries:
        raise DashboardError(
            409, f"no current subscription takes event {event_id}'s type; nothing to deliver"
        )
    dispatcher = getattr(request.app.state, "outbound", None)
    if dispatcher is not None:
        dispatcher.wake()
    log.info("outbound event replayed from the dashboard", event_id=event_id, by=session.operator)
    names = ", ".join(d.subscription_id for d in deliveries)
    return redirect(
        request,
        _back(form),
        kind="ok",
        text=f"Event {event_id} will be delivered again to {names}.",
    )


@router.post("/ui/subscriptions/{subscription_id}/{action}")
async def change_subscription(subscription_id: str, action: str, request: Request) -> Response:
    """Pause, resume or remove a subscription."""
    session = _may_manage(operator(request))
    form = await read_form(request)
    check_csrf(request, session, form)
    if action not in SUBSCRIPTION_ACTIONS:
        raise DashboardError(
            404, f"action must be one of {', '.join(SUBSCRIPTION_ACTIONS)}", field="action"
        )
    if not 1 <= len(subscription_id) <= 64:
        raise DashboardError(
            422, "must be a subscription id of 1-64 characters", field="subscription_id"
        )
    ledger = await context_of(request).ledger()
    if action == "remove":
        try:
            await asyncio.to_thread(ledger.remove_subscription, subscription_id)
        except NotFoundInLedger:
            raise DashboardError(404, f"no subscription {subscription_id}") from None
        text = f"Removed subscription {subscription_id}; its delivery log is kept."
    else:
        try:
            await pause_or_resume(ledger, subscription_id, PauseAction(action))
        except ApiError as exc:
            raise DashboardError(exc.status, exc.message) from None
        if action == "resume":
            dispatcher = getattr(request.app.state, "outbound", None)
            if dispatcher is not None:
                dispatcher.wake()
            text = f"Resumed subscription {subscription_id}; what waited is sent now."
        else:
            text = f"Paused subscription {subscription_id}; its deliveries wait."
    log.info(
        "subscription changed from the dashboard",
        subscription_id=subscription_id,
        action=action,
        by=session.operator,
    )
    return redirect(request, _back(form), kind="ok", text=text)
