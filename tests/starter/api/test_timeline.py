"""A contract that continued as new shows its whole timeline and every invoice, from the ledger.

The workflow carries only its latest history lines and folds settled invoices into sums; the
CLI, the API and the dashboard read the rest from the ledger's audit trail and billing facts.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from domain.models import ContractStatus, HistoryEntry, InvoiceSummary, SettledInvoices
from ledger import Ledger
from ledger.models import AuditEvent, AuditEventIn, BillingStartIn, InvoiceIssuedIn
from starter.api.contracts import from_ledger, full_timeline
from starter.cli.render import status_text

CID = "C-LONG-1"
T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    store = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    store.create_all()
    return store


def line(n: int) -> HistoryEntry:
    return HistoryEntry(at=T0 + timedelta(minutes=n), stage="active", event=f"event {n}")


def write_trail(ledger: Ledger, lines: list[HistoryEntry]) -> None:
    ledger.record_audit(
        [
            AuditEventIn(
                event_key=f"contract-{CID}:run:{n}",
                contract_id=CID,
                workflow_id=f"contract-{CID}",
                stage=h.stage,
                event=h.event,
                at=h.at,
            )
            for n, h in enumerate(lines)
        ]
    )


def issue(ledger: Ledger, n: int) -> None:
    reference = f"2026-{n:02d}"
    ledger.record_billing_started(
        BillingStartIn(
            contract_id=CID,
            reference=reference,
            period=reference,
            period_close=True,
            legal_entity="US01",
            currency="USD",
            requested_at=T0 + timedelta(days=n),
        )
    )
    ledger.record_invoice_issued(
        InvoiceIssuedIn(
            contract_id=CID,
            reference=reference,
            invoice_id=f"INV-{n}",
            invoice_date=date(2026, n, 1),
            due_on=date(2026, n, 28),
            total=Decimal("100.00"),
            issued_at=T0 + timedelta(days=n),
        )
    )


def status(history: list[HistoryEntry], omitted: int, **changes: object) -> ContractStatus:
    return ContractStatus(
        contract_id=CID,
        stage="active",
        billing_model="time_and_materials",
        currency="USD",
        history=history,
        history_omitted=omitted,
        **changes,
    )


def test_the_whole_timeline_comes_from_the_audit_trail_and_the_unwritten_lines() -> None:
    every = [line(n) for n in range(10)]
    # The trail has lines 0-7; the workflow holds 5-9 (8 and 9 not written yet).
    trail_rows = [
        AuditEvent(
            event_key=str(n),
            contract_id=CID,
            workflow_id=CID,
            stage=h.stage,
            event=h.event,
            at=h.at,
        )
        for n, h in enumerate(every[:8])
    ]
    shown = full_timeline(status(every[5:], 5), trail_rows)
    assert [h.event for h in shown.history] == [h.event for h in every]
    assert shown.history_omitted == 0
    # A status that left nothing behind is shown as it is, without the ledger.
    unchanged = status(every[:3], 0)
    assert full_timeline(unchanged, []) is unchanged


async def test_the_ledger_fills_in_the_timeline_and_the_settled_invoices(ledger: Ledger) -> None:
    every = [line(n) for n in range(60)]
    write_trail(ledger, every)
    for n in (1, 2, 3):
        issue(ledger, n)
    held = InvoiceSummary(
        invoice_id="INV-3",
        period="2026-03",
        subtotal=Decimal("100.00"),
        tax=Decimal("0.00"),
        total=Decimal("100.00"),
        due_on=date(2026, 3, 28),
    )
    settled = SettledInvoices(
        count=2,
        subtotal=Decimal("200.00"),
        total=Decimal("200.00"),
        amount_paid=Decimal("200.00"),
    )
    folded = status(every[10:], 10, invoices=[held], settled_invoices=settled)

    shown, earlier = await from_ledger(folded, ledger)

    assert [h.event for h in shown.history] == [h.event for h in every]
    assert [f.invoice_id for f in earlier] == ["INV-1", "INV-2"]
    text = status_text(shown, earlier)
    assert "Settled in earlier runs: 2 invoices, total 200.00, paid 200.00" in text
    assert "INV-1" in text and "2026-02" in text
    assert "event 0" in text and "earlier ones are in the audit trail" not in text


def test_without_the_ledger_the_cli_says_where_the_rest_is() -> None:
    text = status_text(
        status([line(7)], 7, settled_invoices=SettledInvoices(count=3, total=Decimal("300.00")))
    )
    assert "7 earlier ones are in the audit trail" in text
    assert "Settled in earlier runs: 3 invoices" in text
    assert "listed in the ERP" in text
