"""The books on the real dev server, the sandbox and the API over HTTP: a contract's journal
(an invoice, a partial credit, a payment at another rate, revenue) balances and shows the
realised FX gain or loss; AR aging buckets its open balance; reconciliation finds an invoice
voided by hand in the ERP and a payment c2c never saw, and opens each exception once."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from typer.testing import CliRunner

from c2c.settings import Settings
from domain.models import ClosePeriod, ContractStatus, CreditInvoice
from ledger import CashApplicationFact, Ledger
from starter.api.contracts import close_period_for, contract_handle
from starter.cli import books as cli_books
from starter.cli import ops as cli_ops
from starter.cli.main import app
from tests.support import serve
from tests.workflows.billing_helpers import pay, start_active, wait_invoices
from tests.workflows.helpers import add_time, wait_for

pytestmark = pytest.mark.usefixtures("worker")


@pytest.fixture(scope="module")
def api_url(settings: Settings) -> Iterator[str]:
    with serve(settings) as url:
        yield url


async def new_entity(sandbox: httpx.AsyncClient) -> str:
    """A legal entity of the test's own (other tests' contracts stay out of its books), in
    the UK: its books are in pounds, its contracts here in dollars."""
    code = f"B{uuid.uuid4().hex[:6].upper()}"
    created = await sandbox.post(
        "/erp/v1/legal-entities",
        json={"code": code, "name": "Books Ltd", "country": "GB", "functional_currency": "GBP"},
    )
    assert created.status_code == 201, created.text
    return code


async def keyed_by_hand(
    sandbox: httpx.AsyncClient, payment_id: str, amount: str, **target: str
) -> None:
    """A dollar payment someone keys into the reference ERP by hand, for a contract or an
    invoice (``target``): c2c never hears of it."""
    recorded = await sandbox.post(
        "/erp/v1/payments",
        json={
            "payment_id": payment_id,
            **target,
            "amount": amount,
            "currency": "USD",
            "received_on": "2026-11-20",
        },
        headers={"Idempotency-Key": payment_id},
    )
    assert recorded.status_code == 201, recorded.text


async def billed_contract(
    client: Client, settings: Settings, sandbox: httpx.AsyncClient, entity: str
) -> tuple[str, ContractStatus]:
    """A dollar contract of ``entity`` with October's time invoiced (and its revenue posted)."""
    cid, status = await start_active(client, settings, legal_entity=entity, end_date="2026-12-31")
    await add_time(sandbox, status.refs["psa_project_id"], "Senior Consultant", "2026-10-05", "8")
    await close_period_for(client, cid, ClosePeriod(period="2026-10"))
    return cid, await wait_invoices(client, cid, 1)


def _sum(lines: list[dict[str, Any]], field: str) -> Decimal:
    return sum((Decimal(line[field]) for line in lines), Decimal(0))


