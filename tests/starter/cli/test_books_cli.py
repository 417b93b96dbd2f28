"""``c2c books journal`` (CSV and JSON) and the AR aging section of ``c2c kpis``, from a real
ledger holding an invoice in dollars booked in pounds and a partial payment at another rate."""

from __future__ import annotations

import csv
import io
import json
import os
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from domain.names import Stage
from ledger import BillingStartIn, ContractRecordIn, InvoiceIssuedIn, PaymentFactIn, get_ledger
from tests.starter.cli.test_cli import c2c

pytestmark = pytest.mark.unit

AT = datetime(2026, 10, 31, 12, tzinfo=UTC)
DUE = date.today() - timedelta(days=40)  # 31-60 days past due whenever the test runs


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = get_ledger(url)
    ledger.upsert_contract(
        ContractRecordIn(
            contract_id="BOOKS-1", stage=Stage.ACTIVE, updated_at=AT, legal_entity="UK01",
            billing_model="time_and_materials", currency="USD", approved_at=AT,
        )
    )  # fmt: skip
    ledger.record_billing_started(
        BillingStartIn(
            contract_id="BOOKS-1", reference="2026-10", period="2026-10", period_close=True,
            legal_entity="UK01", currency="USD", requested_at=AT,
        )
    )  # fmt: skip
    ledger.record_invoice_issued(
        InvoiceIssuedIn(
            contract_id="BOOKS-1", reference="2026-10", invoice_id="INV-B1",
            invoice_date=date(2026, 10, 31), due_on=DUE, total=Decimal("1200.00"),
            subtotal=Decimal("1000.00"), tax=Decimal("200.00"), functional_currency="GBP",
            exchange_rate=Decimal("0.8"), issued_at=AT,
        )
    )  # fmt: skip
    ledger.record_payment_fact(
        PaymentFactIn(
            payment_id="PAY-B1", contract_id="BOOKS-1", invoice_id="INV-B1", currency="USD",
            amount=Decimal("200.00"), received_on=date(2026, 10, 31), recorded_at=AT,
            applied_amount=Decimal("200.00"), functional_currency="GBP",
            exchange_rate=Decimal("0.7"),
        )
    )  # fmt: skip
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("C2C_", "TEMPORAL_"))}
    return {**clean, "C2C_DATABASE_URL": url, "C2C_STATE_DIR": str(tmp_path)}


def test_the_journal_as_csv_and_json(cli_env: dict[str, str]) -> None:
    args = ("books", "journal", "--period", "2026-10", "--legal-entity", "UK01")
    as_csv = c2c(*args, env=cli_env)
    assert as_csv.returncode == 0, as_csv.stderr
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [(r["kind"], r["account_role"]) for r in rows] == [
        ("invoice", "receivable"),
        ("invoice", "tax_payable"),
        ("invoice", "deferred_revenue"),
        ("payment", "cash"),
        ("payment", "receivable"),
        ("payment", "fx_gain_loss"),
    ]
    fx = rows[-1]
    # 200 USD at 0.7 is 140 GBP of cash against 160 GBP of receivable: a 20 GBP loss.
    assert (fx["functional_debit"], fx["rate"]) == ("20.00", "")

    as_json = c2c(*args, "--format", "json", env=cli_env)
    assert as_json.returncode == 0, as_json.stderr
    journal = json.loads(as_json.stdout)
    assert (journal["legal_entity"], journal["period"]) == ("UK01", "2026-10")
    for entry in journal["entries"]:
        lines = entry["lines"]
        for side in ("debit", "functional_debit"):
            other = side.replace("debit", "credit")
            assert sum(Decimal(x[side]) for x in lines) == sum(Decimal(x[other]) for x in lines)


def test_bad_input_names_the_option(cli_env: dict[str, str]) -> None:
    result = c2c("books", "journal", "--period", "2026-13", "--legal-entity", "UK01", env=cli_env)
    assert result.returncode == 2 and "--period" in result.stderr


def test_kpis_show_the_aging(cli_env: dict[str, str]) -> None:
    result = c2c("kpis", "--legal-entity", "UK01", env=cli_env)
    assert result.returncode == 0, result.stderr
    section = result.stdout[result.stdout.index("AR aging") :]
    [row] = [line for line in section.splitlines() if line.strip().startswith("UK01")]
    assert row.split()[1:] == ["USD", "0", "0", "1000.00", "0", "0"]
    report = json.loads(c2c("kpis", "--legal-entity", "UK01", "--json", env=cli_env).stdout)
    [aging] = report["ar_aging"]
    assert aging["functional_currency"] == "GBP" and aging["buckets"]["31-60"] == "800.00"
