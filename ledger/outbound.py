"""Outbound events: the outbox of events for subscribers, the subscriptions, and each event's
deliveries.

An event is written by the ledger method that records the fact causing it, in the same
transaction (``_emit``), with an id derived from the fact's key: a retried activity, a replayed
or reset workflow writes the fact and its event once, and a fact never stands without its
event. The deliveries to the subscriptions that take its type are written with it; the API's
dispatcher (``starter.ops.outbound``) claims due deliveries with a lease and settles each.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Update, func, or_, update
from sqlmodel import Session, col, select

from c2c.secret_box import SecretBox, SecretUnreadable
from ledger.base import LedgerBase, count_returned
from ledger.columns import require_aware
from ledger.errors import NotFoundInLedger
from ledger.models import (
    DeliveryStatus,
    OutboundDelivery,
    OutboundEvent,
    OutboundEventType,
    Subscription,
    utc_now,
)

#: How long a dispatcher holds the deliveries it claimed before another may take them.
DEFAULT_DELIVERY_CLAIM = timedelta(seconds=60)


#: The events of a customer's consolidated invoice (not of one contract).
_CONSOLIDATED_INVOICE_EVENTS = frozenset(
    {
        OutboundEventType.CONSOLIDATED_INVOICE_ISSUED,
        OutboundEventType.CONSOLIDATED_INVOICE_PAID,
    }
)


def outbound_event_id(event_type: OutboundEventType | str, key: str) -> str:
    """The stable id of the event of ``event_type`` caused by the fact keyed ``key``."""
    digest = hashlib.sha256(f"{event_type}:{key}".encode()).hexdigest()
    return f"evt_{digest[:40]}"


def delivery_id(event_id: str, subscription_id: str) -> str:
    """The id of one event's delivery to one subscription."""
    return f"{event_id}:{subscription_id}"


@dataclass(frozen=True)
class ClaimedDelivery:
    """A delivery claimed for sending, with its event and subscription."""

    delivery: OutboundDelivery
    event: OutboundEvent
    subscription: Subscription


@dataclass(frozen=True)
class OutboundBacklog:
    """The deliveries not yet made, and how long the oldest of them has waited."""

    pending: int
    oldest_age_s: float


@dataclass(frozen=True)
class EventDeliveries:
    """An outbound event and its deliveries, by subscription id."""

    event: OutboundEvent
    deliveries: list[OutboundDelivery] = field(default_factory=list)


