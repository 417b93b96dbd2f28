"""Tax on credit notes to the cent, on the real dev server: the note that credits the rest of
an invoice takes exactly the tax left on it, so a fully credited invoice is settled and the
contract closes; each note is a return document at the invoice's tax date; and a cross-border
B2B sale to a customer with a VAT number is reverse-charged."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from c2c.settings import Settings
from connectors.tax import document_code
from domain.models import ClosePeriod, ContractStatus, CreditInvoice
from domain.names import contract_workflow_id
from starter.api.contracts import close_period_for, contract_handle
from tests.workflows.billing_helpers import replay, start_active, wait_invoices
from tests.workflows.helpers import add_time, items, wait_for, wait_stage

pytestmark = pytest.mark.usefixtures("worker")

REVERSE_CHARGE = (
    "Reverse charge: VAT to be accounted for by the recipient "
    "(Art. 196 Council Directive 2006/112/EC)"
)
INITECH = {"crm_account_id": "INITECH-DE", "name": "Initech GmbH", "country": "DE"}


async def bill_october(
    client: Client, settings: Settings, sandbox: httpx.AsyncClient, rates: dict[str, str]
) -> tuple[str, ContractStatus]:
    """A contract ended on 2026-10-31 that bills one hour of each role in ``rates``."""
    cid, status = await start_active(
        client,
        settings,
        rate_card=[{"role": role, "hourly_rate": rate} for role, rate in rates.items()],
    )
    for role in rates:
        await add_time(sandbox, status.refs["psa_project_id"], role, "2026-10-20", "1")
    await close_period_for(client, cid, ClosePeriod(period="2026-10"))
    return cid, await wait_invoices(client, cid, 1)


async def credit(client: Client, cid: str, invoice_id: str, note_id: str, amount: str) -> None:
    await contract_handle(client, cid).signal(
        "credit_invoice",
        CreditInvoice(
            invoice_id=invoice_id,
            amount=Decimal(amount),
            reason="hours billed in error",
            credit_note_id=note_id,
        ),
    )


async def tax_document(sandbox: httpx.AsyncClient, key: str) -> dict[str, Any]:
    response = await sandbox.get(f"/tax/v1/companies/US01/transactions/{document_code(key)}")
    response.raise_for_status()
    return dict(response.json())


async def credit_in_two(
    client: Client, sandbox: httpx.AsyncClient, cid: str, first: str, rest: str
) -> ContractStatus:
    """Credit ``first``, then ``rest``, of the contract's only invoice (notes
    ``CN-<contract>-first`` and ``CN-<contract>-rest``: the ERP's credit note ids are its own
    keys, across contracts)."""
    status = await wait_for(client, cid, lambda s: True)
    [invoice] = status.invoices
    await credit(client, cid, invoice.invoice_id, f"CN-{cid}-first", first)
    await wait_for(client, cid, lambda s: len(s.credit_notes) == 1, what="the first note")
    await credit(client, cid, invoice.invoice_id, f"CN-{cid}-rest", rest)
    return await wait_for(client, cid, lambda s: len(s.credit_notes) == 2, what="the last note")


async def test_ten_cents_then_the_rest_takes_exactly_the_tax_left(
    temporal_client: Client, settings: Settings, sandbox: httpx.AsyncClient
) -> None:
    cid, status = await bill_october(
        temporal_client,
        settings,
        sandbox,
        {"Senior Consultant": "1645.55", "Analyst": "1645.56"},
    )
    [invoice] = status.invoices
    # California 7.25 %, line by line: 119.302375 → 119.30 and 119.3031 → 119.30.
    assert (invoice.subtotal, invoice.tax) == (Decimal("3291.11"), Decimal("238.60"))

    status = await credit_in_two(temporal_client, sandbox, cid, "0.10", "3291.01")

    # 0.10 x 7.25 % = 0.00725 → 0.01. The rest, 3291.01, the engine quotes 238.598225 →
    # 238.60: a cent more than the 238.59 left. The last note takes 238.59.
    first, rest = status.credit_notes
    assert (first.subtotal, first.tax, first.total) == (
        Decimal("0.10"),
        Decimal("0.01"),
        Decimal("0.11"),
    )
    assert (rest.subtotal, rest.tax, rest.total) == (
        Decimal("3291.01"),
        Decimal("238.59"),
        Decimal("3529.60"),
    )
    assert first.total + rest.total == invoice.total == Decimal("3529.71")
    assert status.open_exceptions == [] and status.stage != "on_hold"
    assert status.invoices[0].status == "credited" and status.balance_due == 0
    [erp_invoice] = await items(sandbox, "/erp/v1/invoices", contract_id=cid)
    assert (erp_invoice["status"], erp_invoice["balance"]) == ("credited", "0.00")

    # Each note is a committed return document, taxed at the invoice's tax date and naming
    # the invoice's document; the last one keeps the engine's own figure beside c2c's.
    workflow_id = contract_workflow_id(cid)
    sale = await tax_document(sandbox, f"{workflow_id}:invoice:2026-10")
    assert (sale["type"], sale["status"], sale["totalTax"]) == (
        "SalesInvoice",
        "Committed",
        "238.60",
    )
    notes = [
        await tax_document(sandbox, f"{workflow_id}:credit-note:CN-{cid}-{note}")
        for note in ("first", "rest")
    ]
    for note in notes:
        assert (note["type"], note["status"]) == ("ReturnInvoice", "Committed")
        assert note["taxDate"] == invoice.invoice_date.isoformat() == sale["date"]
        assert note["referenceCode"] == sale["code"]
    assert [n["totalTax"] for n in notes] == ["-0.01", "-238.59"]
    assert notes[1]["lines"][0]["taxCalculated"] == "-238.60"

    closed = await wait_stage(temporal_client, cid, "closed")
    assert closed.balance_due == 0
    await replay(temporal_client, cid)


async def test_six_cents_then_the_rest_leaves_no_cent_due(
    temporal_client: Client, settings: Settings, sandbox: httpx.AsyncClient
) -> None:
    cid, status = await bill_october(
        temporal_client, settings, sandbox, {"Senior Consultant": "3291.11"}
    )
    [invoice] = status.invoices
    # One line: 3291.11 x 7.25 % = 238.605475 → 238.61.
    assert (invoice.subtotal, invoice.tax) == (Decimal("3291.11"), Decimal("238.61"))

    status = await credit_in_two(temporal_client, sandbox, cid, "0.06", "3291.05")

    # 0.06 x 7.25 % = 0.00435 → 0.00. The rest, 3291.05, the engine quotes 238.601125 →
    # 238.60, a cent short of the 238.61 left: the last note takes 238.61.
    first, rest = status.credit_notes
    assert (first.tax, rest.tax) == (Decimal("0.00"), Decimal("238.61"))
    assert first.total + rest.total == invoice.total == Decimal("3529.72")
    assert status.invoices[0].status == "credited" and status.balance_due == 0
    closed = await wait_stage(temporal_client, cid, "closed")
    assert not any("reminder" in h.event for h in closed.history)


async def test_a_us_entity_reverse_charges_a_german_business(
    temporal_client: Client, settings: Settings, sandbox: httpx.AsyncClient
) -> None:
    cid, status = await start_active(temporal_client, settings, customer=INITECH)
    await add_time(sandbox, status.refs["psa_project_id"], "Analyst", "2026-10-20", "10")
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-10"))
    [invoice] = (await wait_invoices(temporal_client, cid, 1)).invoices

    # US01 (United States) bills Initech GmbH, VAT number DE123456789 in the CRM: no German
    # VAT of 19 % (228.00), and the invoice says why.
    assert (invoice.subtotal, invoice.tax, invoice.total) == (
        Decimal("1200.00"),
        Decimal("0.00"),
        Decimal("1200.00"),
    )
    erp_invoice = (await sandbox.get(f"/erp/v1/invoices/{invoice.invoice_id}")).json()
    assert erp_invoice["notes"] == [REVERSE_CHARGE]
    sale = await tax_document(sandbox, f"{contract_workflow_id(cid)}:invoice:2026-10")
    assert sale["businessIdentificationNo"] == "DE123456789"
    assert sale["addresses"]["shipFrom"]["country"] == "US"
    assert [line["taxCode"] for line in sale["lines"]] == ["SV-PROFESSIONAL"]

    # Billed from the German entity, the same sale is domestic: 19 % and no mention.
    cid, status = await start_active(
        temporal_client, settings, customer=INITECH, legal_entity="DE01", currency="EUR"
    )
    await add_time(sandbox, status.refs["psa_project_id"], "Analyst", "2026-10-20", "10")
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-10"))
    [domestic] = (await wait_invoices(temporal_client, cid, 1)).invoices
    assert domestic.tax == Decimal("228.00")
    erp_domestic = (await sandbox.get(f"/erp/v1/invoices/{domestic.invoice_id}")).json()
    assert erp_domestic["notes"] == []
