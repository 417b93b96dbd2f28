"""``c2c ops subscriptions`` and ``c2c ops events``: outbound events' subscribers, the delivery
log and replays, on the configured ledger (``docs/events.md``). The API's dispatcher sends
what they make due."""

from __future__ import annotations

import typer

from c2c.secret_box import (
    SETTING,
    SecretBox,
    SecretsKeyError,
    SecretUnreadable,
    new_key,
    secret_box,
)
from c2c.settings import get_settings
from ledger import DeliveryStatus, NotFoundInLedger, OutboundDelivery, OutboundEventType
from starter.api.outbound import check_url
from starter.cli import render
from starter.cli.ops import EXIT_INVALID, fail, open_ledger

subscriptions_app = typer.Typer(
    help="Who receives outbound events: add, list, remove.", no_args_is_help=True
)
events_app = typer.Typer(
    help="Outbound events: the delivery log (list) and replay.", no_args_is_help=True
)

_TYPES = ", ".join(t.value for t in OutboundEventType)


@subscriptions_app.command("add")
def add(
    url: str = typer.Argument(..., help="where events are POSTed: an http(s) URL"),
    event: list[str] = typer.Option(..., "--event", help=f"an event type to send: {_TYPES}"),
) -> None:
    """Subscribe a URL; prints its signing secret, shown only now."""
    try:
        check_url(url)
    except ValueError as exc:
        fail(f"url: {exc}", EXIT_INVALID)
    unknown = sorted(set(event) - {t.value for t in OutboundEventType})
    if unknown:
        fail(f"--event: {', '.join(unknown)} is not one of {_TYPES}", EXIT_INVALID)
    row = open_ledger().add_subscription(url, event, created_by="cli", box=_box())
    typer.echo(f"Subscription {row.subscription_id}: {row.url} ({', '.join(row.event_types)})")
    typer.echo(f"Signing secret (shown once): {row.secret}")


@subscriptions_app.command("list")
def list_subscriptions() -> None:
    """The current subscriptions (without their secrets)."""
    rows = open_ledger().list_subscriptions()
    if not rows:
        typer.echo("No subscriptions.")
        return
    typer.echo(
        render.table(
            ["subscription", "url", "events", "created", "paused"],
            [
                [
                    r.subscription_id,
                    r.url,
                    ",".join(r.event_types),
                    r.created_at.isoformat(),
                    r.paused_at.isoformat() if r.paused_at else "",
                ]
                for r in rows
            ],
        )
    )


@subscriptions_app.command("remove")
def remove(subscription_id: str) -> None:
    """Remove a subscription: nothing more is sent to it; its delivery log is kept."""
    try:
        open_ledger().remove_subscription(subscription_id)
    except NotFoundInLedger:
        fail(f"no subscription {subscription_id}")
    typer.echo(f"Removed subscription {subscription_id}.")


@subscriptions_app.command("pause")
def pause(subscription_id: str) -> None:
    """Pause a subscription: events for it are recorded and wait; nothing is sent."""
    _pause(subscription_id, True, "its deliveries wait until it is resumed")


@subscriptions_app.command("resume")
def resume(subscription_id: str) -> None:
    """Resume a paused subscription: the deliveries that waited are due now."""
    _pause(subscription_id, False, "the API's dispatcher sends what waited")


def _pause(subscription_id: str, paused: bool, then: str) -> None:
    try:
        open_ledger().pause_subscription(subscription_id, paused)
    except NotFoundInLedger:
        fail(f"no subscription {subscription_id}")
    typer.echo(f"{'Paused' if paused else 'Resumed'} subscription {subscription_id}; {then}.")


@subscriptions_app.command("reencrypt")
def reencrypt() -> None:
    """Seal every subscription's signing secret with the first key of C2C_SECRETS_KEY: those
    still in clear (from 0.10) and those sealed with an older key. Safe to run again."""
    try:
        count = open_ledger().reseal_secrets(_box())
    except SecretUnreadable as exc:
        fail(f"{exc}; nothing was changed. Add the key it was sealed with to {SETTING}.")
    typer.echo(f"Re-encrypted {count} subscription secret(s) with the current key.")


@subscriptions_app.command("new-key")
def new_secrets_key() -> None:
    """Print a new Fernet key for C2C_SECRETS_KEY. Put it first and keep the old keys after
    it until `c2c ops subscriptions reencrypt` has run."""
    typer.echo(new_key())


def _box() -> SecretBox:
    try:
        return secret_box(get_settings())
    except SecretsKeyError as exc:
        fail(str(exc), EXIT_INVALID)


@events_app.command("list")
def list_events(
    status: DeliveryStatus | None = typer.Option(
        None, help="only events with a delivery in this status"
    ),
    event_type: OutboundEventType | None = typer.Option(None, "--type", help="only this type"),
    contract: str | None = typer.Option(None, help="only this contract"),
    limit: int = typer.Option(100, min=1, max=5000, help="the newest this many"),
) -> None:
    """Outbound events, oldest first, one line per delivery."""
    found = open_ledger().list_outbound_events(
        status=status, event_type=event_type, contract_id=contract, limit=limit
    )
    if not found:
        typer.echo("No outbound events.")
        return
    rows = []
    for item in found:
        event = item.event
        deliveries: list[OutboundDelivery | None] = list(item.deliveries) or [None]
        for d in deliveries:
            rows.append(
                [
                    event.event_id,
                    event.type,
                    event.contract_id or "",
                    d.subscription_id if d else "(none)",
                    d.status if d else "",
                    d.attempts if d else "",
                    (d.last_status_code or d.last_error or "") if d else "",
                    d.delivered_at.isoformat() if d and d.delivered_at else "",
                ]
            )
    typer.echo(
        render.table(
            [
                "event",
                "type",
                "contract",
                "subscription",
                "status",
                "attempts",
                "last",
                "delivered",
            ],
            rows,
        )
    )


@events_app.command("replay")
def replay(
    event_id: str,
    subscription: str | None = typer.Option(
        None, "--subscription", help="only to this subscription (default: every one taking it)"
    ),
) -> None:
    """Deliver an event again; the API's dispatcher sends it."""
    try:
        deliveries = open_ledger().replay_outbound_event(event_id, subscription)
    except NotFoundInLedger as exc:
        fail(str(exc).replace("'", ""))
    if not deliveries:
        fail(f"no current subscription takes event {event_id}'s type; nothing to deliver")
    names = ", ".join(d.subscription_id for d in deliveries)
    typer.echo(f"Event {event_id} will be delivered again to {names}.")