class OutboundLedger(LedgerBase):
    """The outbound-events part of the ledger."""

    def _emit(
        self,
        session: Session,
        event_type: OutboundEventType,
        key: str,
        payload: dict[str, Any],
        *,
        contract_id: str | None,
        occurred_at: datetime,
    ) -> None:
        """Write the event of ``event_type`` caused by the fact ``key`` in ``session``'s
        transaction, once, with a pending delivery to each subscription that takes it."""
        now = utc_now()
        event_id = outbound_event_id(event_type, key)
        row = {
            "event_id": event_id,
            "type": event_type.value,
            "contract_id": contract_id,
            "payload": payload,
            "occurred_at": require_aware(occurred_at),
            "created_at": now,
        }
        stmt = self._insert_new(OutboundEvent, ["event_id"], returning=["event_id"])
        if not count_returned(session, stmt, row):
            return  # written before, with its deliveries
        query = select(Subscription).where(col(Subscription.removed_at).is_(None))
        takers = [s for s in session.exec(query).all() if event_type.value in s.event_types]
        if takers:
            session.connection().execute(
                self._insert_new(OutboundDelivery, ["delivery_id"]),
                [_new_delivery(event_id, s.subscription_id, now) for s in takers],
            )

    def record_consolidated_invoice_event(
        self, event_type: OutboundEventType, data: dict[str, Any], at: datetime
    ) -> None:
        """Write a consolidated invoice's event (``consolidated_invoice.issued`` or ``.paid``)
        once, keyed by the invoice's ``invoice_id``; inside the caller's unit of work when
        there is one (with the fact that causes it).

        Raises:
            ValueError: Not a consolidated invoice's event type, or ``data`` has no
                ``invoice_id``.
        """
        if event_type not in _CONSOLIDATED_INVOICE_EVENTS:
            raise ValueError(f"event_type: {event_type!r} is not a consolidated invoice's event")
        invoice_id = data.get("invoice_id")
        if not invoice_id:
            raise ValueError("invoice_id: a consolidated invoice's event names its invoice")
        with self._transaction() as session:
            self._emit(session, event_type, str(invoice_id), data, contract_id=None, occurred_at=at)

    def add_subscription(
        self,
        url: str,
        event_types: Collection[str],
        created_by: str | None = None,
        *,
        box: SecretBox,
    ) -> Subscription:
        """Register ``url`` for ``event_types`` with a new signing secret, stored sealed by
        ``box``.

        Returns:
            The subscription with its secret in clear, for its creator to see this once; the
            ledger's row holds it sealed.

        Raises:
            ValueError: An event type c2c does not send.
        """
        types = sorted({OutboundEventType(t).value for t in event_types})
        if not types:
            raise ValueError("a subscription takes at least one event type")
        secret = f"whsec_{secrets.token_urlsafe(32)}"
        fields: dict[str, Any] = {
            "subscription_id": f"sub_{secrets.token_hex(12)}",
            "url": url,
            "event_types": types,
            "created_at": utc_now(),
            "created_by": created_by,
        }
        with self._transaction() as session:
            session.add(Subscription(**fields, secret=box.seal(secret)))
        return Subscription(**fields, secret=secret)

    def reseal_secrets(
        self, box: SecretBox, subscription_ids: Collection[str] | None = None
    ) -> int:
        """Seal with ``box``'s current key every subscription secret (of ``subscription_ids``,
        or all, the removed ones too) that is in clear or sealed with an older key; returns how
        many were rewritten. Each row is rewritten only if it still holds what was read, so
        two processes resealing at once write each secret once.

        Raises:
            SecretUnreadable: A secret is sealed with a key ``box`` does not hold; nothing was
                rewritten.
        """
        query = select(Subscription)
        if subscription_ids is not None:
            query = query.where(col(Subscription.subscription_id).in_(list(subscription_ids)))
        rewritten = 0
        with self._transaction() as session:
            for row in session.exec(query).all():
                if box.is_current(row.secret):
                    continue
                try:
                    sealed = box.reseal(row.secret)
                except SecretUnreadable as exc:
                    raise SecretUnreadable(f"subscription {row.subscription_id}: {exc}") from None
                done = session.connection().execute(
                    update(Subscription)
                    .where(
                        col(Subscription.subscription_id) == row.subscription_id,
                        col(Subscription.secret) == row.secret,
                    )
                    .values(secret=sealed)
                )
                rewritten += done.rowcount or 0
        return rewritten

    def pause_subscription(
        self, subscription_id: str, paused: bool = True, at: datetime | None = None
    ) -> Subscription:
        """Pause a subscription (its deliveries wait: events keep being recorded for it, none
        is sent) or resume it (``paused=False``: what waited is due now). Pausing a paused one
        or resuming a running one changes nothing.

        Raises:
            NotFoundInLedger: No current subscription has that id.
        """
        when = require_aware(at) if at else utc_now()
        with self._transaction() as session:
            subscription = session.get(Subscription, subscription_id)
            if subscription is None or subscription.removed_at is not None:
                raise NotFoundInLedger(f"no subscription {subscription_id!r}")
            if paused and subscription.paused_at is None:
                subscription.paused_at = when
                session.add(subscription)
            elif not paused and subscription.paused_at is not None:
                subscription.paused_at = None
                session.add(subscription)
                session.connection().execute(
                    _pending_of(subscription_id).values(
                        next_attempt_at=when, started_at=when, claimed_until=None
                    )
                )
        return subscription

    def last_deliveries(self) -> dict[str, OutboundDelivery]:
        """Each subscription's latest attempted delivery, by subscription id (those never
        attempted are absent)."""
        latest = (
            select(
                OutboundDelivery.subscription_id,
                func.max(OutboundDelivery.last_attempt_at).label("at"),
            )
            .where(col(OutboundDelivery.last_attempt_at).is_not(None))
            .group_by(col(OutboundDelivery.subscription_id))
            .subquery()
        )
        query = select(OutboundDelivery).join(
            latest,
            (col(OutboundDelivery.subscription_id) == latest.c.subscription_id)
            & (col(OutboundDelivery.last_attempt_at) == latest.c.at),
        )
        with self._session() as session:
            return {row.subscription_id: row for row in session.exec(query).all()}

    def outbound_backlog(self, now: datetime | None = None) -> OutboundBacklog:
        """The deliveries not yet made (pending, paused subscriptions' included) and how long
        the oldest has waited."""
        at = require_aware(now) if now else utc_now()
        pending = col(OutboundDelivery.status) == DeliveryStatus.PENDING.value
        with self._session() as session:
            count, oldest = session.exec(
                select(func.count(), func.min(OutboundDelivery.started_at)).where(pending)
            ).one()
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=UTC)
        age = max(0.0, (at - oldest).total_seconds()) if oldest is not None else 0.0
        return OutboundBacklog(pending=int(count or 0), oldest_age_s=age)

    def list_subscriptions(self, *, include_removed: bool = False) -> list[Subscription]:
        """The subscriptions, oldest first (not the removed ones unless asked)."""
        query = select(Subscription)
        if not include_removed:
            query = query.where(col(Subscription.removed_at).is_(None))
        query = query.order_by(col(Subscription.created_at), col(Subscription.subscription_id))
        with self._session() as session:
            return list(session.exec(query).all())

    def remove_subscription(self, subscription_id: str, at: datetime | None = None) -> Subscription:
        """Remove a subscription: it receives nothing more, its pending deliveries fail; its
        delivery log is kept. Removing it again changes nothing.

        Raises:
            NotFoundInLedger: No subscription has that id.
        """
        when = require_aware(at) if at else utc_now()
        with self._transaction() as session:
            subscription = session.get(Subscription, subscription_id)
            if subscription is None:
                raise NotFoundInLedger(f"no subscription {subscription_id!r}")
            if subscription.removed_at is None:
                subscription.removed_at = when
                session.add(subscription)
                session.connection().execute(
                    _pending_of(subscription_id).values(
                        status=DeliveryStatus.FAILED.value,
                        last_error="the subscription was removed",
                        claimed_until=None,
                    )
                )
        return subscription

    def get_outbound_event(self, event_id: str) -> EventDeliveries | None:
        """One outbound event with its deliveries, or ``None``."""
        with self._session() as session:
            event = session.get(OutboundEvent, event_id)
            if event is None:
                return None
            return EventDeliveries(event, _deliveries_of(session, [event_id]).get(event_id, []))

    def list_outbound_events(
        self,
        *,
        status: DeliveryStatus | str | None = None,
        event_type: OutboundEventType | str | None = None,
        contract_id: str | None = None,
        contract_ids: Collection[str] | None = None,
        limit: int = 500,
    ) -> list[EventDeliveries]:
        """The newest outbound events (at most ``limit``), oldest first, with their
        deliveries; ``status``: only events with a delivery in that status;
        ``contract_ids``: only those contracts' events."""
        query = select(OutboundEvent)
        if event_type is not None:
            query = query.where(OutboundEvent.type == OutboundEventType(event_type).value)
        if contract_id is not None:
            query = query.where(OutboundEvent.contract_id == contract_id)
        if contract_ids is not None:
            query = query.where(col(OutboundEvent.contract_id).in_(sorted(contract_ids)))
        if status is not None:
            having = select(OutboundDelivery.event_id).where(
                OutboundDelivery.status == DeliveryStatus(status).value
            )
            query = query.where(col(OutboundEvent.event_id).in_(having))
        query = query.order_by(
            col(OutboundEvent.created_at).desc(), col(OutboundEvent.event_id).desc()
        ).limit(limit)
        with self._session() as session:
            events = list(reversed(session.exec(query).all()))
            deliveries = _deliveries_of(session, [e.event_id for e in events])
        return [EventDeliveries(e, deliveries.get(e.event_id, [])) for e in events]

    def claim_due_deliveries(
        self,
        limit: int,
        claim: timedelta = DEFAULT_DELIVERY_CLAIM,
        now: datetime | None = None,
    ) -> list[ClaimedDelivery]:
        """Take up to ``limit`` pending deliveries whose next attempt is due and that no
        dispatcher holds, holding them for ``claim``: several dispatchers never take the same
        one at once, and a crashed one's are taken again once its claim runs out."""
        at = require_aware(now) if now else utc_now()
        paused = select(Subscription.subscription_id).where(
            col(Subscription.paused_at).is_not(None)
        )
        due = (
            col(OutboundDelivery.status) == DeliveryStatus.PENDING.value,
            col(OutboundDelivery.next_attempt_at) <= at,
            or_(
                col(OutboundDelivery.claimed_until).is_(None),
                col(OutboundDelivery.claimed_until) < at,
            ),
            col(OutboundDelivery.subscription_id).not_in(paused),
        )
        # A read first: when nothing is due (nearly always) no write transaction is opened.
        with self._session() as session:
            candidates = list(
                session.exec(
                    select(OutboundDelivery.delivery_id)
                    .where(*due)
                    .order_by(col(OutboundDelivery.next_attempt_at))
                    .limit(limit)
                ).all()
            )
        if not candidates:
            return []
        stmt = (
            update(OutboundDelivery)
            .where(col(OutboundDelivery.delivery_id).in_(candidates), *due)
            .values(claimed_until=at + claim)
            .returning(col(OutboundDelivery.delivery_id))
        )
        with self._transaction() as session:
            taken = list(session.connection().execute(stmt).scalars())
            claimed = []
            for key in taken:
                delivery = session.get(OutboundDelivery, key)
                assert delivery is not None
                event = session.get(OutboundEvent, delivery.event_id)
                subscription = session.get(Subscription, delivery.subscription_id)
                assert event is not None and subscription is not None
                claimed.append(ClaimedDelivery(delivery, event, subscription))
        return claimed

    def settle_delivery(
        self,
        delivery_key: str,
        *,
        status: DeliveryStatus,
        status_code: int | None,
        error: str | None,
        next_attempt_at: datetime | None = None,
        at: datetime | None = None,
    ) -> None:
        """Record one attempt's outcome: delivered, failed, or pending until
        ``next_attempt_at``; the claim is released."""
        when = require_aware(at) if at else utc_now()
        values: dict[str, Any] = {
            "status": status.value,
            "attempts": OutboundDelivery.attempts + 1,
            "last_status_code": status_code,
            "last_error": error,
            "last_attempt_at": when,
            "claimed_until": None,
        }
        if status is DeliveryStatus.DELIVERED:
            values["delivered_at"] = when
        if next_attempt_at is not None:
            values["next_attempt_at"] = require_aware(next_attempt_at)
        stmt = (
            update(OutboundDelivery)
            .where(
                col(OutboundDelivery.delivery_id) == delivery_key,
                col(OutboundDelivery.status) == DeliveryStatus.PENDING.value,
            )
            .values(values)
        )
        with self._transaction() as session:
            session.connection().execute(stmt)

    def replay_outbound_event(
        self, event_id: str, subscription_id: str | None = None, at: datetime | None = None
    ) -> list[OutboundDelivery]:
        """Deliver an event again: to one subscription, or to every current subscription that
        takes its type. Each delivery starts over (pending now, no attempts).

        Raises:
            NotFoundInLedger: No such event, or no such current subscription.
        """
        when = require_aware(at) if at else utc_now()
        with self._transaction() as session:
            event = session.get(OutboundEvent, event_id)
            if event is None:
                raise NotFoundInLedger(f"no outbound event {event_id!r}")
            query = select(Subscription).where(col(Subscription.removed_at).is_(None))
            if subscription_id is not None:
                query = query.where(Subscription.subscription_id == subscription_id)
            targets = [
                s
                for s in session.exec(query).all()
                if subscription_id is not None or event.type in s.event_types
            ]
            if subscription_id is not None and not targets:
                raise NotFoundInLedger(f"no subscription {subscription_id!r}")
            keys = [delivery_id(event_id, s.subscription_id) for s in targets]
            if targets:
                session.connection().execute(
                    self._insert_new(OutboundDelivery, ["delivery_id"]),
                    [_new_delivery(event_id, s.subscription_id, when) for s in targets],
                )
                session.connection().execute(
                    update(OutboundDelivery)
                    .where(col(OutboundDelivery.delivery_id).in_(keys))
                    .values(
                        status=DeliveryStatus.PENDING.value,
                        attempts=0,
                        started_at=when,
                        next_attempt_at=when,
                        claimed_until=None,
                    )
                )
            rows = session.exec(
                select(OutboundDelivery).where(col(OutboundDelivery.delivery_id).in_(keys))
            ).all()
            return sorted(rows, key=lambda d: d.subscription_id)


