"""Cash c2c cannot apply reaches finance, never in silence: a payment in another currency, and
unapplied cash still held when the contract is ready to close."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import httpx
import pytest
from temporalio.client import Client

from c2c.settings import Settings
from domain.models import Amendment, ClosePeriod, PaymentReceived
from ledger import Ledger
from starter.api.contracts import apply_amendment, close_period_for, record_payment
from starter.ops.exception_queue import get_exception, resolve
from tests.workflows.billing_helpers import pay, start_active, wait_invoices
from tests.workflows.helpers import add_time, wait_for, wait_stage

pytestmark = pytest.mark.usefixtures("worker")


async def test_a_payment_in_another_currency_is_a_finance_exception(
    temporal_client: Client, settings: Settings, ledger: Ledger
) -> None:
    cid, _ = await start_active(temporal_client, settings, end_date="2026-12-31")
    await record_payment(
        temporal_client,
        cid,
        PaymentReceived(
            payment_id=f"EUR-{cid}",
            amount=Decimal("250.00"),
            currency="EUR",
            received_on=date(2026, 12, 1),
        ),
    )
    status = await wait_for(
        temporal_client, cid, lambda s: bool(s.open_exceptions), what="the finance exception"
    )
    [exception] = status.open_exceptions
    assert (exception.code, exception.queue) == ("payment_currency_mismatch", "finance")
    assert "250.00 EUR" in exception.message and "USD" in exception.message
    assert status.stage == "active" and status.unapplied_cash == 0
    item = await get_exception(ledger, exception.exception_id)
    after = await resolve(temporal_client, item, "skip", operator="ar@example.com", note="refunded")
    assert after.open_exceptions == []


async def test_unapplied_cash_at_closing_goes_to_finance_before_the_contract_closes(
    temporal_client: Client, settings: Settings, sandbox: httpx.AsyncClient, ledger: Ledger
) -> None:
    cid, status = await start_active(temporal_client, settings)  # ended on 2026-10-31
    await add_time(sandbox, status.refs["psa_project_id"], "Analyst", "2026-10-20", "1")
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-10"))
    [invoice] = (await wait_invoices(temporal_client, cid, 1)).invoices
    await pay(temporal_client, cid, f"OVER-{cid}", invoice.total + Decimal("10.00"))
    held = await wait_for(
        temporal_client, cid, lambda s: bool(s.open_exceptions), what="the unapplied cash"
    )
    [exception] = held.open_exceptions
    assert (exception.code, exception.queue) == ("unapplied_cash_at_close", "finance")
    assert "10.00 USD" in exception.message
    assert held.stage == "active", "the contract waits for finance before it closes"
    item = await get_exception(ledger, exception.exception_id)
    await resolve(temporal_client, item, "skip", operator="ar@example.com", note="refunded")
    closed = await wait_stage(temporal_client, cid, "closed")
    assert any("unapplied cash held at closing" in h.event for h in closed.history)


async def test_messages_that_come_as_the_contract_closes_are_decided_not_lost(
    temporal_client: Client, settings: Settings, sandbox: httpx.AsyncClient, ledger: Ledger
) -> None:
    cid, status = await start_active(temporal_client, settings)  # ended on 2026-10-31
    await add_time(sandbox, status.refs["psa_project_id"], "Analyst", "2026-10-20", "1")
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-10"))
    [invoice] = (await wait_invoices(temporal_client, cid, 1)).invoices
    # The payment that settles the balance, then, before the contract has closed, a second
    # payment and an amendment: the close comes first, and each is decided after it.
    await pay(temporal_client, cid, f"FULL-{cid}", invoice.total)
    await pay(temporal_client, cid, f"LATE-{cid}", Decimal("75.00"))
    late = Amendment(
        amendment_id=f"LATE-{cid}",
        effective_date=date(2026, 10, 1),
        reason="too late",
        end_date=date(2026, 12, 31),
    )
    result = await apply_amendment(temporal_client, cid, late)
    assert (result.status, result.reason) == ("rejected", "the contract is closed")
    closed = await wait_stage(temporal_client, cid, "closed")
    events = [h.event for h in closed.history]
    assert f"payment LATE-{cid} of 75.00 USD refused: the contract is closed; reported to " in (
        " ".join(events)
    )
    assert f"amendment LATE-{cid} rejected: the contract is closed" in events
    [record] = [
        e for e in ledger.list_exceptions(contract_id=cid) if e.code == "payment_after_close"
    ]
    assert (record.queue, record.status) == ("finance", "open")
    assert "75.00 USD" in record.message
    # The run has ended: the operator's decision is the ledger's to record.
    item = await get_exception(ledger, record.exception_id)
    await resolve(
        temporal_client, item, "skip", operator="ar@example.com", note="refunded", ledger=ledger
    )
    assert (await get_exception(ledger, record.exception_id)).status == "skipped"
