"""The Temporal Schedules that ``c2c up`` (and ``c2c billing schedule ensure``) make sure
exist: the nightly reconciliation of the ledger with the ERP (``workflows/reconcile.py``), and
each legal entity's billing run on its billing day (``workflows/billing_run.py``)."""

from __future__ import annotations

from datetime import timedelta

from temporalio.api.common.v1 import Payload
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from c2c.settings import Settings
from domain.billing_runs import (
    BILLING_RUN_WORKFLOW_TYPE,
    OTHER_ENTITIES,
    BillingRunRequest,
)
from domain.billing_runs import schedule_id as billing_schedule_id
from domain.reconcile import (
    ALL_ENTITIES,
    RECONCILE_SCHEDULE_ID,
    RECONCILE_WORKFLOW_TYPE,
    ReconcileRequest,
)

#: The nightly run: 02:00 UTC, after the day's payments and period closes.
NIGHTLY_CRON = "0 2 * * *"


async def ensure_nightly_schedule(client: Client, *, task_queue: str) -> bool:
    """Create the nightly reconciliation of every legal entity, unless it exists (an operator
    may have paused or changed it: that is kept).

    Returns:
        Whether it was created now.
    """
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            RECONCILE_WORKFLOW_TYPE,
            ReconcileRequest(),
            # Temporal appends each run's scheduled time to this id.
            id=f"reconcile-{ALL_ENTITIES}-nightly",
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(cron_expressions=[NIGHTLY_CRON]),
    )
    try:
        await client.create_schedule(RECONCILE_SCHEDULE_ID, schedule)
    except ScheduleAlreadyRunningError:
        return False
    return True


def billing_run_requests(settings: Settings) -> dict[str, BillingRunRequest]:
    """Each scheduled billing run by its schedule id, from ``C2C_BILLING_SCHEDULES``.

    An entity gets a schedule of its own when it has a billing day or a time zone of its own
    (``C2C_LEGAL_ENTITY_TIME_ZONES``); ``*`` runs for every other entity.
    """
    days = settings.billing_schedules
    zones = settings.legal_entity_time_zones
    own = sorted((set(days) | set(zones)) - {OTHER_ENTITIES})
    fallback = days.get(OTHER_ENTITIES)
    requests: dict[str, BillingRunRequest] = {}
    for entity in own:
        rule = days.get(entity, fallback)
        if rule is None:
            continue  # a time zone but no billing day, and no "*" to take it from
        requests[billing_schedule_id(entity)] = BillingRunRequest(
            legal_entity=entity, time_zone=settings.time_zone_for(entity), billing_day=rule
        )
    if fallback is not None:
        requests[billing_schedule_id(OTHER_ENTITIES)] = BillingRunRequest(
            legal_entity=OTHER_ENTITIES,
            excluded=[r.legal_entity for r in requests.values()],
            time_zone=settings.time_zone_for(OTHER_ENTITIES),
            billing_day=fallback,
        )
    return requests


def billing_schedule(request: BillingRunRequest, *, task_queue: str) -> Schedule:
    """The Temporal Schedule of one entity's billing runs: on its billing day(s), at its hour,
    in its time zone; a run still going when the next is due makes the next one skip."""
    rule = request.billing_day
    return Schedule(
        action=ScheduleActionStartWorkflow(
            BILLING_RUN_WORKFLOW_TYPE,
            request,
            # Temporal appends each run's scheduled time to this id.
            id=billing_schedule_id(request.legal_entity),
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(
            calendars=[
                ScheduleCalendarSpec(
                    day_of_month=[ScheduleRange(day) for day in rule.days_of_month()],
                    hour=[ScheduleRange(rule.hour)],
                    minute=[ScheduleRange(rule.minute)],
                    comment=f"billing run: {rule.describe()}",
                )
            ],
            time_zone_name=request.time_zone,
        ),
        policy=SchedulePolicy(
            overlap=ScheduleOverlapPolicy.SKIP,
            # A run missed while the server was down still runs within a day.
            catchup_window=timedelta(days=1),
        ),
        state=ScheduleState(
            note=f"{request.legal_entity}: period close on {rule.describe()} ({request.time_zone})"
        ),
    )


async def ensure_billing_schedules(
    client: Client, settings: Settings, *, task_queue: str
) -> dict[str, str]:
    """Create each configured billing schedule, or bring an existing one's calendar and
    action in line with the configuration (keeping whether an operator paused it).

    Returns:
        What happened to each schedule: ``created``, ``updated`` or ``unchanged``.
    """
    done: dict[str, str] = {}
    for schedule_id, request in billing_run_requests(settings).items():
        wanted = billing_schedule(request, task_queue=task_queue)
        try:
            await client.create_schedule(schedule_id, wanted)
            done[schedule_id] = "created"
            continue
        except ScheduleAlreadyRunningError:
            pass
        handle = client.get_schedule_handle(schedule_id)
        current = await handle.describe()
        if await _same(client, current.schedule, wanted):
            done[schedule_id] = "unchanged"
            continue

        def update(given: ScheduleUpdateInput, wanted: Schedule = wanted) -> ScheduleUpdate:
            kept = given.description.schedule.state
            return ScheduleUpdate(
                schedule=Schedule(
                    action=wanted.action,
                    spec=wanted.spec,
                    policy=wanted.policy,
                    state=ScheduleState(paused=kept.paused, note=kept.note),
                )
            )

        await handle.update(update)
        done[schedule_id] = "updated"
    return done


async def _same(client: Client, current: Schedule, wanted: Schedule) -> bool:
    spec, want = current.spec, wanted.spec
    if spec.time_zone_name != want.time_zone_name:
        return False
    if [_calendar(c) for c in spec.calendars] != [_calendar(c) for c in want.calendars]:
        return False
    action, target = current.action, wanted.action
    if not isinstance(action, ScheduleActionStartWorkflow):
        return False
    assert isinstance(target, ScheduleActionStartWorkflow)
    if action.task_queue != target.task_queue or len(action.args) != 1:
        return False
    # A described schedule's arguments are its stored payloads, encoded as the client's
    # converter (and codec, when payloads are encrypted) wrote them.
    payloads = [a for a in action.args if isinstance(a, Payload)]
    if len(payloads) != 1:
        return False
    [request] = await client.data_converter.decode(payloads, [BillingRunRequest])
    return bool(request == target.args[0])


def _calendar(spec: ScheduleCalendarSpec) -> tuple[object, ...]:
    return (tuple(spec.day_of_month), tuple(spec.hour), tuple(spec.minute))