def _pending_of(subscription_id: str) -> Update:
    """An update of one subscription's pending deliveries."""
    return update(OutboundDelivery).where(
        col(OutboundDelivery.subscription_id) == subscription_id,
        col(OutboundDelivery.status) == DeliveryStatus.PENDING.value,
    )


def _new_delivery(event_id: str, subscription_id: str, at: datetime) -> dict[str, Any]:
    return {
        "delivery_id": delivery_id(event_id, subscription_id),
        "event_id": event_id,
        "subscription_id": subscription_id,
        "status": DeliveryStatus.PENDING.value,
        "attempts": 0,
        "started_at": at,
        "next_attempt_at": at,
        "claimed_until": None,
        "last_status_code": None,
        "last_error": None,
        "last_attempt_at": None,
        "delivered_at": None,
    }


def _deliveries_of(session: Session, event_ids: Sequence[str]) -> dict[str, list[OutboundDelivery]]:
    found: dict[str, list[OutboundDelivery]] = {}
    if not event_ids:
        return found
    query = (
        select(OutboundDelivery)
        .where(col(OutboundDelivery.event_id).in_(list(event_ids)))
        .order_by(col(OutboundDelivery.subscription_id))
    )
    for row in session.exec(query).all():
        found.setdefault(row.event_id, []).append(row)
    return found
