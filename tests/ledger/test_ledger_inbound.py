"""Inbound events: recorded once per (source, event id), claimed by one delivery at a time,
settled as processed (with the answer duplicates get), dead letters, or replayed."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from ledger import (
    InboundEvent,
    InboundEventIn,
    InboundSource,
    InboundStatus,
    Ledger,
    NotFoundInLedger,
)
from ledger.models import utc_now
from tests.ledger.ledger_0_8_0 import back_to_before_revisions

At = Callable[[float], datetime]

CLAIM = timedelta(minutes=1)


def inbound(event_id: str, received_at: datetime, **extra: Any) -> InboundEventIn:
    data = {"contract_id": "K-1", "milestone_id": "M1", "completed_on": "2026-02-01"}
    return InboundEventIn.model_validate(
        {
            "source": "psa",
            "event_id": event_id,
            "type": "milestone.completed",
            "contract_id": "K-1",
            "body": json.dumps({"id": event_id, "type": "milestone.completed", "data": data}),
            "received_at": received_at,
            **extra,
        }
    )


def test_the_first_recording_holds_the_claim_and_later_ones_find_it_known(
    ledger: Ledger, at: At
) -> None:
    first = ledger.record_inbound_event(inbound("evt-1", at(0)), claim=CLAIM)
    assert first.known is False
    event = first.event
    assert (event.source, event.event_id, event.type, event.contract_id) == (
        "psa",
        "evt-1",
        "milestone.completed",
        "K-1",
    )
    assert (event.status, event.attempts, event.reason, event.processed_at) == (
        "received",
        1,
        None,
        None,
    )
    assert event.received_at == at(0)
    assert event.claimed_until == at(1)

    again = ledger.record_inbound_event(inbound("evt-1", at(0.5), body="{}"), claim=CLAIM)
    assert again.known is True
    # The first recording stands: its body, time and claim.
    assert again.event.body == event.body
    assert again.event.received_at == at(0)
    assert again.event.attempts == 1
    # The claim is held: no other delivery may process the event until it expires.
    assert ledger.claim_inbound_event("psa", "evt-1", at=at(0.5)) is None
    claimed = ledger.claim_inbound_event("psa", "evt-1", claim=CLAIM, at=at(1))
    assert claimed is not None and claimed.attempts == 2 and claimed.claimed_until == at(2)


def test_the_same_event_id_from_another_source_is_another_event(ledger: Ledger, at: At) -> None:
    ledger.record_inbound_event(inbound("evt-1", at(0)))
    other = ledger.record_inbound_event(inbound("evt-1", at(0), source="payments"))
    assert other.known is False
    assert len(ledger.list_inbound_events()) == 2


def test_the_unique_key_is_in_the_database(ledger: Ledger, at: At) -> None:
    ledger.record_inbound_event(inbound("evt-1", at(0)))
    row = InboundEvent(**inbound("evt-1", at(1)).model_dump())
    with pytest.raises(IntegrityError), Session(ledger.engine) as session:
        session.add(row)
        session.commit()


def test_a_processed_event_keeps_its_first_answer_and_cannot_be_claimed(
    ledger: Ledger, at: At
) -> None:
    ledger.record_inbound_event(inbound("evt-1", at(0)))
    done = ledger.mark_inbound_processed(
        "psa", "evt-1", response_status=202, response_body={"duplicate": False}, at=at(0.1)
    )
    assert (done.status, done.response_status, done.response_body) == (
        "processed",
        202,
        {"duplicate": False},
    )
    assert done.processed_at == at(0.1)
    assert done.claimed_until is None

    assert ledger.claim_inbound_event("psa", "evt-1", at=at(9)) is None
    # A late second processing (its claim had expired) does not change the answer.
    late = ledger.mark_inbound_processed("psa", "evt-1", response_status=500, response_body={})
    assert (late.response_status, late.processed_at) == (202, at(0.1))
    # Nor does a late failure make it a dead letter.
    failed = ledger.mark_inbound_dead_letter("psa", "evt-1", "too late", at=at(2))
    assert (failed.status, failed.reason) == ("processed", None)
    known = ledger.record_inbound_event(inbound("evt-1", at(3)))
    assert known.known and known.event.status == "processed"


def test_a_dead_letter_is_listed_redelivered_and_replayed(ledger: Ledger, at: At) -> None:
    ledger.record_inbound_event(inbound("evt-1", at(0)))
    ledger.record_inbound_event(inbound("evt-2", at(1), contract_id=None, source="payments"))
    dead = ledger.mark_inbound_dead_letter(
        "psa", "evt-1", "contract_not_found: no such contract", at=at(0.2)
    )
    assert (dead.status, dead.reason, dead.processed_at) == (
        "dead_letter",
        "contract_not_found: no such contract",
        at(0.2),
    )
    ledger.mark_inbound_dead_letter("payments", "evt-2", "no invoice", contract_id="K-2")

    def listed(**filters: Any) -> list[str]:
        return [e.event_id for e in ledger.list_inbound_events(**filters)]

    assert listed(status="dead_letter") == ["evt-1", "evt-2"]
    assert listed(status=InboundStatus.DEAD_LETTER, source="psa") == ["evt-1"]
    assert listed(contract_id="K-2") == ["evt-2"]
    assert listed(status="processed") == []

    # A replay claims dead letters only; the claim counts an attempt.
    replay = ledger.claim_inbound_event(
        "psa", "evt-1", statuses=[InboundStatus.DEAD_LETTER], at=at(5)
    )
    assert replay is not None and replay.attempts == 2
    still = ledger.mark_inbound_dead_letter("psa", "evt-1", "still no contract", at=at(5.1))
    assert (still.status, still.reason, still.claimed_until) == (
        "dead_letter",
        "still no contract",
        None,
    )
    assert ledger.claim_inbound_event("psa", "evt-1", statuses=[InboundStatus.DEAD_LETTER])
    replayed = ledger.mark_inbound_processed(
        "psa", "evt-1", response_status=202, response_body={}, replayed=True
    )
    # The last reason stays, as the record of why it had been a dead letter.
    assert (replayed.status, replayed.reason, replayed.attempts) == (
        "replayed",
        "still no contract",
        3,
    )

    # A redelivery by the sender processes a dead letter as well.
    assert ledger.claim_inbound_event("payments", "evt-2") is not None
    processed = ledger.mark_inbound_processed(
        "payments", "evt-2", response_status=202, response_body={}, contract_id="K-3"
    )
    assert (processed.status, processed.contract_id) == ("processed", "K-3")


def test_a_released_event_stays_as_it_was_and_is_claimable_at_once(ledger: Ledger, at: At) -> None:
    ledger.record_inbound_event(inbound("evt-1", at(0), contract_id=None))
    released = ledger.release_inbound_event("psa", "evt-1")
    assert (released.status, released.claimed_until) == ("received", None)
    assert ledger.claim_inbound_event("psa", "evt-1", at=at(0.1)) is not None
    done = ledger.mark_inbound_processed(
        "psa", "evt-1", response_status=202, response_body={}, contract_id="K-9"
    )
    assert done.contract_id == "K-9"
    assert ledger.claim_inbound_event("psa", "evt-1", statuses=[InboundStatus.RECEIVED]) is None


def test_an_unknown_event(ledger: Ledger) -> None:
    assert ledger.get_inbound_event("psa", "nope") is None
    assert ledger.claim_inbound_event("psa", "nope") is None
    with pytest.raises(NotFoundInLedger, match="no psa event 'nope'"):
        ledger.mark_inbound_dead_letter("psa", "nope", "why")
    with pytest.raises(NotFoundInLedger):
        ledger.mark_inbound_processed("psa", "nope", response_status=200, response_body={})
    with pytest.raises(NotFoundInLedger):
        ledger.release_inbound_event("psa", "nope")


def test_bad_input_is_refused(ledger: Ledger, at: At) -> None:
    with pytest.raises(ValueError):
        inbound("evt-1", at(0), source="erp")
    with pytest.raises(ValueError):
        inbound("", at(0))
    with pytest.raises(ValueError):
        inbound("evt-1", at(0).replace(tzinfo=None))
    with pytest.raises(ValueError):
        ledger.list_inbound_events(status="lost")
    ledger.record_inbound_event(inbound("evt-1", at(0)))
    with pytest.raises(ValueError):
        ledger.claim_inbound_event("psa", "evt-1", at=at(5).replace(tzinfo=None))


def test_bodies_come_back_exactly(ledger: Ledger, at: At) -> None:
    body = json.dumps({"id": "evt-ü", "type": "payment.succeeded", "data": {"note": "€ 5 — ok"}})
    ledger.record_inbound_event(inbound("evt-ü", at(0), body=body, source="payments"))
    stored = ledger.get_inbound_event("payments", "evt-ü")
    assert stored is not None and stored.body == body


def test_an_event_processed_before_it_is_recorded_is_recorded_with_its_outcome_at_once(
    ledger: Ledger, at: At
) -> None:
    assert ledger.inbound_event_known("psa", "evt-1") is False
    answer = {"workflow_id": "contract-K-1", "run_id": "r1", "duplicate": False}
    recorded = ledger.record_inbound_outcome(
        inbound("evt-1", at(0)),
        InboundStatus.PROCESSED,
        response_status=202,
        response_body=answer,
        contract_id="K-2",
        at=at(0.1),
    )
    assert recorded is None
    assert ledger.inbound_event_known("psa", "evt-1") is True
    stored = ledger.get_inbound_event("psa", "evt-1")
    assert stored is not None
    assert (stored.status, stored.attempts, stored.claimed_until, stored.reason) == (
        "processed",
        1,
        None,
        None,
    )
    assert (stored.response_status, stored.response_body) == (202, answer)
    assert (stored.contract_id, stored.received_at, stored.processed_at) == ("K-2", at(0), at(0.1))
    # Settled: no delivery may claim it, and a later recording finds it known.
    assert ledger.claim_inbound_event("psa", "evt-1", at=at(5)) is None
    assert ledger.record_inbound_event(inbound("evt-1", at(6))).known

    # A second outcome of the same event changes nothing and is given the one recorded.
    again = ledger.record_inbound_outcome(
        inbound("evt-1", at(1), body="{}"),
        InboundStatus.PROCESSED,
        response_status=202,
        response_body={**answer, "duplicate": True},
    )
    assert again is not None
    assert (again.response_body, again.attempts, again.body) == (answer, 1, stored.body)
    failed = ledger.record_inbound_outcome(
        inbound("evt-1", at(2)), InboundStatus.DEAD_LETTER, reason="late"
    )
    assert failed is not None and (failed.status, failed.reason) == ("processed", None)


def test_an_event_that_failed_before_it_was_recorded_is_a_dead_letter_or_left_for_a_retry(
    ledger: Ledger, at: At
) -> None:
    dead = ledger.record_inbound_outcome(
        inbound("evt-dead", at(0)), InboundStatus.DEAD_LETTER, reason="validation_error: x"
    )
    assert dead is None
    stored = ledger.get_inbound_event("psa", "evt-dead")
    assert stored is not None
    assert (stored.status, stored.reason, stored.attempts) == (
        "dead_letter",
        "validation_error: x",
        1,
    )
    assert stored.processed_at is not None and stored.contract_id == "K-1"
    assert [e.event_id for e in ledger.list_inbound_events()] == ["evt-dead"]

    left = ledger.record_inbound_outcome(inbound("evt-retry", at(0)), InboundStatus.RECEIVED)
    assert left is None
    pending = ledger.get_inbound_event("psa", "evt-retry")
    assert pending is not None
    assert (pending.status, pending.claimed_until, pending.processed_at, pending.attempts) == (
        "received",
        None,
        None,
        1,
    )
    # Unclaimed: the sender's retry claims it at once, as its second attempt.
    claimed = ledger.claim_inbound_event("psa", "evt-retry", at=at(0.1))
    assert claimed is not None and claimed.attempts == 2
    # An outcome recorded while another delivery holds it leaves it to that delivery.
    open_one = ledger.record_inbound_outcome(
        inbound("evt-retry", at(0.2)), InboundStatus.PROCESSED, response_status=202
    )
    assert open_one is not None and (open_one.status, open_one.attempts) == ("received", 2)


# --- The event queue's claims: waiting events, oldest first, each to one claimer -----------

QUEUED = {InboundSource.PSA: ["milestone.completed"]}


def waiting(ledger: Ledger, event_id: str, at: datetime, **extra: Any) -> None:
    """Record an event as the queue does: ``received``, unclaimed, no attempt yet; of a
    contract of its own unless ``contract_id`` is given."""
    extra.setdefault("contract_id", f"K-{event_id}")
    assert ledger.record_waiting_events([inbound(event_id, at, **extra)]) == [None]


def test_a_contracts_events_are_claimed_in_the_order_they_arrived(ledger: Ledger, at: At) -> None:
    """An event waits while an earlier event of its contract waits (claimed, or put off after
    a failure); other contracts' events, and events of no known contract, go ahead."""
    waiting(ledger, "k1-approved", at(0), contract_id="K-1")
    waiting(ledger, "k1-milestone", at(1), contract_id="K-1")
    waiting(ledger, "k2-milestone", at(2), contract_id="K-2")
    waiting(ledger, "unknown-1", at(3), contract_id=None)
    waiting(ledger, "unknown-2", at(4), contract_id=None)

    first = ledger.claim_waiting_events(QUEUED, claim=CLAIM, at=at(5))
    assert [e.event_id for e in first] == ["k1-approved", "k2-milestone", "unknown-1", "unknown-2"]
    # The approval failed for now and is put off: its contract's milestone still waits.
    ledger.postpone_inbound_event("psa", "k1-approved", at(10))
    assert ledger.claim_waiting_events(QUEUED, claim=CLAIM, at=at(5.5)) == []
    for event_id in ("k2-milestone", "unknown-1", "unknown-2"):
        ledger.mark_inbound_processed(
            "psa", event_id, response_status=202, response_body={}, at=at(6)
        )
    assert ledger.claim_waiting_events(QUEUED, claim=CLAIM, at=at(9)) == []
    [again] = ledger.claim_waiting_events(QUEUED, claim=CLAIM, at=at(10))
    assert again.event_id == "k1-approved"
    ledger.mark_inbound_processed(
        "psa", "k1-approved", response_status=202, response_body={}, at=at(11)
    )
    [next_one] = ledger.claim_waiting_events(QUEUED, claim=CLAIM, at=at(11))
    assert next_one.event_id == "k1-milestone"
    # A dead letter holds up nothing behind it.
    waiting(ledger, "k3-bad", at(12), contract_id="K-3")
    waiting(ledger, "k3-next", at(13), contract_id="K-3")
    [bad] = ledger.claim_waiting_events(QUEUED, claim=CLAIM, at=at(11.5))
    ledger.mark_inbound_dead_letter("psa", bad.event_id, "validation_error: no", at=at(11.5))
    [after] = ledger.claim_waiting_events(QUEUED, claim=CLAIM, at=at(11.5))
    assert after.event_id == "k3-next"


