"""The KPI read model over a ledger filled with known facts: exact counts, medians, p90s, DSO.

Every instant is fixed, and the report is asked at a fixed ``now``, so each figure can be
worked out by hand (the comments show how).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from domain.names import ExceptionQueue, Stage
from ledger import (
    BillingStartIn,
    ContractRecordIn,
    CreditNoteFactIn,
    ExceptionIn,
    InvoiceIssuedIn,
    Ledger,
    PaymentFactIn,
    UnbilledMonthIn,
)
from ledger.kpis import kpi_report, percentile

NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
OCT = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)
SLA = {"integration": 4.0, "finance": 48.0, "legal": 72.0, "delivery": 48.0}


def contract(
    ledger: Ledger,
    contract_id: str,
    *,
    setup_hours: float,
    approved_at: datetime = OCT,
    legal_entity: str = "US01",
    currency: str = "USD",
) -> None:
    """A contract approved at ``approved_at`` and active ``setup_hours`` later."""
    ledger.upsert_contract(
        ContractRecordIn(
            contract_id=contract_id,
            stage=Stage.VALIDATING,
            updated_at=approved_at,
            legal_entity=legal_entity,
            billing_model="time_and_materials",
            currency=currency,
            approved_at=approved_at,
        )
    )
    active_at = approved_at + timedelta(hours=setup_hours)
    ledger.upsert_contract(
        ContractRecordIn(
            contract_id=contract_id, stage=Stage.ACTIVE, updated_at=active_at, active_at=active_at
        )
    )


def invoice(
    ledger: Ledger,
    contract_id: str,
    reference: str,
    total: str,
    invoice_date: date,
    *,
    cycle_hours: float = 1,
    legal_entity: str = "US01",
    currency: str = "USD",
    functional_currency: str = "USD",
    rate: str = "1",
) -> str:
    """An invoice issued ``cycle_hours`` after its billing step began; returns its id."""
    requested = datetime.combine(invoice_date, datetime.min.time(), tzinfo=UTC)
    period = reference.split(":")[0] if reference[:4].isdigit() else "2026-10"
    ledger.record_billing_started(
        BillingStartIn(
            contract_id=contract_id,
            reference=reference,
            period=period,
            period_close=reference == period,
            legal_entity=legal_entity,
            currency=currency,
            requested_at=requested,
        )
    )
    invoice_id = f"INV-{contract_id}-{reference}"
    ledger.record_invoice_issued(
        InvoiceIssuedIn(
            contract_id=contract_id,
            reference=reference,
            invoice_id=invoice_id,
            invoice_date=invoice_date,
            due_on=invoice_date + timedelta(days=30),
            total=Decimal(total),
            functional_currency=functional_currency,
            exchange_rate=Decimal(rate),
            issued_at=requested + timedelta(hours=cycle_hours),
        )
    )
    return invoice_id


def issued_now(contract_id: str, reference: str, invoice_id: str) -> InvoiceIssuedIn:
    """An invoice of 1.00 reported issued at ``NOW``."""
    return InvoiceIssuedIn(
        contract_id=contract_id,
        reference=reference,
        invoice_id=invoice_id,
        invoice_date=NOW.date(),
        due_on=NOW.date() + timedelta(days=30),
        total=Decimal(1),
        issued_at=NOW,
    )


def payment(
    ledger: Ledger, contract_id: str, invoice_id: str | None, amount: str, on: date
) -> None:
    ledger.record_payment_fact(
        PaymentFactIn(
            payment_id=f"PAY-{contract_id}-{amount}-{on}",
            contract_id=contract_id,
            invoice_id=invoice_id,
            currency="USD",
            amount=Decimal(amount),
            received_on=on,
            recorded_at=NOW,
        )
    )


def credit_note(ledger: Ledger, contract_id: str, invoice_id: str, total: str, on: date) -> None:
    ledger.record_credit_note_fact(
        CreditNoteFactIn(
            credit_note_id=f"CN-{invoice_id}",
            contract_id=contract_id,
            invoice_id=invoice_id,
            currency="USD",
            total=Decimal(total),
            issued_on=on,
            issued_at=NOW,
        )
    )


def exception(
    ledger: Ledger,
    contract_id: str,
    exception_id: str,
    queue: ExceptionQueue,
    opened_at: datetime,
    *,
    stage: Stage = Stage.ACTIVE,
) -> None:
    ledger.open_exception(
        ExceptionIn(
            exception_id=exception_id,
            contract_id=contract_id,
            workflow_id=f"contract-{contract_id}",
            stage=stage,
            system="erp",
            code="boom",
            message="boom",
            queue=queue,
            opened_at=opened_at,
        )
    )


def test_percentiles_interpolate_between_closest_ranks() -> None:
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.9) == 7.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5
    # h = 3 * 0.9 = 2.7: 3 + 0.7 * (4 - 3)
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.9) == pytest.approx(3.7)
    with pytest.raises(ValueError, match="between 0 and 1"):
        percentile([1.0], 1.5)


def test_an_empty_ledger_reports_counts_of_zero_and_no_statistics(ledger: Ledger) -> None:
    report = kpi_report(ledger, now=NOW)
    assert report.project_setup.count == 0
    assert report.project_setup.median_hours is None
    assert report.touchless_provisioning.share is None
    assert report.dso_days is None
    assert report.invoice_correction.rate is None
    assert [q.queue for q in report.open_exceptions] == [
        "integration",
        "finance",
        "legal",
        "delivery",
    ]
    assert report.sla_breaches.count == 0
    assert report.trend == []
    assert (report.unbilled_time.hours, report.unbilled_time.unavailable) == (0, None)
    body = report.model_dump(mode="json")
    assert set(body) == {
        "legal_entity",
        "period",
        "generated_at",
        "project_setup",
        "touchless_provisioning",
        "billing_cycle",
        "unbilled_time",
        "dso_days",
        "invoice_correction",
        "amendment_propagation",
        "open_exceptions",
        "exception_resolution",
        "sla_breaches",
        "trend",
        "ar_aging",
        "draft_approval",
        "drafts_waiting",
    }
    assert report.ar_aging == []
    assert (report.draft_approval.count, report.drafts_waiting) == (0, 0)


def test_project_setup_and_touchless_provisioning_by_entity_and_period(ledger: Ledger) -> None:
    for n, hours in enumerate([1, 2, 3, 4, 10]):
        contract(ledger, f"US-{n}", setup_hours=hours)
    contract(
        ledger,
        "UK-0",
        setup_hours=100,
        approved_at=datetime(2026, 11, 1, tzinfo=UTC),
        legal_entity="UK01",
        currency="GBP",
    )
    # A provisioning exception makes US-4 a manual setup; one while active does not count.
    exception(ledger, "US-4", "x-1", ExceptionQueue.INTEGRATION, OCT, stage=Stage.PROVISIONING_ERP)
    exception(ledger, "US-3", "x-2", ExceptionQueue.FINANCE, OCT + timedelta(days=1))

    us = kpi_report(ledger, legal_entity="US01", now=NOW)
    # Sorted 1, 2, 3, 4, 10: median 3; p90 at h = 4 * 0.9 = 3.6: 4 + 0.6 * (10 - 4) = 7.6.
    assert (us.project_setup.count, us.project_setup.median_hours) == (5, 3.0)
    assert us.project_setup.p90_hours == pytest.approx(7.6)
    assert us.touchless_provisioning.model_dump() == {
        "contracts": 5,
        "without_manual_step": 4,
        "share": 0.8,
    }

    everyone = kpi_report(ledger, now=NOW)
    assert everyone.project_setup.count == 6
    assert everyone.project_setup.median_hours == 3.5

    november = kpi_report(ledger, period="2026-11", now=NOW)
    assert november.project_setup.model_dump() == {
        "count": 1,
        "median_hours": 100.0,
        "p90_hours": 100.0,
    }
    assert november.touchless_provisioning.share == 1.0
    assert kpi_report(ledger, legal_entity="DE01", now=NOW).project_setup.count == 0


def test_billing_cycle_counts_period_closes_only(ledger: Ledger) -> None:
    contract(ledger, "C-1", setup_hours=1)
    invoice(ledger, "C-1", "2026-10", "100.00", date(2026, 11, 2), cycle_hours=0.5)
    invoice(ledger, "C-1", "2026-11", "100.00", date(2026, 12, 1), cycle_hours=2)
    # An advance fee is billed at activation, not at a period close.
    invoice(ledger, "C-1", "2026-10:advance", "100.00", date(2026, 10, 5), cycle_hours=50)
    # Begun but nothing issued (the step found nothing to invoice): no cycle.
    ledger.record_billing_started(
        BillingStartIn(
            contract_id="C-1",
            reference="2026-09",
            period="2026-09",
            period_close=True,
            legal_entity="US01",
            currency="USD",
            requested_at=OCT,
        )
    )

    report = kpi_report(ledger, now=NOW)
    assert report.billing_cycle.count == 2
    assert report.billing_cycle.median_hours == 1.25
    # h = 0.9: 0.5 + 0.9 * 1.5 = 1.85
    assert report.billing_cycle.p90_hours == pytest.approx(1.85)
    assert kpi_report(ledger, period="2026-11", now=NOW).billing_cycle.count == 1


def test_fact_writes_are_idempotent_and_keep_the_first_times(ledger: Ledger) -> None:
    contract(ledger, "C-1", setup_hours=1)
    invoice(ledger, "C-1", "2026-10", "100.00", date(2026, 11, 2), cycle_hours=1)
    # A retried step starts again later and sees the invoice issued again: nothing changes.
    invoice(ledger, "C-1", "2026-10", "100.00", date(2026, 11, 3), cycle_hours=5)
    payment(ledger, "C-1", "INV-C-1-2026-10", "40.00", date(2026, 11, 10))
    payment(ledger, "C-1", "INV-C-1-2026-10", "40.00", date(2026, 11, 10))
    ledger.record_amendment_started("C-1", "A-1", OCT)
    ledger.record_amendment_started("C-1", "A-1", OCT + timedelta(hours=9))
    ledger.record_amendment_propagated("C-1", "A-1", OCT + timedelta(hours=1))
    ledger.record_amendment_propagated("C-1", "A-1", OCT + timedelta(hours=7))

    report = kpi_report(ledger, now=NOW)
    assert report.billing_cycle.model_dump() == {
        "count": 1,
        "median_hours": 1.0,
        "p90_hours": 1.0,
    }
    assert report.invoice_correction.invoices == 1
    assert report.amendment_propagation.median_hours == 1.0
    with pytest.raises(ValueError, match="recorded as started"):
        ledger.record_invoice_issued(issued_now("C-1", "2026-12", "INV-X"))


def unbilled(month: str, hours: str, value: str, unpriced: str = "0") -> UnbilledMonthIn:
    return UnbilledMonthIn(
        work_month=month,
        currency="USD",
        hours=Decimal(hours),
        value=Decimal(value),
        unpriced_hours=Decimal(unpriced),
    )


def test_unbilled_time_is_what_the_billing_activity_read_last(ledger: Ledger) -> None:
    contract(ledger, "C-1", setup_hours=1)
    contract(ledger, "C-2", setup_hours=1, legal_entity="GB01")
    contract(ledger, "C-DONE", setup_hours=1)
    ledger.upsert_contract(
        ContractRecordIn(contract_id="C-DONE", stage=Stage.CLOSED, updated_at=NOW, closed_at=NOW)
    )
    ledger.record_unbilled_time("C-1", [unbilled("2026-10", "9", "900.00")], NOW)
    # A later read replaces the earlier one; writing it twice changes nothing.
    later = [unbilled("2026-10", "3", "600.00"), unbilled("2026-11", "2.5", "300.00", "1")]
    for _ in range(2):
        ledger.record_unbilled_time("C-1", later, NOW)
    ledger.record_unbilled_time("C-2", [unbilled("2026-11", "1", "100.00")], NOW)
    ledger.record_unbilled_time("C-DONE", [unbilled("2026-11", "4", "400.00")], NOW)

    report = kpi_report(ledger, legal_entity="US01", now=NOW).unbilled_time
    [line] = report.by_contract
    assert (line.contract_id, line.hours, line.value, line.unpriced_hours) == (
        "C-1",
        Decimal("5.5"),
        Decimal("900.00"),
        Decimal(1),
    )
    every = kpi_report(ledger, now=NOW).unbilled_time
    assert [(e.legal_entity, e.hours) for e in every.by_legal_entity] == [
        ("GB01", Decimal(1)),
        ("US01", Decimal("5.5")),
    ]
    # A period counts work done up to its month only.
    october = kpi_report(ledger, period="2026-10", now=NOW).unbilled_time
    assert [(u.contract_id, u.value) for u in october.by_contract] == [("C-1", Decimal("600.00"))]
    # Nothing left unbilled: the contract drops out of the figure.
    ledger.record_unbilled_time("C-1", [], NOW)
    assert [u.contract_id for u in kpi_report(ledger, now=NOW).unbilled_time.by_contract] == ["C-2"]


def test_dso_by_the_period_method(ledger: Ledger) -> None:
    contract(ledger, "C-1", setup_hours=1)
    small = invoice(ledger, "C-1", "2026-09", "1100.00", date(2026, 10, 1))
    large = invoice(ledger, "C-1", "2026-10", "2000.00", date(2026, 10, 31))
    payment(ledger, "C-1", small, "1000.00", date(2026, 10, 20))
    credit_note(ledger, "C-1", large, "100.00", date(2026, 10, 31))
    # Cash after the month does not lower the month's receivable.
    payment(ledger, "C-1", small, "100.00", date(2026, 11, 3))

    october = kpi_report(ledger, period="2026-10", now=NOW)
    # Receivable 31 Oct: 1100 + 2000 - 100 - 1000 = 2000; net sales 3100 - 100 = 3000;
    # DSO = 2000 / 3000 * 31 days = 20.67.
    assert october.dso_days == 20.67
    assert october.invoice_correction.model_dump() == {
        "invoices": 2,
        "credit_notes": 1,
        "rate": 0.5,
    }
    # No sales in November: no DSO for the month.
    assert kpi_report(ledger, period="2026-11", now=NOW).dso_days is None
    # Without a period: the 90 days to 15 Nov (from 17 Aug) hold every sale; the receivable
    # is 1900 once the November cash is in: 1900 / 3000 * 90 = 57.
    assert kpi_report(ledger, now=NOW).dso_days == 57.0


def test_dso_in_the_entity_books_and_none_across_books(ledger: Ledger) -> None:
    contract(ledger, "EUR-1", setup_hours=1, currency="EUR")
    # 100 EUR at 2 USD each: 200 USD of sales; 50 EUR paid at the invoice's rate: 100 USD.
    eur = invoice(
        ledger, "EUR-1", "2026-10", "100.00", date(2026, 10, 10), currency="EUR", rate="2"
    )
    payment(ledger, "EUR-1", eur, "50.00", date(2026, 10, 12))
    assert kpi_report(ledger, legal_entity="US01", period="2026-10", now=NOW).dso_days == 15.5

    contract(ledger, "UK-1", setup_hours=1, legal_entity="UK01", currency="GBP")
    invoice(
        ledger,
        "UK-1",
        "2026-10",
        "300.00",
        date(2026, 10, 20),
        legal_entity="UK01",
        currency="GBP",
        functional_currency="GBP",
    )
    assert kpi_report(ledger, period="2026-10", now=NOW).dso_days is None
    assert kpi_report(ledger, legal_entity="UK01", period="2026-10", now=NOW).dso_days == 31.0


def test_exceptions_open_resolved_and_breaching_their_sla(ledger: Ledger) -> None:
    contract(ledger, "C-1", setup_hours=1)
    q = ExceptionQueue
    exception(ledger, "C-1", "open-1h", q.INTEGRATION, NOW - timedelta(hours=1))
    exception(ledger, "C-1", "open-5h", q.INTEGRATION, NOW - timedelta(hours=5))
    exception(ledger, "C-1", "open-30h", q.FINANCE, NOW - timedelta(hours=30))
    exception(ledger, "C-1", "open-100h", q.DELIVERY, NOW - timedelta(hours=100))
    exception(ledger, "C-1", "fixed-2h", q.INTEGRATION, OCT)
    ledger.resolve_exception("fixed-2h", "retried", "ops", at=OCT + timedelta(hours=2))
    exception(ledger, "C-1", "fixed-6h", q.INTEGRATION, OCT)
    ledger.resolve_exception("fixed-6h", "skipped", "ops", at=OCT + timedelta(hours=6))
    exception(ledger, "C-1", "escalated", q.LEGAL, OCT)
    ledger.escalate_exception("escalated", at=OCT + timedelta(hours=72))
    ledger.resolve_exception("escalated", "retried", "ops", at=OCT + timedelta(hours=10))

    report = kpi_report(ledger, now=NOW, sla_hours=SLA)
    by_queue = {q.queue: q for q in report.open_exceptions}
    assert list(by_queue) == ["integration", "finance", "legal", "delivery"]
    assert by_queue["integration"].count == 2
    assert by_queue["integration"].oldest_age_hours == 5.0
    assert by_queue["integration"].by_age == {"<4h": 1, "4-24h": 1, "1-3d": 0, ">3d": 0}
    assert by_queue["finance"].by_age == {"<4h": 0, "4-24h": 0, "1-3d": 1, ">3d": 0}
    assert by_queue["delivery"].by_age == {"<4h": 0, "4-24h": 0, "1-3d": 0, ">3d": 1}
    assert by_queue["legal"].model_dump() == {
        "queue": "legal",
        "count": 0,
        "oldest_age_hours": None,
        "by_age": {"<4h": 0, "4-24h": 0, "1-3d": 0, ">3d": 0},
    }
    # Resolved after 2, 6 and 10 hours.
    assert report.exception_resolution.model_dump() == {
        "count": 3,
        "median_hours": 6.0,
        "p90_hours": pytest.approx(9.2),
    }
    # Integration (4 h): open 5 h, fixed after 6 h. Legal: escalated. Delivery (48 h): open
    # 100 h. Finance (48 h): open 30 h is within it.
    assert report.sla_breaches.model_dump() == {
        "count": 4,
        "by_queue": {"integration": 2, "finance": 0, "legal": 1, "delivery": 1},
    }
    # Without SLAs only the escalation is a breach.
    assert kpi_report(ledger, now=NOW).sla_breaches.count == 1
    # In October: only the exceptions opened then.
    october = kpi_report(ledger, period="2026-10", now=NOW, sla_hours=SLA)
    assert october.sla_breaches.by_queue == {
        "integration": 1,
        "finance": 0,
        "legal": 1,
        "delivery": 0,
    }
    assert sum(q.count for q in october.open_exceptions) == 0


def test_trend_covers_the_months_with_activity_oldest_first(ledger: Ledger) -> None:
    contract(ledger, "C-1", setup_hours=2, approved_at=datetime(2026, 8, 3, tzinfo=UTC))
    contract(ledger, "C-2", setup_hours=4)
    invoice(ledger, "C-1", "2026-08", "100.00", date(2026, 9, 1))
    invoice(ledger, "C-2", "2026-10", "250.50", date(2026, 11, 2))
    invoice(ledger, "C-1", "2026-10", "49.50", date(2026, 11, 2))

    trend = kpi_report(ledger, now=NOW).trend
    assert [p.period for p in trend] == ["2026-08", "2026-09", "2026-10", "2026-11"]
    august, september, october, november = trend
    assert (august.contracts_active, august.setup_median_hours) == (1, 2.0)
    assert (september.invoices_issued, september.setup_median_hours) == (1, None)
    assert (october.contracts_active, october.setup_median_hours) == (2, 4.0)
    assert november.model_dump(mode="json")["invoiced_value_by_currency"] == {"USD": "300.00"}
    assert november.invoices_issued == 2
    # The trend of a month ends at that month.
    assert [p.period for p in kpi_report(ledger, period="2026-09", now=NOW).trend] == [
        "2026-08",
        "2026-09",
    ]


@pytest.mark.parametrize("period", ["2026-13", "2026-1", "october"])
def test_a_bad_period_is_refused(ledger: Ledger, period: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM"):
        kpi_report(ledger, period=period, now=NOW)


def test_a_naive_now_is_refused(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        kpi_report(ledger, now=datetime(2026, 11, 1))


def test_an_invoice_reported_again_keeps_the_first_report_exactly(ledger: Ledger) -> None:
    contract(ledger, "C-1", setup_hours=1)
    first = invoice(ledger, "C-1", "2026-10", "1234.56", date(2026, 10, 31), rate="1.0825")
    ledger.record_invoice_issued(issued_now("C-1", "2026-10", "INV-LATER"))
    [stored] = ledger.issued_invoices("C-1")
    assert stored.invoice_id == first
    assert (stored.invoice_date, stored.due_on) == (date(2026, 10, 31), date(2026, 11, 30))
    assert stored.total == Decimal("1234.56")
    assert stored.exchange_rate == Decimal("1.0825")
    assert stored.issued_at == datetime(2026, 10, 31, 1, 0, tzinfo=UTC)
