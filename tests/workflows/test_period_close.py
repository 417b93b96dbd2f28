"""A period closes once its last day has passed in the legal entity's time zone; earlier only
by force, with a reason the audit trail keeps."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from pydantic import ValidationError
from temporalio.client import Client

from c2c.settings import Settings
from domain.models import ClosePeriod
from domain.periods import Period
from starter.api.contracts import close_period_for
from tests.workflows.billing_helpers import start_active
from tests.workflows.helpers import wait_for
from workflows.contract_to_cash import local_date

pytestmark = pytest.mark.usefixtures("worker")


async def test_a_period_not_ended_is_closed_only_by_force_with_a_reason(
    temporal_client: Client, settings: Settings
) -> None:
    """Closing this month before its last day is refused (the history says when it can be
    closed); forced with a reason, it closes and the audit trail keeps the reason."""
    this_month = Period.of(date.today())
    cid, _ = await start_active(
        temporal_client,
        settings,
        start_date=str(this_month.first_day),
        end_date=str(this_month.next().last_day),
    )
    await close_period_for(temporal_client, cid, ClosePeriod(period=str(this_month)))
    refused = await wait_for(
        temporal_client,
        cid,
        lambda s: any("has not ended" in h.event for h in s.history),
        what="the refusal",
    )
    assert str(this_month) not in refused.closed_periods
    assert f"close it from {this_month.next().first_day}" in refused.history[-1].event
    forced = ClosePeriod(period=str(this_month), force=True, reason="year-end cut-off agreed")
    await close_period_for(temporal_client, cid, forced)
    closed = await wait_for(
        temporal_client, cid, lambda s: str(this_month) in s.closed_periods, what="the close"
    )
    assert any("by force: year-end cut-off agreed" in h.event for h in closed.history)


def test_a_forced_close_needs_a_reason() -> None:
    with pytest.raises(ValidationError, match="reason"):
        ClosePeriod(period="2026-12", force=True)


@pytest.mark.parametrize(
    ("instant", "zone", "day"),
    [
        ("2026-10-31T23:30:00+00:00", "Europe/Berlin", "2026-11-01"),
        ("2026-10-31T23:30:00+00:00", "America/Los_Angeles", "2026-10-31"),
        ("2026-10-31T22:59:00+00:00", "Europe/Berlin", "2026-10-31"),
        ("2026-03-29T00:30:00+00:00", "Europe/Berlin", "2026-03-29"),
        ("2026-12-31T15:00:00+00:00", "Asia/Tokyo", "2027-01-01"),
        ("2026-12-31T15:00:00+00:00", "UTC", "2026-12-31"),
    ],
)
def test_a_period_ends_at_midnight_in_the_legal_entitys_time_zone(
    instant: str, zone: str, day: str
) -> None:
    assert local_date(datetime.fromisoformat(instant), zone) == date.fromisoformat(day)


def test_an_unknown_time_zone_is_refused_by_the_settings() -> None:
    with pytest.raises(ValidationError, match="not an IANA time zone"):
        Settings(_env_file=None, C2C_LEGAL_ENTITY_TIME_ZONES={"DE01": "Mars/Olympus"})  # type: ignore[call-arg]
    zones = Settings(_env_file=None, C2C_LEGAL_ENTITY_TIME_ZONES={"DE01": "Europe/Berlin"})  # type: ignore[call-arg]
    assert (zones.time_zone_for("DE01"), zones.time_zone_for("US01")) == ("Europe/Berlin", "UTC")
