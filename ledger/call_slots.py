"""Vendor call slots shared by every worker: the ``SlotStore`` of ``c2c.call_limits``.

Each try is one transaction that first counts a try on the vendor's ``ledger_call_limit``
row: that update locks the row on PostgreSQL and takes the write lock on SQLite, so the
counts that follow, and the slot inserted if one is free, are never raced by another worker.
"""

from __future__ import annotations

import uuid

from sqlalchemy import Connection, case, delete, func, insert, select, update

from c2c.call_limits import Attempt
from c2c.vendor_limits import PER_SECOND_WINDOW_S, CallLimit
from ledger.base import LedgerBase
from ledger.engine import upsert_insert
from ledger.models import CallLimitLock, CallSlot, table_of

_LOCKS = table_of(CallLimitLock)
_SLOTS = table_of(CallSlot)


class CallSlotLedger(LedgerBase):
    """Takes and gives back vendor call slots (``try_acquire``, ``release``, ``call_slots``)."""

    def try_acquire(self, vendor: str, limit: CallLimit, holder: str, now: float) -> Attempt:
        """A slot of ``vendor`` for ``holder`` if ``limit`` leaves one free at ``now``; else
        when to look again.

        A call counts in flight from its start until it is released or its lease ends, and
        against the per-second limit from its start until a second after that end: the vendor
        counts it when it arrives, at some moment in between, so no second at the vendor can
        hold more than ``per_second`` arrivals however late a request reaches it.
        """
        ended = func.coalesce(_SLOTS.c.ended_at, _SLOTS.c.expires_at)
        window_start = now - PER_SECOND_WINDOW_S
        with self.engine.begin() as connection:
            self._lock_vendor(connection, vendor)
            # What no limit counts any more.
            connection.execute(
                delete(_SLOTS).where(_SLOTS.c.vendor == vendor, ended <= window_start)
            )
            if limit.in_flight is not None:
                in_flight = connection.execute(
                    select(func.count()).where(
                        _SLOTS.c.vendor == vendor,
                        _SLOTS.c.ended_at.is_(None),
                        _SLOTS.c.expires_at > now,
                    )
                ).scalar_one()
                if in_flight >= limit.in_flight:
                    return Attempt(granted=False)
            if limit.per_second is not None:
                recent, first_end = connection.execute(
                    select(func.count(), func.min(case((ended <= now, ended)))).where(
                        _SLOTS.c.vendor == vendor, ended > window_start
                    )
                ).one()
                if recent >= limit.per_second:
                    # Calls still in flight free nothing until they end: look again soon.
                    retry_in = first_end - window_start if first_end is not None else 0.0
                    return Attempt(granted=False, retry_in_s=max(0.0, retry_in))
            lease_id = uuid.uuid4().hex
            connection.execute(
                insert(_SLOTS).values(
                    lease_id=lease_id,
                    vendor=vendor,
                    holder=holder,
                    started_at=now,
                    expires_at=now + limit.lease_s,
                    ended_at=None,
                )
            )
        return Attempt(granted=True, lease_id=lease_id)

    def release(self, lease_id: str, now: float) -> None:
        """The call of ``lease_id`` is answered at ``now`` (a lease that ended first stays
        ended then)."""
        with self.engine.begin() as connection:
            connection.execute(
                update(_SLOTS)
                .where(
                    _SLOTS.c.lease_id == lease_id,
                    _SLOTS.c.ended_at.is_(None),
                    _SLOTS.c.expires_at > now,
                )
                .values(ended_at=now)
            )

    def call_slots(self, vendor: str, now: float) -> dict[str, int]:
        """What ``vendor``'s limits count at ``now``: ``in_flight`` (leases held, by every
        worker) and ``last_second`` (calls that were under way within the last second)."""
        ended = func.coalesce(_SLOTS.c.ended_at, _SLOTS.c.expires_at)
        with self.engine.connect() as connection:
            in_flight, recent = connection.execute(
                select(
                    func.count().filter(_SLOTS.c.ended_at.is_(None), _SLOTS.c.expires_at > now),
                    func.count().filter(ended > now - PER_SECOND_WINDOW_S),
                ).where(_SLOTS.c.vendor == vendor)
            ).one()
        return {"in_flight": int(in_flight), "last_second": int(recent)}

    def leases(self, vendor: str, now: float) -> dict[str, int]:
        """``vendor``'s in-flight leases at ``now``, by holder (``host:pid``)."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(_SLOTS.c.holder, func.count())
                .where(
                    _SLOTS.c.vendor == vendor,
                    _SLOTS.c.ended_at.is_(None),
                    _SLOTS.c.expires_at > now,
                )
                .group_by(_SLOTS.c.holder)
            ).all()
        return {holder: int(count) for holder, count in rows}

    def _lock_vendor(self, connection: Connection, vendor: str) -> None:
        """Lock ``vendor``'s row until the transaction ends, making it if it is new."""
        counted = update(_LOCKS).where(_LOCKS.c.vendor == vendor).values(tries=_LOCKS.c.tries + 1)
        if connection.execute(counted).rowcount:
            return
        new = upsert_insert(self.engine, _LOCKS).values(vendor=vendor, tries=0)
        connection.execute(new.on_conflict_do_nothing(index_elements=["vendor"]))
        connection.execute(counted)
