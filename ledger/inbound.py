"""Inbound events: every webhook recorded once by its source's event id, and the dead letters.

The unique key on (source, event id) decides which of several concurrent deliveries records
an event, and so which one processes it; the others see it is known. A delivery processes an
event only while it holds a claim (a lease, so a crashed process does not keep it forever).

An event whose processing is idempotent by itself (starting a contract's workflow, which
Temporal refuses to start twice) is recorded after it is processed instead, together with
its outcome, in one transaction (``record_inbound_outcome``): the unique key then decides
whose answer is kept.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Executable,
    and_,
    bindparam,
    exists,
    func,
    or_,
    true,
    update,
)
from sqlalchemy import select as sa_select
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from ledger.base import LedgerBase, count_returned
from ledger.columns import require_aware
from ledger.errors import NotFoundInLedger
from ledger.models import (
    OPEN_STATUSES,
    InboundEvent,
    InboundEventIn,
    InboundSource,
    InboundStatus,
    table_of,
    utc_now,
)

#: The columns that identify an event: its source and the id its sender gave it.
_EVENT_KEY = ("source", "event_id")
#: How long a claim holds an event for the delivery that processes it.
DEFAULT_CLAIM = timedelta(seconds=60)


class InboundRecorded(NamedTuple):
    """What ``record_inbound_event`` found.

    Attributes:
        known: The event was recorded before; ``False`` means this call recorded it and
            holds the claim to process it.
        event: The event as stored now.
    """

    known: bool
    event: InboundEvent


class InboundEventLedger(LedgerBase):
    """The inbound-event part of the ledger."""

    def record_inbound_event(
        self, event: InboundEventIn, *, claim: timedelta = DEFAULT_CLAIM
    ) -> InboundRecorded:
        """Record an event if it is new; the call that records it also claims it.

        Returns:
            Whether it was known already, and its record as stored now.
        """
        row = _new_row(event, InboundStatus.RECEIVED, attempts=1)
        row["claimed_until"] = event.received_at + claim
        with self._transaction() as session:
            inserted = count_returned(session, self._insert_new_inbound, row)
            stored = session.exec(_one(event.source, event.event_id)).one()
        return InboundRecorded(known=not inserted, event=stored)

    def inbound_event_known(self, source: InboundSource | str, event_id: str) -> bool:
        """Whether an event is recorded, whatever its status (a read; no write lock taken)."""
        key = {"source": InboundSource(source).value, "event_id": event_id}
        with self.engine.connect() as connection:
            return connection.execute(_KNOWN, key).first() is not None

    def record_inbound_outcome(
        self,
        event: InboundEventIn,
        status: InboundStatus,
        *,
        response_status: int | None = None,
        response_body: dict[str, Any] | None = None,
        contract_id: str | None = None,
        reason: str | None = None,
        at: datetime | None = None,
    ) -> InboundEvent | None:
        """Record a new event with how its first processing ended, in one transaction.

        For a delivery that processed an event before recording it: ``processed`` with the
        answer duplicates will be given, ``dead_letter`` with the reason, or ``received`` after
        a transient failure (unclaimed, for the sender's retry, or the queue). It counts as
        one attempt.

        Args:
            event: The event as it arrived.
            status: How processing ended.
            response_status: The HTTP status it answered (``processed``).
            response_body: Its JSON body (``processed``).
            contract_id: The contract processing found it concerns; else the one read on
                arrival.
            reason: Why it is a dead letter.
            at: When processing ended; now if not given.

        Returns:
            ``None`` if this call recorded it; if it was recorded before, the event as stored
            (left unchanged).
        """
        ended = (
            None if status == InboundStatus.RECEIVED else (require_aware(at) if at else utc_now())
        )
        row = _new_row(
            event,
            status,
            attempts=1,
            processed_at=ended,
            response_status=response_status,
            response_body=response_body,
            reason=reason,
        )
        if contract_id is not None:
            row["contract_id"] = contract_id
        # A plain connection, not an ORM session: this is on every webhook's path.
        with self.engine.begin() as connection:
            if connection.execute(self._insert_new_inbound, row).all():
                return None
        with self._session() as session:
            return session.exec(_one(event.source, event.event_id)).one()

    def record_waiting_events(self, events: Sequence[InboundEventIn]) -> list[InboundEvent | None]:
        """Record new events as waiting for the event queue (``received``, no attempt), many
        in one transaction: the API's concurrent deliveries commit together.

        Returns:
            For each event, in order: ``None`` if this call recorded it; else the event as
            stored before (left unchanged). Of two deliveries of one event in the same call,
            the first records it and the second finds it.
        """
        if not events:
            return []
        keys = [(InboundSource(event.source).value, event.event_id) for event in events]
        first: dict[tuple[str, str], int] = {}
        for index, key in enumerate(keys):
            first.setdefault(key, index)
        rows = [
            _new_row(events[index], InboundStatus.RECEIVED, attempts=0) for index in first.values()
        ]
        with self.engine.begin() as connection:
            inserted = {
                (row.source, row.event_id)
                for row in connection.execute(self._insert_new_inbound_keys, rows)
            }
            # Read back what was known before, and what a later delivery in this call repeats.
            wanted = {
                key for index, key in enumerate(keys) if first[key] != index or key not in inserted
            }
            stored = (
                connection.execute(
                    sa_select(_TABLE).where(
                        or_(
                            *(and_(_TABLE.c.source == s, _TABLE.c.event_id == e) for s, e in wanted)
                        )
                    )
                ).all()
                if wanted
                else []
            )
        found = {(row.source, row.event_id): InboundEvent(**row._mapping) for row in stored}
        return [
            None if key in inserted and first[key] == index else found[key]
            for index, key in enumerate(keys)
        ]

    @property
    def _insert_new_inbound_keys(self) -> Executable:
        return self._insert_new(InboundEvent, _EVENT_KEY, returning=_EVENT_KEY)

    @property
    def _insert_new_inbound(self) -> Executable:
        return self._insert_new(InboundEvent, _EVENT_KEY, returning=["id"])

    def claim_inbound_event(
        self,
        source: InboundSource | str,
        event_id: str,
        *,
        statuses: Collection[InboundStatus] = OPEN_STATUSES,
        claim: timedelta = DEFAULT_CLAIM,
        at: datetime | None = None,
    ) -> InboundEvent | None:
        """Claim an event for processing, counting the attempt.

        Only an event in one of ``statuses`` (by default, not yet processed: received or a
        dead letter) whose last claim has expired can be claimed, so of racing deliveries
        exactly one gets it.

        Returns:
            The claimed event, or ``None`` if it is not claimable now (or not recorded).
        """
        now = require_aware(at) if at else utc_now()
        stmt = (
            update(InboundEvent)
            .where(
                _key(source, event_id),
                col(InboundEvent.status).in_([InboundStatus(s).value for s in statuses]),
                or_(
                    col(InboundEvent.claimed_until).is_(None),
                    col(InboundEvent.claimed_until) <= now,
                ),
            )
            .values(claimed_until=now + claim, attempts=InboundEvent.attempts + 1)
            .returning(col(InboundEvent.id))
        )
        with self._transaction() as session:
            if not count_returned(session, stmt):
                return None
            return session.exec(_one(source, event_id)).one()

    def claim_waiting_events(
        self,
        types: Mapping[InboundSource, Collection[str]],
        *,
        limit: int = 50,
        claim: timedelta = DEFAULT_CLAIM,
        at: datetime | None = None,
    ) -> list[InboundEvent]:
        """Claim up to ``limit`` received events of the given sources and types, oldest first,
        counting an attempt on each: the queue of events answered before they were processed.

        An event is waiting while it is ``received`` and unclaimed (or its claim has expired,
        or the time a failed attempt put it off to has come), and no earlier event of its
        contract is waiting: each contract's events are delivered in the order they arrived.
        Several processes may claim at once: the claim's condition is checked again on each
        row as it is updated, so an event goes to exactly one of them (on PostgreSQL too, where
        a concurrent claimer waits for the first one's row locks and then finds the rows
        claimed).

        Args:
            types: The event types to take, by source.
            limit: The most events claimed.
            claim: How long the claimer holds them.
            at: Now, if not the clock's.
        """
        if not types or limit <= 0:
            return []
        now = require_aware(at) if at else utc_now()
        wanted = or_(
            *(
                and_(
                    col(InboundEvent.source) == InboundSource(source).value,
                    col(InboundEvent.type).in_(list(kinds)),
                )
                for source, kinds in types.items()
            )
        )
        claimable = and_(
            col(InboundEvent.status) == InboundStatus.RECEIVED.value,
            or_(col(InboundEvent.claimed_until).is_(None), col(InboundEvent.claimed_until) <= now),
        )
        # A contract's events are delivered in the order they arrived: one waits while an
        # earlier event of its contract waits (being processed, or put off after a failure),
        # so a milestone never overtakes its contract's approval, nor an amendment another.
        # Events of no known contract (a payment of an invoice not seen yet) wait for nothing.
        earlier = aliased(InboundEvent)
        in_turn = ~exists().where(
            col(earlier.contract_id) == col(InboundEvent.contract_id),
            col(earlier.status) == InboundStatus.RECEIVED.value,
            col(earlier.id) < col(InboundEvent.id),
        )
        # One statement, so SQLite takes its write lock before it reads; PostgreSQL's claimers
        # skip the rows another one is claiming instead of queueing behind it. A CTE, so the
        # choice is made once: as a subquery, PostgreSQL may run it again per row and claim
        # past the limit.
        oldest = (
            select(col(InboundEvent.id))
            .where(claimable, wanted, in_turn)
            .order_by(col(InboundEvent.id))
            .limit(limit)
            .with_for_update(skip_locked=True)
            .cte("oldest_waiting")
        )
        stmt = (
            update(InboundEvent)
            .where(col(InboundEvent.id).in_(select(oldest.c.id)), claimable)
            .values(claimed_until=now + claim, attempts=InboundEvent.attempts + 1)
            .returning(*_TABLE.c)
        )
        with self._transaction() as session:
            rows = session.connection().execute(stmt).all()
        claimed = [InboundEvent(**row._mapping) for row in rows]
        return sorted(claimed, key=lambda event: event.id or 0)

    def postpone_inbound_event(
        self,
        source: InboundSource | str,
        event_id: str,
        until: datetime,
        *,
        claimed_until: datetime | None = None,
    ) -> InboundEvent:
        """Put off the next attempt at a waiting event after a transient failure: it stays
        ``received``, and no claimer takes it before ``until``.

        Args:
            claimed_until: The end of the claim the caller holds: the event is put off only
                while that claim is still its claim. A claimer whose claim ran out meanwhile
                (another process claimed the event and is processing it) leaves the other's
                claim as it is, so that no third process takes the event before it ends.

        Raises:
            NotFoundInLedger: No such event.
        """
        held = (
            col(InboundEvent.claimed_until) == require_aware(claimed_until)
            if claimed_until is not None
            else true()
        )
        stmt = (
            update(InboundEvent)
            .where(_key(source, event_id), _open(), held)
            .values(claimed_until=require_aware(until))
        )
        return self._update_inbound(stmt, source, event_id)

    def replace_inbound_body(self, event: InboundEventIn) -> InboundEvent:
        """Keep another body for a dead letter (its sender corrected it under the same id):
        its digest, and what a replay processes, from now on. An event that is not a dead
        letter keeps its body.

        Raises:
            NotFoundInLedger: No such event.
        """
        stmt = (
            update(InboundEvent)
            .where(
                _key(event.source, event.event_id),
                col(InboundEvent.status) == InboundStatus.DEAD_LETTER.value,
            )
            .values(body=event.body, body_digest=event.body_digest)
        )
        return self._update_inbound(stmt, event.source, event.event_id)

    def approval_waiting(self, contract_id: str) -> bool:
        """Whether a CLM approval of the contract is recorded and not processed yet (queued, or
        left for the CLM's retry): its workflow is about to start."""
        query = (
            select(col(InboundEvent.id))
            .where(
                col(InboundEvent.contract_id) == contract_id,
                col(InboundEvent.source) == InboundSource.CLM.value,
                col(InboundEvent.type) == "contract.approved",
                col(InboundEvent.status) == InboundStatus.RECEIVED.value,
            )
            .limit(1)
        )
        with self._session() as session:
            return session.exec(query).first() is not None

    def count_waiting_events(self) -> dict[str, int]:
        """How many events are ``received`` and not yet processed, by source."""
        query = (
            select(col(InboundEvent.source), func.count())
            .where(col(InboundEvent.status) == InboundStatus.RECEIVED.value)
            .group_by(col(InboundEvent.source))
        )
        with self._session() as session:
            return {source: count for source, count in session.exec(query).all()}

    def release_inbound_event(self, source: InboundSource | str, event_id: str) -> InboundEvent:
        """Give up a claim without a result (a transient failure): the event stays as it was,
        for the sender's next delivery.

        Raises:
            NotFoundInLedger: No such event.
        """
        stmt = update(InboundEvent).where(_key(source, event_id)).values(claimed_until=None)
        return self._update_inbound(stmt, source, event_id)

    def mark_inbound_processed(
        self,
        source: InboundSource | str,
        event_id: str,
        *,
        response_status: int,
        response_body: dict[str, Any],
        contract_id: str | None = None,
        replayed: bool = False,
        at: datetime | None = None,
    ) -> InboundEvent:
        """Record that an event was processed, with the answer duplicates will be given.

        An event already processed keeps its first answer (two deliveries that both
        processed it after a claim expired cannot make it answer differently).

        Args:
            source: The sending system.
            event_id: The event's id.
            response_status: The HTTP status the processing answered.
            response_body: Its JSON body.
            contract_id: The contract that processing found it concerns; if not given, the
                one recorded on arrival stays.
            replayed: Processed by an operator's replay of a dead letter.
            at: When; now if not given.

        Raises:
            NotFoundInLedger: No such event.
        """
        self.settle_inbound_event(
            source,
            event_id,
            response_status=response_status,
            response_body=response_body,
            contract_id=contract_id,
            replayed=replayed,
            at=at,
        )
        stored = self.get_inbound_event(source, event_id)
        if stored is None:
            raise NotFoundInLedger(f"no {InboundSource(source).value} event {event_id!r}")
        return stored

    def mark_inbound_dead_letter(
        self,
        source: InboundSource | str,
        event_id: str,
        reason: str,
        *,
        contract_id: str | None = None,
        at: datetime | None = None,
    ) -> InboundEvent:
        """Keep an event that could not be processed as a dead letter, with the reason.

        An event that another delivery has processed meanwhile stays processed. A
        ``contract_id`` given replaces the one recorded on arrival.

        Raises:
            NotFoundInLedger: No such event.
        """
        stmt = (
            update(InboundEvent)
            .where(_key(source, event_id), _open())
            .values(
                status=InboundStatus.DEAD_LETTER.value,
                reason=reason,
                processed_at=require_aware(at) if at else utc_now(),
                claimed_until=None,
                contract_id=func.coalesce(contract_id, InboundEvent.contract_id),
            )
        )
        return self._update_inbound(stmt, source, event_id)

    def settle_inbound_event(
        self,
        source: InboundSource | str,
        event_id: str,
        *,
        response_status: int,
        response_body: dict[str, Any],
        contract_id: str | None = None,
        replayed: bool = False,
        at: datetime | None = None,
    ) -> bool:
        """``mark_inbound_processed`` without reading the event afterwards (the event queue's
        path): one statement, built once.

        Returns:
            Whether this call settled it (``False``: it was settled before, and keeps its first
            answer, or it is not recorded).
        """
        values = {
            "k_source": InboundSource(source).value,
            "k_event_id": event_id,
            "v_state": (InboundStatus.REPLAYED if replayed else InboundStatus.PROCESSED).value,
            "v_at": require_aware(at) if at else utc_now(),
            "v_status": response_status,
            "v_body": response_body,
            "v_contract": contract_id,
        }
        with self.engine.begin() as connection:
            return bool(connection.execute(self._settle, values).rowcount)

    @cached_property
    def _settle(self) -> Executable:
        table = _TABLE.c
        return (
            update(_TABLE)
            .where(
                table.source == bindparam("k_source"),
                table.event_id == bindparam("k_event_id"),
                table.status.in_([s.value for s in OPEN_STATUSES]),
            )
            .values(
                status=bindparam("v_state"),
                processed_at=bindparam("v_at", type_=table.processed_at.type),
                claimed_until=None,
                response_status=bindparam("v_status"),
                response_body=bindparam("v_body", type_=table.response_body.type),
                contract_id=func.coalesce(
                    bindparam("v_contract", type_=table.contract_id.type), table.contract_id
                ),
            )
        )

    def get_inbound_event(self, source: InboundSource | str, event_id: str) -> InboundEvent | None:
        """One inbound event, or ``None``."""
        with self._session() as session:
            return session.exec(_one(source, event_id)).first()

    def list_inbound_events(
        self,
        status: InboundStatus | str | None = None,
        source: InboundSource | str | None = None,
        contract_id: str | None = None,
    ) -> list[InboundEvent]:
        """The inbound events that match every filter given, oldest first."""
        query = select(InboundEvent)
        if status is not None:
            query = query.where(InboundEvent.status == InboundStatus(status).value)
        if source is not None:
            query = query.where(InboundEvent.source == InboundSource(source).value)
        if contract_id is not None:
            query = query.where(InboundEvent.contract_id == contract_id)
        query = query.order_by(col(InboundEvent.received_at), col(InboundEvent.id))
        with self._session() as session:
            return list(session.exec(query).all())

    def _update_inbound(
        self, stmt: Executable, source: InboundSource | str, event_id: str
    ) -> InboundEvent:
        with self._transaction() as session:
            session.connection().execute(stmt)
            event = session.exec(_one(source, event_id)).first()
        if event is None:
            raise NotFoundInLedger(f"no {InboundSource(source).value} event {event_id!r}")
        return event


_TABLE = table_of(InboundEvent)
#: Whether an event is recorded, given ``source`` and ``event_id`` at execution.
_KNOWN = (
    select(col(InboundEvent.id))
    .where(
        col(InboundEvent.source) == bindparam("source"),
        col(InboundEvent.event_id) == bindparam("event_id"),
    )
    .limit(1)
)


def _new_row(
    event: InboundEventIn,
    status: InboundStatus,
    *,
    attempts: int,
    processed_at: datetime | None = None,
    response_status: int | None = None,
    response_body: dict[str, Any] | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """The values of a new event's row, unclaimed."""
    return {
        **event.model_dump(),
        "status": InboundStatus(status).value,
        "attempts": attempts,
        "claimed_until": None,
        "processed_at": processed_at,
        "response_status": response_status,
        "response_body": response_body,
        "reason": reason,
    }


def _key(source: InboundSource | str, event_id: str) -> ColumnElement[bool]:
    return and_(
        col(InboundEvent.source) == InboundSource(source).value,
        col(InboundEvent.event_id) == event_id,
    )


def _open() -> ColumnElement[bool]:
    return col(InboundEvent.status).in_([s.value for s in OPEN_STATUSES])


def _one(source: InboundSource | str, event_id: str) -> SelectOfScalar[InboundEvent]:
    return select(InboundEvent).where(_key(source, event_id))