def test_the_queue_claims_waiting_events_oldest_first_counting_an_attempt(
    ledger: Ledger, at: At
) -> None:
    for n in range(3):
        waiting(ledger, f"evt-{n}", at(n))
    waiting(ledger, "evt-other", at(0), type="milestone.other")
    ledger.record_inbound_outcome(inbound("evt-done", at(0)), InboundStatus.PROCESSED)
    assert ledger.count_waiting_events() == {"psa": 4}

    first = ledger.claim_waiting_events(QUEUED, limit=2, claim=CLAIM, at=at(5))
    assert [e.event_id for e in first] == ["evt-0", "evt-1"]
    assert all(e.attempts == 1 and e.claimed_until == at(6) for e in first)
    rest = ledger.claim_waiting_events(QUEUED, limit=5, claim=CLAIM, at=at(5))
    # Claimed ones are held; a type not asked for and a processed event are never taken.
    assert [e.event_id for e in rest] == ["evt-2"]
    assert ledger.claim_waiting_events(QUEUED, claim=CLAIM, at=at(5.5)) == []
    # A claim that ran out (its claimer died) is taken again.
    again = ledger.claim_waiting_events(QUEUED, claim=CLAIM, at=at(6))
    assert [(e.event_id, e.attempts) for e in again] == [("evt-0", 2), ("evt-1", 2), ("evt-2", 2)]
    assert ledger.claim_waiting_events({}, at=at(9)) == []
    assert ledger.claim_waiting_events(QUEUED, limit=0, at=at(9)) == []


