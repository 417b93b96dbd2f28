"""A ledger as c2c 0.8.0 left it, with contracts in flight: the DDL 0.8.0 created (pinned in
``data/``) and rows in every table, every column filled somewhere."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, inspect, select

from ledger.migrations import release_0_8_0

DATA = Path(__file__).with_name("data")
T = datetime(2026, 11, 30, 17, 45, 12, 345678, tzinfo=UTC)


def ddl_0_8_0(dialect: str) -> list[str]:
    """The statements of ``data/ledger-0.8.0.<dialect>.sql``: the tables and indexes c2c
    0.8.0 created, as its ``create_missing`` compiled them."""
    text_ = (DATA / f"ledger-0.8.0.{dialect}.sql").read_text()
    lines = [line for line in text_.splitlines() if not line.startswith("--")]
    return [stmt.strip() for stmt in "\n".join(lines).split(";") if stmt.strip()]


def make_0_8_0_ledger(engine: Engine) -> None:
    """A database as c2c 0.8.0 left it: its DDL, no revision, and contracts in flight."""
    with engine.begin() as connection:
        for statement in ddl_0_8_0(engine.dialect.name):
            connection.exec_driver_sql(statement)
        for name, rows in ROWS.items():
            connection.execute(release_0_8_0.metadata.tables[name].insert(), rows)


#: Rows in every table of 0.8.0: three contracts (one closed, one active and billed, one on
#: hold with an open exception), every column filled somewhere and left empty somewhere else.
ROWS: dict[str, list[dict[str, Any]]] = {
    "ledger_contract": [
        {
            "contract_id": "K-0",
            "workflow_id": "contract-K-0",
            "customer_id": "CUST-1",
            "legal_entity": "GB01",
            "billing_model": "fixed_fee",
            "currency": "GBP",
            "contract_value": "5000",
            "stage": "closed",
            "approved_at": T,
            "active_at": T,
            "closed_at": T,
            "updated_at": T,
        },
        {
            "contract_id": "K-1",
            "workflow_id": "contract-K-1",
            "customer_id": "CUST-1",
            "legal_entity": "US01",
            "billing_model": "time_and_materials",
            "currency": "USD",
            "contract_value": "120000.50",
            "stage": "active",
            "approved_at": T,
            "active_at": T,
            "closed_at": None,
            "updated_at": T,
        },
        {
            "contract_id": "K-2",
            "workflow_id": None,
            "customer_id": None,
            "legal_entity": None,
            "billing_model": None,
            "currency": None,
            "contract_value": None,
            "stage": "on_hold",
            "approved_at": None,
            "active_at": None,
            "closed_at": None,
            "updated_at": T,
        },
    ],
    "ledger_cross_reference": [
        {
            "claim": "erp:project:P-1",
            "contract_id": "K-1",
            "system": "erp",
            "kind": "project",
            "external_id": "P-1",
            "created_at": T,
        },
        {
            "claim": "erp:customer:C-9:K-1",
            "contract_id": "K-1",
            "system": "erp",
            "kind": "customer",
            "external_id": "C-9",
            "created_at": T,
        },
    ],
    "ledger_audit_event": [
        {
            "event_key": "contract-K-1/approved",
            "contract_id": "K-1",
            "workflow_id": "contract-K-1",
            "run_id": "run-1",
            "stage": "active",
            "event": "approved",
            "detail": {"amount": "120000.50", "lines": [1, 2], "note": "café"},
            "at": T,
            "recorded_at": T,
        },
        {
            "event_key": "contract-K-2/held",
            "contract_id": "K-2",
            "workflow_id": "contract-K-2",
            "run_id": None,
            "stage": "on_hold",
            "event": "held",
            "detail": None,
            "at": T,
            "recorded_at": T,
        },
    ],
    "ledger_exception": [
        {
            "exception_id": "exc-K-2-bill",
            "contract_id": "K-2",
            "workflow_id": "contract-K-2",
            "stage": "on_hold",
            "system": "erp",
            "code": "credit_hold",
            "message": "customer on credit hold",
            "queue": "finance",
            "step": "billing",
            "retryable": True,
            "status": "open",
            "opened_at": T,
            "resolved_at": None,
            "resolved_by": None,
            "resolution_note": None,
            "escalated_at": T,
        },
        {
            "exception_id": "exc-K-1-psa",
            "contract_id": "K-1",
            "workflow_id": "contract-K-1",
            "stage": "active",
            "system": "psa",
            "code": "missing_rate",
            "message": "no rate for role",
            "queue": "delivery",
            "step": "",
            "retryable": False,
            "status": "retried",
            "opened_at": T,
            "resolved_at": T,
            "resolved_by": "ops@example.com",
            "resolution_note": "rate added",
            "escalated_at": None,
        },
    ],
    "ledger_inbound_event": [
        {
            "source": "psa",
            "event_id": "evt-1",
            "type": "time_entry.approved",
            "contract_id": "K-1",
            "status": "processed",
            "reason": None,
            "body": '{"id": "evt-1"}',
            "body_digest": "ab" * 32,
            "received_at": T,
            "processed_at": T,
            "attempts": 1,
            "claimed_until": None,
            "response_status": 200,
            "response_body": {"status": "processed"},
        },
        {
            "source": "payments",
            "event_id": "evt-2",
            "type": "payment.received",
            "contract_id": None,
            "status": "dead_letter",
            "reason": "unknown invoice",
            "body": '{"id": "evt-2"}',
            "body_digest": None,
            "received_at": T,
            "processed_at": T,
            "attempts": 3,
            "claimed_until": T,
            "response_status": None,
            "response_body": None,
        },
    ],
    "ledger_billing_fact": [
        {
            "fact_key": "K-1:K-1-2026-10",
            "contract_id": "K-1",
            "reference": "K-1-2026-10",
            "period": "2026-10",
            "period_close": True,
            "legal_entity": "US01",
            "currency": "USD",
            "requested_at": T,
            "invoice_id": "INV-1",
            "invoice_date": date(2026, 11, 1),
            "due_on": date(2026, 12, 1),
            "total": "10400.00",
            "functional_currency": "USD",
            "exchange_rate": "1",
            "issued_at": T,
        },
        {
            "fact_key": "K-1:K-1-2026-11",
            "contract_id": "K-1",
            "reference": "K-1-2026-11",
            "period": "2026-11",
            "period_close": False,
            "legal_entity": "US01",
            "currency": "USD",
            "requested_at": T,
            "invoice_id": None,
            "invoice_date": None,
            "due_on": None,
            "total": None,
            "functional_currency": None,
            "exchange_rate": None,
            "issued_at": None,
        },
    ],
    "ledger_payment_fact": [
        {
            "payment_id": "PAY-1",
            "contract_id": "K-1",
            "invoice_id": "INV-1",
            "currency": "USD",
            "amount": "5200.005",
            "received_on": date(2026, 11, 20),
            "recorded_at": T,
        },
        {
            "payment_id": "PAY-2",
            "contract_id": "K-1",
            "invoice_id": None,
            "currency": "EUR",
            "amount": "0.01",
            "received_on": date(2026, 11, 21),
            "recorded_at": T,
        },
    ],
    "ledger_credit_note_fact": [
        {
            "credit_note_id": "CN-1",
            "contract_id": "K-1",
            "invoice_id": "INV-1",
            "currency": "USD",
            "total": "100.00",
            "issued_on": date(2026, 11, 25),
            "issued_at": T,
        }
    ],
    "ledger_amendment_fact": [
        {
            "fact_key": "K-1:A-1",
            "contract_id": "K-1",
            "amendment_id": "A-1",
            "started_at": T,
            "propagated_at": T,
        },
        {
            "fact_key": "K-2:A-1",
            "contract_id": "K-2",
            "amendment_id": "A-1",
            "started_at": T,
            "propagated_at": None,
        },
    ],
}


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of 0.8.0, in primary-key order."""
    rows = {}
    with engine.connect() as connection:
        for table in release_0_8_0.metadata.sorted_tables:
            query = select(table).order_by(*table.primary_key.columns)
            rows[table.name] = [tuple(row) for row in connection.execute(query)]
    return rows


def back_to_before_revisions(connection: Connection) -> None:
    """Make a ledger of today look made before schema revisions existed: no version table,
    and none of the tables or columns added after 0.8.0 (a ledger of that age has none)."""
    connection.exec_driver_sql("DROP TABLE alembic_version")
    known = release_0_8_0.metadata.tables
    for table in inspect(connection).get_table_names():
        if table not in known:
            connection.exec_driver_sql(f"DROP TABLE {table}")
            continue
        for column in inspect(connection).get_columns(table):
            if column["name"] not in known[table].columns:
                connection.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {column['name']}")
