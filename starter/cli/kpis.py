"""``c2c kpis``: the contract-to-cash KPIs from the ledger, as text or JSON."""

from __future__ import annotations

import asyncio
import json

import typer

from c2c.settings import get_settings
from ledger.books import AGING_BUCKETS
from ledger.kpis import Distribution, KpiReport
from starter.api.kpis import KpiFilterError, build_report, check_filters
from starter.cli.ops import open_ledger
from starter.dashboard.views import hours as duration


def kpis(
    legal_entity: str | None = typer.Option(
        None, "--legal-entity", metavar="CODE", help="only this legal entity's contracts"
    ),
    period: str | None = typer.Option(
        None, "--period", metavar="YYYY-MM", help="only facts inside this month"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Contract-to-cash KPIs from the ledger (definitions in docs/kpis.md)."""
    try:
        check_filters(legal_entity, period)
    except KpiFilterError as exc:
        hint = "--legal-entity" if exc.field == "legal_entity" else "--period"
        raise typer.BadParameter(str(exc), param_hint=hint) from None
    report = asyncio.run(
        build_report(get_settings(), open_ledger(), legal_entity=legal_entity, period=period)
    )
    if as_json:
        typer.echo(json.dumps(report.model_dump(mode="json"), indent=2))
    else:
        typer.echo(report_text(report))


def _hours(value: float | None) -> str:
    # As the dashboard shows durations: minutes under an hour, days from two days on.
    return "-" if value is None else duration(value)


def _dist(d: Distribution) -> str:
    return f"{d.count} done, median {_hours(d.median_hours)}, p90 {_hours(d.p90_hours)}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _aging_lines(report: KpiReport) -> list[str]:
    """AR aging: one line per legal entity and invoice currency, the buckets in order."""
    lines = ["  AR aging (open balance by days past due):"]
    rows = [(a.legal_entity, c) for a in report.ar_aging for c in a.by_currency]
    if not rows:
        return [*lines, "    nothing open"]
    lines.append("    entity      ccy  " + "  ".join(f"{b:>12}" for b in AGING_BUCKETS))
    lines.extend(
        f"    {entity:<10}  {c.currency}  "
        + "  ".join(f"{c.buckets[b]:>12}" for b in AGING_BUCKETS)
        for entity, c in rows
    )
    return lines


def report_text(report: KpiReport) -> str:
    """The report as an operator reads it in a terminal."""
    scope = f"legal entity {report.legal_entity or 'all'}, period {report.period or 'all'}"
    t, u, c = report.touchless_provisioning, report.unbilled_time, report.invoice_correction
    lines = [
        f"KPIs ({scope}) at {report.generated_at:%Y-%m-%d %H:%M} UTC",
        f"  project setup (CLM approval -> PSA active): {_dist(report.project_setup)}",
        f"  touchless provisioning: {t.without_manual_step} of {t.contracts} ({_ratio(t.share)})",
        f"  billing cycle (period close -> invoice issued): {_dist(report.billing_cycle)}",
        f"  DSO: {'-' if report.dso_days is None else f'{report.dso_days:.1f} days'}",
        f"  invoice corrections: {c.credit_notes} credit notes / {c.invoices} invoices "
        f"({_ratio(c.rate)})",
        f"  amendment propagation: {_dist(report.amendment_propagation)}",
        f"  exception resolution: {_dist(report.exception_resolution)}",
        f"  invoice review (draft -> approved): {_dist(report.draft_approval)}; "
        f"{report.drafts_waiting} draft(s) waiting",
    ]
    if u.unavailable:
        lines.append(f"  unbilled approved time: unavailable ({u.unavailable})")
    else:
        lines.append(f"  unbilled approved time: {u.hours} h")
        lines.extend(
            f"    {e.legal_entity or '-'}: {e.hours} h, {e.value} {e.currency}"
            for e in u.by_legal_entity
        )
    lines.append("  open exceptions:")
    lines.extend(
        f"    {q.queue:<12} {q.count:>4}  oldest {_hours(q.oldest_age_hours)}  "
        + "  ".join(f"{age} {n}" for age, n in q.by_age.items())
        for q in report.open_exceptions
    )
    breaches = ", ".join(f"{q} {n}" for q, n in report.sla_breaches.by_queue.items())
    lines.append(f"  SLA breaches: {report.sla_breaches.count} ({breaches or 'none'})")
    lines.extend(_aging_lines(report))
    if report.trend:
        lines.append("  trend:   month    active  setup median  invoices  DSO")
        lines.extend(
            f"           {p.period}  {p.contracts_active:>6}  {_hours(p.setup_median_hours):>12}"
            f"  {p.invoices_issued:>8}  {'-' if p.dso_days is None else f'{p.dso_days:.1f}'}"
            for p in report.trend
        )
    return "\n".join(lines)