def test_a_postponed_event_waits_until_its_time(ledger: Ledger, at: At) -> None:
    waiting(ledger, "evt-1", at(0))
    assert len(ledger.claim_waiting_events(QUEUED, claim=CLAIM, at=at(1))) == 1
    postponed = ledger.postpone_inbound_event("psa", "evt-1", at(10))
    assert (postponed.status, postponed.claimed_until, postponed.attempts) == (
        "received",
        at(10),
        1,
    )
    assert ledger.claim_waiting_events(QUEUED, claim=CLAIM, at=at(9)) == []
    [retried] = ledger.claim_waiting_events(QUEUED, claim=CLAIM, at=at(10))
    assert retried.attempts == 2
    with pytest.raises(NotFoundInLedger):
        ledger.postpone_inbound_event("psa", "evt-missing", at(10))
    # A processed event is not put back in the queue.
    ledger.mark_inbound_processed("psa", "evt-1", response_status=202, response_body={}, at=at(11))
    assert ledger.postpone_inbound_event("psa", "evt-1", at(20)).status == "processed"
    assert ledger.count_waiting_events() == {}


def test_a_claimer_whose_claim_ran_out_does_not_cut_short_the_next_ones(
    ledger: Ledger, at: At
) -> None:
    """Two API replicas: the first one's claim runs out while it still processes the event,
    the second claims it; the first one's transient failure then puts off only its own claim,
    so no third claim takes the event while the second one holds it."""
    waiting(ledger, "evt-1", at(0))
    [first] = ledger.claim_waiting_events(QUEUED, claim=CLAIM, at=at(1))
    [second] = ledger.claim_waiting_events(QUEUED, claim=CLAIM, at=at(2))
    assert (first.claimed_until, second.claimed_until) == (at(2), at(3))

    kept = ledger.postpone_inbound_event("psa", "evt-1", at(2.1), claimed_until=first.claimed_until)
    assert kept.claimed_until == at(3)
    assert ledger.claim_waiting_events(QUEUED, claim=CLAIM, at=at(2.5)) == []
    # The holder's own failure puts it off.
    postponed = ledger.postpone_inbound_event(
        "psa", "evt-1", at(4), claimed_until=second.claimed_until
    )
    assert postponed.claimed_until == at(4)
    assert ledger.claim_waiting_events(QUEUED, claim=CLAIM, at=at(3.5)) == []
    [third] = ledger.claim_waiting_events(QUEUED, claim=CLAIM, at=at(4))
    assert third.attempts == 3


