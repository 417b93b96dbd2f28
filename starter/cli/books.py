"""``c2c books journal`` (the GL journal as CSV or JSON), ``c2c books wip`` (held-back and
written-off work) and ``c2c ops reconcile`` (the ledger compared with the ERP, by the
``Reconcile`` workflow)."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from enum import StrEnum

import typer

from c2c.logs import configure_logging
from c2c.settings import get_settings
from domain.reconcile import ReconcileRequest
from ledger.books import journal as build_journal
from ledger.journal import Journal
from starter.api.kpis import KpiFilterError, check_filters
from starter.cli.ops import open_ledger, with_temporal
from starter.ops.reconcile import reconcile as run_reconcile
from starter.ops.work_in_progress import work_in_progress

books_app = typer.Typer(
    help="The books: the general-ledger journal, work in progress.", no_args_is_help=True
)

#: The CSV's columns: the entry, then the line.
CSV_COLUMNS = (
    "entry_id",
    "kind",
    "posted_on",
    "contract_id",
    "functional_currency",
    "account_role",
    "debit",
    "credit",
    "currency",
    "functional_debit",
    "functional_credit",
    "rate",
    "source_id",
)


class Format(StrEnum):
    CSV = "csv"
    JSON = "json"


def _check_entity(legal_entity: str | None) -> None:
    try:
        check_filters(legal_entity, None)
    except KpiFilterError as exc:
        raise typer.BadParameter(str(exc), param_hint="--legal-entity") from None


@books_app.callback()
def _configure_logging() -> None:
    configure_logging("cli")


def journal_csv(report: Journal) -> str:
    """One row per line, its entry's fields first."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for entry in report.entries:
        for line in entry.lines:
            writer.writerow(
                [
                    entry.entry_id,
                    entry.kind,
                    entry.posted_on.isoformat(),
                    entry.contract_id,
                    entry.functional_currency,
                    line.account_role,
                    format(line.debit, "f"),
                    format(line.credit, "f"),
                    line.currency,
                    format(line.functional_debit, "f"),
                    format(line.functional_credit, "f"),
                    "" if line.rate is None else format(line.rate, "f"),
                    line.source_id,
                ]
            )
    return out.getvalue()


@books_app.command("journal")
def journal(
    period: str = typer.Option(..., "--period", metavar="YYYY-MM", help="the month"),
    legal_entity: str = typer.Option(
        ..., "--legal-entity", metavar="CODE", help="the legal entity, e.g. US01"
    ),
    output: Format = typer.Option(Format.CSV, "--format", help="csv or json"),
) -> None:
    """The entity's general-ledger journal for the month (docs/books.md)."""
    try:
        check_filters(legal_entity, period)
    except KpiFilterError as exc:
        hint = "--legal-entity" if exc.field == "legal_entity" else "--period"
        raise typer.BadParameter(str(exc), param_hint=hint) from None
    report = build_journal(open_ledger(), legal_entity=legal_entity, period=period)
    if output is Format.JSON:
        typer.echo(json.dumps(report.model_dump(mode="json"), indent=2))
    else:
        typer.echo(journal_csv(report), nl=False)


@books_app.command("wip")
def wip(
    legal_entity: str | None = typer.Option(
        None, "--legal-entity", metavar="CODE", help="only this legal entity's contracts"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Work held back by a not-to-exceed cap and written off above it, per contract."""
    _check_entity(legal_entity)
    ledger = open_ledger()
    report = with_temporal(
        lambda client: work_in_progress(client, ledger, legal_entity=legal_entity)
    )
    if as_json:
        typer.echo(json.dumps(report.model_dump(mode="json"), indent=2))
        return
    typer.echo(f"Work in progress ({legal_entity or 'every legal entity'}):")
    for c in report.contracts:
        typer.echo(
            f"  {c.contract_id}  {c.stage:<10}  held back {c.held_back} {c.currency}, "
            f"written off {c.written_off} {c.currency}"
        )
        for w in c.write_offs:
            erp = f"ERP {w.erp_ref}" if w.erp_ref else "not in the ERP"
            typer.echo(
                f"    {w.write_off_id}: {w.amount} {c.currency} of {w.reference} "
                f"by {w.operator} on {w.written_off_on}, {erp}"
            )
    for t in report.totals:
        typer.echo(f"  total {t.currency}: held back {t.held_back}, written off {t.written_off}")
    if not report.contracts:
        typer.echo("  nothing held back or written off")
    if report.unavailable:
        typer.echo(f"  unavailable (no answer from the workflow): {', '.join(report.unavailable)}")


def reconcile(
    legal_entity: str | None = typer.Option(
        None, "--legal-entity", metavar="CODE", help="only this legal entity's contracts"
    ),
    since: str | None = typer.Option(
        None,
        "--since",
        metavar="YYYY-MM-DD",
        help="only contracts with activity in c2c on or after this day",
    ),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Compare the ledger with the ERP; each difference opens one integration exception."""
    _check_entity(legal_entity)
    try:
        day = date.fromisoformat(since) if since else None
    except ValueError:
        raise typer.BadParameter(
            f"since must be a day, YYYY-MM-DD, got {since!r}", param_hint="--since"
        ) from None
    request = ReconcileRequest(legal_entity=legal_entity, since=day)
    task_queue = get_settings().task_queue
    workflow_id, report = with_temporal(
        lambda client: run_reconcile(client, request, task_queue=task_queue)
    )
    if as_json:
        typer.echo(
            json.dumps({"workflow_id": workflow_id, **report.model_dump(mode="json")}, indent=2)
        )
        return
    scope = legal_entity or "every legal entity"
    typer.echo(
        f"{workflow_id}: {report.contracts} contract(s) of {scope} compared with the ERP, "
        f"{len(report.differences)} difference(s), {report.exceptions_opened} exception(s) "
        "opened now"
    )
    for difference in report.differences:
        typer.echo(f"  {difference.exception_id}  {difference.code}: {difference.message}")
