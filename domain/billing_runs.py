"""Scheduled billing runs: each legal entity's period close on its billing day, started by a
Temporal Schedule (the workflow is ``workflows/billing_run.py``, its activity
``activities/billing_runs.py``).

A run decides from the time it was *scheduled for* (a backfilled run of last March bills
February, whenever it runs) which period to close: the month before the billing day, in the
legal entity's time zone. The contracts decide the rest as for a manual close: a period already
closed is not closed again, a period not over yet is not closed, so a second run of the same
day (a trigger, a backfill, an overlap) bills nothing twice.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from domain.periods import Period

#: The workflow type.
BILLING_RUN_WORKFLOW_TYPE = "BillingRun"
#: The activity that signals the period close to the entity's running contracts.
CLOSE_PERIOD_FOR_ENTITY = "close_period_for_entity"
#: Every legal entity that has no schedule of its own.
OTHER_ENTITIES = "*"
#: Schedule ids: ``billing-run-US01``, and ``billing-run-others`` for ``*``.
SCHEDULE_PREFIX = "billing-run-"
#: The search attribute Temporal sets on a workflow a Schedule starts: the time it was due.
SCHEDULED_START_TIME = "TemporalScheduledStartTime"

_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")

FIRST_WORKING_DAY: Literal["first-working-day"] = "first-working-day"


class BillingDay(BaseModel):
    """When an entity bills: ``day`` of the month (1–28) or the first working day
    (Monday–Friday) after the month's end, at ``at`` (HH:MM) in the entity's time zone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    day: Literal["first-working-day"] | int = FIRST_WORKING_DAY
    at: str = "06:00"

    @field_validator("day")
    @classmethod
    def _day(cls, value: str | int) -> str | int:
        if isinstance(value, int) and not 1 <= value <= 28:
            raise ValueError(f"day must be 1-28 or {FIRST_WORKING_DAY!r}, got {value}")
        return value

    @field_validator("at")
    @classmethod
    def _at(cls, value: str) -> str:
        if not _TIME.fullmatch(value):
            raise ValueError(f"at must be HH:MM (00:00-23:59), got {value!r}")
        return value

    @property
    def hour(self) -> int:
        return int(self.at[:2])

    @property
    def minute(self) -> int:
        return int(self.at[3:])

    def days_of_month(self) -> list[int]:
        """The days on which the schedule fires: the first working day is one of the 1st to
        the 3rd (a weekend can push it from the 1st to the 3rd), and the run on the others
        finds it is not the billing day and closes nothing."""
        return [1, 2, 3] if self.day == FIRST_WORKING_DAY else [int(self.day)]

    def describe(self) -> str:
        when = "the first working day" if self.day == FIRST_WORKING_DAY else f"day {self.day}"
        return f"{when} of each month at {self.at}"


def first_working_day(year: int, month: int) -> date:
    """The first Monday–Friday of a month (public holidays are not known here)."""
    day = date(year, month, 1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def on_calendar(local: datetime, rule: BillingDay) -> bool:
    """Whether the wall-clock time ``local`` is one the schedule fires at (a run a Schedule
    started on its calendar or backfilled), rather than a run triggered by hand."""
    return local.day in rule.days_of_month() and (local.hour, local.minute) == (
        rule.hour,
        rule.minute,
    )


def period_to_close(local: datetime, rule: BillingDay) -> Period | None:
    """The period a run due at ``local`` (the entity's wall clock) closes: the month before.

    A run on the schedule's calendar closes it only on the billing day itself (the first
    working day fires on the 1st to the 3rd, and two of those runs find it is not the day):
    ``None`` then. A run triggered by hand at any other time closes the month before.
    """
    day = local.date()
    if on_calendar(local, rule):
        if rule.day == FIRST_WORKING_DAY:
            billing_day = first_working_day(day.year, day.month)
        else:
            billing_day = day.replace(day=int(rule.day))
        if day != billing_day:
            return None
    return Period.of(day.replace(day=1) - timedelta(days=1))


def schedule_id(legal_entity: str) -> str:
    """The Temporal Schedule of a legal entity's billing runs."""
    return SCHEDULE_PREFIX + ("others" if legal_entity == OTHER_ENTITIES else legal_entity)


class BillingRunRequest(BaseModel):
    """One scheduled billing run: whose contracts, when they bill, and in which time zone.

    ``legal_entity`` ``*`` runs for every entity except those in ``excluded`` (which have
    schedules of their own). ``period`` closes that month whatever the day (a manual trigger
    for a given month); otherwise the run's scheduled time decides.
    """

    legal_entity: str = Field(pattern=r"^([A-Z0-9]{2,10}|\*)$")
    excluded: list[str] = Field(default_factory=list)
    time_zone: str = "UTC"
    billing_day: BillingDay = Field(default_factory=BillingDay)
    period: str | None = Field(default=None, pattern=r"^\d{4}-(0[1-9]|1[0-2])$")


class CloseForEntity(BaseModel):
    """What the activity does: send ``close_period`` for ``period`` to the running contracts
    of ``legal_entity`` (``*``: of every entity not in ``excluded``)."""

    legal_entity: str
    excluded: list[str] = Field(default_factory=list)
    period: str
    requested_by: str
    #: Only contracts on this task queue: c2c's deployment that runs the schedule (another
    #: deployment sharing the namespace keeps its own schedules).
    task_queue: str | None = None


class BillingRunResult(BaseModel):
    """What a run did: the period it closed and how many contracts it asked, or why it
    closed nothing."""

    legal_entity: str
    local_date: date
    period: str | None = None
    contracts_signalled: int = 0
    skipped: str | None = None