def claim_race(ledger: Ledger, events: int = 60, claimers: int = 6) -> None:
    """Claimers racing over the same waiting events take each exactly once."""
    for n in range(events):
        waiting(ledger, f"evt-{n:03d}", utc_now())
    barrier = threading.Barrier(claimers)

    def claimer(_: int) -> list[str]:
        barrier.wait()
        taken: list[str] = []
        while batch := ledger.claim_waiting_events(QUEUED, limit=7, claim=timedelta(hours=1)):
            taken += [e.event_id for e in batch]
        return taken

    with ThreadPoolExecutor(claimers) as pool:
        results = list(pool.map(claimer, range(claimers)))
    taken = [event_id for result in results for event_id in result]
    assert sorted(taken) == [f"evt-{n:03d}" for n in range(events)]


def test_racing_claimers_never_take_the_same_event(ledger: Ledger) -> None:
    claim_race(ledger)


def test_the_queue_settles_an_event_once_and_the_first_answer_stands(
    ledger: Ledger, at: At
) -> None:
    waiting(ledger, "evt-1", at(0))
    ledger.claim_waiting_events(QUEUED, claim=CLAIM, at=at(1))
    first = {"workflow_id": "contract-K-1", "run_id": "r-1", "duplicate": False}
    assert ledger.settle_inbound_event(
        "psa", "evt-1", response_status=202, response_body=first, contract_id="K-2", at=at(2)
    )
    assert not ledger.settle_inbound_event(
        "psa", "evt-1", response_status=202, response_body={"run_id": "r-2"}, at=at(3)
    )
    assert not ledger.settle_inbound_event("psa", "evt-none", response_status=202, response_body={})
    stored = ledger.get_inbound_event("psa", "evt-1")
    assert stored is not None
    assert (stored.status, stored.response_status, stored.response_body) == (
        "processed",
        202,
        first,
    )
    assert (stored.processed_at, stored.claimed_until, stored.contract_id) == (at(2), None, "K-2")