async def test_the_journal_balances_and_shows_the_realised_fx(
    temporal_client: Client,
    settings: Settings,
    sandbox: httpx.AsyncClient,
    api_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    entity = await new_entity(sandbox)
    cid, status = await billed_contract(temporal_client, settings, sandbox, entity)
    [invoice] = status.invoices
    assert invoice.functional_currency == "GBP" and invoice.exchange_rate is not None
    await contract_handle(temporal_client, cid).signal(
        "credit_invoice",
        CreditInvoice(
            invoice_id=invoice.invoice_id,
            amount=Decimal("100.00"),
            reason="an hour billed in error",
            credit_note_id=f"CN-{cid}",
        ),
    )
    credited = await wait_for(
        temporal_client, cid, lambda s: bool(s.credit_notes), what="the credit note"
    )
    [note] = credited.credit_notes
    await pay(temporal_client, cid, f"P-{cid}", Decimal("500.00"))  # received 2026-11-23
    await wait_for(
        temporal_client, cid, lambda s: s.invoices[0].amount_paid > 0, what="the payment"
    )

    entries: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as api:
        # Revenue belongs to October, the payment to November; the invoice and the note are
        # dated when they were made.
        months = {"2026-10", "2026-11", str(invoice.invoice_date)[:7], str(date.today())[:7]}
        for period in sorted(months):
            response = await api.get(
                "/api/books/journal", params={"period": period, "legal_entity": entity}
            )
            assert response.status_code == 200, response.text
            entries += response.json()["entries"]
        refused = await api.get(
            "/api/books/journal", params={"period": "2026-13", "legal_entity": entity}
        )
        assert refused.status_code == 422 and "period" in refused.text

        by_kind = {e["kind"]: e for e in entries}
        assert set(by_kind) == {"invoice", "credit_note", "payment", "revenue"}
        for entry in entries:
            assert entry["contract_id"] == cid and entry["functional_currency"] == "GBP"
            lines = entry["lines"]
            assert _sum(lines, "debit") == _sum(lines, "credit"), entry
            assert _sum(lines, "functional_debit") == _sum(lines, "functional_credit"), entry

        roles = {line["account_role"] for line in by_kind["invoice"]["lines"]}
        assert {"receivable", "deferred_revenue"} <= roles
        assert {line["account_role"] for line in by_kind["revenue"]["lines"]} == {
            "deferred_revenue",
            "revenue",
        }
        payment = {line["account_role"]: line for line in by_kind["payment"]["lines"]}
        cash, cleared = payment["cash"], payment["receivable"]
        assert Decimal(cash["debit"]) == Decimal("500.00")
        assert Decimal(cleared["rate"]) == invoice.exchange_rate
        assert Decimal(cash["rate"]) != invoice.exchange_rate  # received weeks later
        # The cash and the receivable it clears differ in pounds: realised, on its own line.
        difference = Decimal(cash["functional_debit"]) - Decimal(cleared["functional_credit"])
        fx = payment["fx_gain_loss"]
        assert Decimal(fx["functional_credit"]) - Decimal(fx["functional_debit"]) == difference
        assert difference != 0

        # Aging: the open balance, total less the credit (with its tax) and the payment.
        open_balance = invoice.total - note.total - Decimal("500.00")
        for days, bucket in ((0, "current"), (45, "31-60"), (120, "90+")):
            as_of = invoice.due_on + timedelta(days=days)
            aged = await api.get(
                "/api/books/aging", params={"legal_entity": entity, "as_of": as_of.isoformat()}
            )
            assert aged.status_code == 200, aged.text
            report = aged.json()
            assert report["functional_currency"] == "GBP"
            [usd] = report["by_currency"]
            assert usd["currency"] == "USD"
            assert {k: Decimal(v) for k, v in usd["buckets"].items()} == {
                b: open_balance if b == bucket else Decimal(0)
                for b in ("current", "1-30", "31-60", "61-90", "90+")
            }

    # The CLI prints the same journal, as CSV.
    monkeypatch.setattr(cli_ops, "get_settings", lambda: settings)
    monkeypatch.setattr(cli_books, "get_settings", lambda: settings)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        result = CliRunner().invoke(
            app, ["books", "journal", "--period", "2026-11", "--legal-entity", entity]
        )
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert {row["account_role"] for row in rows} >= {"cash", "receivable", "fx_gain_loss"}


async def test_reconciliation_finds_a_hand_voided_invoice_and_an_unknown_payment_once(
    temporal_client: Client,
    settings: Settings,
    sandbox: httpx.AsyncClient,
    api_url: str,
    ledger: Ledger,
) -> None:
    entity = await new_entity(sandbox)
    cid, status = await billed_contract(temporal_client, settings, sandbox, entity)
    [invoice] = status.invoices
    voided = await sandbox.post(f"/_admin/erp/invoices/{invoice.invoice_id}/void")
    assert voided.status_code == 200 and voided.json()["status"] == "void"
    # Cash someone keyed into the ERP by hand: c2c never heard of it.
    stranger = f"HAND-{cid}"
    await keyed_by_hand(sandbox, stranger, "75.00", contract_id=cid)

    async with httpx.AsyncClient(base_url=api_url, timeout=120) as api:
        first = await api.post("/api/ops/reconcile", json={"legal_entity": entity})
        assert first.status_code == 200, first.text
        again = await api.post("/api/ops/reconcile", json={"legal_entity": entity})
        assert again.status_code == 200, again.text
        refused = await api.post("/api/ops/reconcile", json={"legal_entity": "not an entity"})
        assert refused.status_code == 422 and "legal_entity" in refused.text

    report = first.json()["report"]
    assert first.json()["workflow_id"].startswith(f"reconcile-{entity}-")
    found = {(d["code"], d["record_id"]) for d in report["differences"]}
    assert found == {
        ("invoice_voided_in_erp", invoice.invoice_id),
        ("payment_unknown_to_c2c", stranger),
    }
    assert report["exceptions_opened"] == 2
    # The same differences, found again: no second exception.
    assert {(d["code"], d["record_id"]) for d in again.json()["report"]["differences"]} == found
    assert again.json()["report"]["exceptions_opened"] == 0
    opened = [e for e in ledger.list_exceptions(contract_id=cid) if e.step == "reconcile"]
    assert sorted((e.code, e.queue, e.status) for e in opened) == [
        ("invoice_voided_in_erp", "integration", "open"),
        ("payment_unknown_to_c2c", "integration", "open"),
    ]
    assert json.dumps(report)  # a plain JSON report, as the CLI prints it

    # An operator skips the payment (accepted) and retries the invoice: no workflow waits on
    # either; the next run raises the retried one again, since it is still void.
    by_code = {e.code: e.exception_id for e in opened}
    async with httpx.AsyncClient(base_url=api_url, timeout=120) as api:
        decisions = (("payment_unknown_to_c2c", "skip"), ("invoice_voided_in_erp", "retry"))
        for code, action in decisions:
            decided = await api.post(
                f"/api/exceptions/{by_code[code]}/{action}",
                json={"operator": "ar@example.com", "note": "checked in the ERP"},
            )
            assert decided.status_code == 200, decided.text
        third = await api.post("/api/ops/reconcile", json={"legal_entity": entity})
    assert third.json()["report"]["exceptions_opened"] == 1
    after = {e.code: e.status for e in ledger.list_exceptions(contract_id=cid)}
    assert after == {"payment_unknown_to_c2c": "skipped", "invoice_voided_in_erp": "open"}


async def test_work_held_back_then_written_off_shows_per_contract_and_entity(
    temporal_client: Client, settings: Settings, sandbox: httpx.AsyncClient, api_url: str
) -> None:
    entity = await new_entity(sandbox)
    cid, status = await start_active(
        temporal_client,
        settings,
        legal_entity=entity,
        end_date="2026-12-31",
        not_to_exceed="500.00",
    )
    await add_time(sandbox, status.refs["psa_project_id"], "Senior Consultant", "2026-10-05", "8")
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-10"))
    held = await wait_for(
        temporal_client, cid, lambda s: bool(s.open_exceptions), what="the cap's hold"
    )
    assert held.held_back > 0
    async with httpx.AsyncClient(base_url=api_url, timeout=60) as api:
        response = await api.get("/api/books/wip", params={"legal_entity": entity})
        assert response.status_code == 200, response.text
        [work] = response.json()["contracts"]
        assert (work["contract_id"], Decimal(work["held_back"])) == (cid, held.held_back)
        assert Decimal(work["written_off"]) == 0

        # Finance decides not to bill it: skipped, the held-back work is written off.
        [exception] = held.open_exceptions
        skipped = await api.post(
            f"/api/exceptions/{exception.exception_id}/skip",
            json={"operator": "finance@example.com", "note": "goodwill"},
        )
        assert skipped.status_code == 200, skipped.text
        response = await api.get("/api/books/wip", params={"legal_entity": entity})
    [total] = response.json()["totals"]
    assert total["currency"] == "USD"
    assert (Decimal(total["held_back"]), Decimal(total["written_off"])) == (0, held.held_back)


async def test_the_aging_sees_cash_held_then_applied_to_a_later_invoice(
    temporal_client: Client,
    settings: Settings,
    sandbox: httpx.AsyncClient,
    api_url: str,
    ledger: Ledger,
) -> None:
    entity = await new_entity(sandbox)
    cid, status = await billed_contract(temporal_client, settings, sandbox, entity)
    [october] = status.invoices
    # Paid with 300.00 too much: held for the contract as unapplied cash.
    await pay(temporal_client, cid, f"P-{cid}", october.total + Decimal("300.00"))
    await wait_for(
        temporal_client,
        cid,
        lambda s: s.unapplied_cash == Decimal("300.00"),
        timeout=180,
        what="held cash",
    )
    await add_time(sandbox, status.refs["psa_project_id"], "Senior Consultant", "2026-11-03", "8")
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-11"))
    status = await wait_for(
        temporal_client,
        cid,
        lambda s: len(s.invoices) == 2 and s.unapplied_cash == 0,
        timeout=180,
        what="November invoiced, the held cash applied to it",
    )
    november = next(i for i in status.invoices if i.period == "2026-11")
    assert november.amount_paid == Decimal("300.00")
    # The status shows the cash applied once the workflow decided it; the step that applies
    # it in the ERP records the fact, a moment later on a loaded machine.
    for _ in range(100):
        facts = ledger.rows_of_contracts(CashApplicationFact, [cid])
        if facts:
            break
        await asyncio.sleep(0.2)
    [applied] = facts
    assert (applied.invoice_id, applied.source_id, applied.amount) == (
        november.invoice_id,
        f"P-{cid}",
        Decimal("300.00"),
    )

    async with httpx.AsyncClient(base_url=api_url, timeout=30) as api:

        async def aged(as_of: date) -> dict[str, Any]:
            response = await api.get(
                "/api/books/aging", params={"legal_entity": entity, "as_of": as_of.isoformat()}
            )
            assert response.status_code == 200, response.text
            return dict(response.json())

        # Due: October is paid, November is open for what the held cash did not cover.
        report = await aged(november.due_on)
        assert [(i["invoice_id"], Decimal(i["open_balance"])) for i in report["invoices"]] == [
            (november.invoice_id, november.total - Decimal("300.00"))
        ]
        # As of a day before either invoice was issued, nothing was receivable yet.
        before = await aged(min(october.invoice_date, november.invoice_date) - timedelta(days=1))
        assert before["invoices"] == []
