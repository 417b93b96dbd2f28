"""``c2c billing schedule``: each legal entity's billing run as a Temporal Schedule, created,
listed, paused, triggered and backfilled from a terminal (as from the Temporal UI's Schedules
page, which shows the same schedules)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import typer
from temporalio.client import (
    Client,
    ScheduleBackfill,
    ScheduleDescription,
    ScheduleOverlapPolicy,
)
from temporalio.service import RPCError, RPCStatusCode

from c2c.settings import get_settings
from domain.billing_runs import OTHER_ENTITIES, BillingRunRequest
from domain.billing_runs import schedule_id as billing_schedule_id
from starter.cli.ops import EXIT_INVALID, fail, with_temporal
from starter.stack.schedules import billing_run_requests, ensure_billing_schedules

schedule_app = typer.Typer(
    help="Each legal entity's billing run on its billing day, as a Temporal Schedule "
    "(C2C_BILLING_SCHEDULES).",
    no_args_is_help=True,
)

ENTITY_HELP = "a legal entity with a schedule of its own, or * for every other entity"


def _configured() -> dict[str, BillingRunRequest]:
    return billing_run_requests(get_settings())


def _schedule_of(entity: str) -> str:
    """The schedule id of ``entity``; exits 2 naming the configured ones if it has none."""
    wanted = billing_schedule_id(OTHER_ENTITIES if entity in ("*", "others") else entity)
    known = _configured()
    if wanted not in known:
        names = ", ".join(r.legal_entity for r in known.values()) or "none"
        fail(
            f"no billing schedule for {entity!r}: C2C_BILLING_SCHEDULES schedules {names}",
            EXIT_INVALID,
        )
    return wanted


@schedule_app.command("ensure")
def ensure() -> None:
    """Create the configured billing schedules, and bring existing ones in line with the
    configuration (an operator's pause is kept)."""
    settings = get_settings()

    async def run(client: Client) -> dict[str, str]:
        return await ensure_billing_schedules(client, settings, task_queue=settings.task_queue)

    done = with_temporal(run)
    if not done:
        typer.echo("No billing schedules are configured (C2C_BILLING_SCHEDULES is empty).")
    for schedule_id, what in done.items():
        typer.echo(f"{schedule_id}: {what}")


def _row(schedule_id: str, request: BillingRunRequest, found: ScheduleDescription | None) -> str:
    rule = f"{request.billing_day.describe()} ({request.time_zone})"
    if found is None:
        return f"{schedule_id:<22} {request.legal_entity:<6} {rule}  not created: run `ensure`"
    state = "paused" if found.schedule.state.paused else "active"
    upcoming = found.info.next_action_times[:1]
    next_at = upcoming[0].astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if upcoming else "-"
    recent = found.info.recent_actions[-1:] if found.info.recent_actions else []
    last = recent[0].scheduled_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if recent else "-"
    return (
        f"{schedule_id:<22} {request.legal_entity:<6} {rule}  {state}, next {next_at}, last {last}"
    )


@schedule_app.command("list")
def list_schedules() -> None:
    """The configured billing schedules: billing day, time zone, paused or not, the next and
    the last run."""
    requests = _configured()

    async def run(client: Client) -> dict[str, ScheduleDescription | None]:
        found: dict[str, ScheduleDescription | None] = {}
        for schedule_id in requests:
            try:
                found[schedule_id] = await client.get_schedule_handle(schedule_id).describe()
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
                found[schedule_id] = None
        return found

    found = with_temporal(run)
    if not requests:
        typer.echo("No billing schedules are configured (C2C_BILLING_SCHEDULES is empty).")
    for schedule_id, request in requests.items():
        typer.echo(_row(schedule_id, request, found[schedule_id]))


def _on_schedule(entity: str, what: str, action: str) -> None:
    schedule_id = _schedule_of(entity)

    async def run(client: Client) -> None:
        handle = client.get_schedule_handle(schedule_id)
        try:
            if action == "pause":
                await handle.pause(note=what)
            elif action == "unpause":
                await handle.unpause(note=what)
            else:
                await handle.trigger()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                fail(f"{schedule_id} does not exist yet: run `c2c billing schedule ensure`")
            raise

    with_temporal(run)


@schedule_app.command("pause")
def pause(
    entity: str = typer.Argument(..., help=ENTITY_HELP),
    note: str = typer.Option("paused from the c2c CLI", help="why, shown in the Temporal UI"),
) -> None:
    """Stop an entity's billing runs until unpaused (a manual close still works)."""
    _on_schedule(entity, note, "pause")
    typer.echo(f"{_schedule_of(entity)}: paused ({note})")


@schedule_app.command("unpause")
def unpause(
    entity: str = typer.Argument(..., help=ENTITY_HELP),
    note: str = typer.Option("unpaused from the c2c CLI", help="why, shown in the Temporal UI"),
) -> None:
    """Let an entity's billing runs go on."""
    _on_schedule(entity, note, "unpause")
    typer.echo(f"{_schedule_of(entity)}: active ({note})")


@schedule_app.command("trigger")
def trigger(entity: str = typer.Argument(..., help=ENTITY_HELP)) -> None:
    """Run an entity's billing run now: it closes the month before today (in the entity's
    time zone) for its running contracts; a period already closed is not billed again."""
    _on_schedule(entity, "", "trigger")
    typer.echo(
        f"{_schedule_of(entity)}: triggered; see the Temporal UI's Schedules page or "
        "`c2c billing schedule list`"
    )


def _day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"must be an ISO date YYYY-MM-DD, got {value!r}", param_hint=option
        ) from None


@schedule_app.command("backfill")
def backfill(
    entity: str = typer.Argument(..., help=ENTITY_HELP),
    start: str = typer.Option(..., "--from", help="first day, YYYY-MM-DD"),
    end: str = typer.Option(..., "--to", help="last day, YYYY-MM-DD"),
) -> None:
    """Run the billing runs the schedule would have run between two days (one after the
    other), e.g. after the schedule was paused over a month end."""
    first, last = _day(start, "--from"), _day(end, "--to")
    if last < first:
        raise typer.BadParameter("must not be before --from", param_hint="--to")
    schedule_id = _schedule_of(entity)
    zone = ZoneInfo(_configured()[schedule_id].time_zone)

    async def run(client: Client) -> None:
        try:
            await client.get_schedule_handle(schedule_id).backfill(
                ScheduleBackfill(
                    # From the first day's midnight to the end of the last, in the entity's
                    # time zone.
                    start_at=datetime.combine(first, time(), tzinfo=zone),
                    end_at=datetime.combine(last + timedelta(days=1), time(), tzinfo=zone),
                    overlap=ScheduleOverlapPolicy.BUFFER_ALL,
                )
            )
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                fail(f"{schedule_id} does not exist yet: run `c2c billing schedule ensure`")
            raise

    with_temporal(run)
    typer.echo(f"{schedule_id}: backfilled the runs due from {first} to {last}")