def test_an_approval_waits_until_it_is_processed(ledger: Ledger, at: At) -> None:
    body = json.dumps({"id": "evt-a", "type": "contract.approved", "data": {}})
    approval = InboundEventIn.model_validate(
        {
            "source": "clm",
            "event_id": "evt-a",
            "type": "contract.approved",
            "contract_id": "K-9",
            "body": body,
            "received_at": at(0),
        }
    )
    assert not ledger.approval_waiting("K-9")
    assert ledger.record_waiting_events([approval]) == [None]
    # A milestone of the same contract waiting is not an approval.
    waiting(ledger, "evt-m", at(0), contract_id="K-8")
    assert ledger.approval_waiting("K-9") and not ledger.approval_waiting("K-8")
    assert ledger.settle_inbound_event("clm", "evt-a", response_status=202, response_body={})
    assert not ledger.approval_waiting("K-9")


def test_waiting_events_are_recorded_together_and_known_ones_found(ledger: Ledger, at: At) -> None:
    ledger.record_inbound_outcome(inbound("evt-old", at(0)), InboundStatus.PROCESSED)
    batch = [
        inbound("evt-1", at(1)),
        inbound("evt-old", at(1)),
        inbound("evt-2", at(1)),
        inbound("evt-1", at(1), body="{}"),
    ]

    results = ledger.record_waiting_events(batch)

    assert results[0] is None and results[2] is None
    known, repeated = results[1], results[3]
    assert known is not None and (known.event_id, known.status) == ("evt-old", "processed")
    # The second delivery of evt-1 in the same batch finds the first one's record.
    assert repeated is not None and repeated.event_id == "evt-1"
    assert repeated.body == batch[0].body and repeated.attempts == 0
    assert ledger.count_waiting_events() == {"psa": 2}
    assert ledger.record_waiting_events([]) == []
    again = ledger.record_waiting_events([inbound("evt-2", at(2))])
    assert again[0] is not None and again[0].received_at == at(1)


