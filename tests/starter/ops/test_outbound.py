"""How one delivery attempt is settled: 2xx delivered; timeouts, 408, 429 and 5xx tried again
after a doubling pause with jitter (longer when ``Retry-After`` asks), until the attempts or the
age run out; any other answer failed at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from c2c.settings import Settings
from ledger import DeliveryStatus, OutboundDelivery, OutboundEvent, Subscription
from ledger.outbound import ClaimedDelivery
from starter.ops.outbound import backoff_s, event_body, outcome_of, retry_after_s

NOW = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
SETTINGS = Settings(
    _env_file=None,  # type: ignore[call-arg]
    outbound_max_attempts=5,
    outbound_max_age_s=3600,
    outbound_backoff_s=2,
)


def claimed(attempts: int = 0, started: datetime = NOW) -> ClaimedDelivery:
    event = OutboundEvent(
        event_id="evt_1",
        type="invoice.issued",
        contract_id="C-1",
        payload={"invoice_id": "INV-1", "total": "10.00"},
        occurred_at=NOW,
        created_at=NOW,
    )
    subscription = Subscription(
        subscription_id="sub_1",
        url="https://example.com/hook",
        event_types=["invoice.issued"],
        secret="whsec_x",
        created_at=NOW,
    )
    delivery = OutboundDelivery(
        delivery_id="evt_1:sub_1",
        event_id="evt_1",
        subscription_id="sub_1",
        attempts=attempts,
        started_at=started,
        next_attempt_at=NOW,
    )
    return ClaimedDelivery(delivery, event, subscription)


@pytest.mark.parametrize("code", [200, 201, 204, 299])
def test_a_2xx_delivers(code: int) -> None:
    outcome = outcome_of(claimed(), SETTINGS, NOW, status_code=code, error=None)
    assert (outcome.status, outcome.status_code, outcome.retry_at) == (
        DeliveryStatus.DELIVERED,
        code,
        None,
    )


@pytest.mark.parametrize("code", [301, 400, 401, 404, 410, 422])
def test_a_refusal_fails_at_once(code: int) -> None:
    outcome = outcome_of(claimed(), SETTINGS, NOW, status_code=code, error=None)
    assert (outcome.status, outcome.error) == (DeliveryStatus.FAILED, f"HTTP {code}")


@pytest.mark.parametrize(
    ("code", "error"), [(None, "timed out"), (408, None), (429, None), (503, None)]
)
def test_timeouts_408_429_and_5xx_are_tried_again_after_a_doubling_pause(
    code: int | None, error: str | None
) -> None:
    for attempts, full in ((0, 2), (1, 4), (3, 16)):
        outcome = outcome_of(claimed(attempts), SETTINGS, NOW, status_code=code, error=error)
        assert outcome.status is DeliveryStatus.PENDING
        assert outcome.retry_at is not None
        pause = (outcome.retry_at - NOW).total_seconds()
        assert full / 2 <= pause <= full


def test_a_retry_after_longer_than_the_backoff_is_honoured() -> None:
    outcome = outcome_of(claimed(), SETTINGS, NOW, status_code=429, error=None, retry_after=120)
    assert outcome.retry_at == NOW + timedelta(seconds=120)


def test_retries_end_with_the_attempts_or_the_age() -> None:
    last = outcome_of(claimed(attempts=4), SETTINGS, NOW, status_code=503, error=None)
    assert last.status is DeliveryStatus.FAILED
    assert last.error == "HTTP 503 (gave up after 5 attempts)"
    old = claimed(attempts=1, started=NOW - timedelta(seconds=3599))
    assert outcome_of(old, SETTINGS, NOW, status_code=503, error=None).status is (
        DeliveryStatus.FAILED
    )


def test_the_pause_is_at_most_an_hour_and_retry_after_reads_seconds_and_dates() -> None:
    assert 1800 <= backoff_s(40, 2) <= 3600
    assert retry_after_s("30", NOW) == 30
    assert retry_after_s("Sun, 01 Nov 2026 06:01:00 GMT", NOW) == 60
    assert retry_after_s("soon", NOW) is None
    assert retry_after_s(None, NOW) is None


def test_the_body_is_the_event_envelope() -> None:
    assert event_body(claimed()) == (
        b'{"created_at":"2026-11-01T06:00:00+00:00","data":{"invoice_id":"INV-1",'
        b'"total":"10.00"},"id":"evt_1","type":"invoice.issued"}'
    )