def test_a_ledger_made_before_body_digests_gets_the_column_and_keeps_its_events(
    ledger_url: str, at: At
) -> None:
    """A ledger made before schema revisions and before ``body_digest`` gets the column when
    it is upgraded; the events it holds keep a ``NULL`` digest, and new ones get theirs."""
    first = Ledger(ledger_url)
    first.create_all()
    first.record_inbound_event(inbound("evt-old", at(0)), claim=CLAIM)
    with first.engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE ledger_inbound_event DROP COLUMN body_digest")
        back_to_before_revisions(connection)
        assert "body_digest" not in {
            c["name"] for c in sa_inspect(connection).get_columns("ledger_inbound_event")
        }
    first.dispose()

    upgraded = Ledger(ledger_url)
    try:
        upgraded.create_all(auto_upgrade=True)
        old = upgraded.get_inbound_event("psa", "evt-old")
        assert old is not None and old.body_digest is None and old.status == "received"
        new = upgraded.record_inbound_event(
            inbound("evt-new", at(1), body_digest="ab" * 32), claim=CLAIM
        )
        assert new.known is False and new.event.body_digest == "ab" * 32
        again = upgraded.record_inbound_event(inbound("evt-old", at(2)), claim=CLAIM)
        assert again.known is True and again.event.body_digest is None
        upgraded.create_all()  # and again: at the head revision, nothing left to do
    finally:
        upgraded.dispose()
