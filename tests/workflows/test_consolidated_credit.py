"""Credit notes on a contract's section of a consolidated invoice, on the real dev server,
against the sandbox.

The customer received one invoice, so the ERP credits that invoice, each credit note's line
naming the section it credits and bounded by the section's own figures; the contract holds
the note against its section, and the customer's billing workflow counts it off the section,
so later payments go to what each contract still owes. A section is credited up to what is
still owed on it: a paid part would otherwise lower the other sections' balance in the ERP.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from c2c.settings import Settings
from domain.models import ContractStatus, CreditInvoice
from ledger import Ledger
from starter.api.contracts import credit_invoice, customer_billing_status, record_customer_payment
from tests.subscriber import until
from tests.workflows.billing_helpers import (
    consolidated_invoiced,
    reconcile_differences,
    replay,
    two_consolidating_contracts,
)
from tests.workflows.helpers import items, wait_for
from tests.workflows.test_consolidated_invoicing import _payment, _replay_customer


async def _credit(client: Client, cid: str, section_id: str, amount: str) -> str:
    note_id = f"CN-{uuid.uuid4().hex[:8]}"
    request = CreditInvoice(
        invoice_id=section_id, amount=Decimal(amount), reason="agreed", credit_note_id=note_id
    )
    await credit_invoice(client, cid, request)
    return note_id


async def _notes(client: Client, cid: str, count: int) -> ContractStatus:
    return await wait_for(
        client, cid, lambda s: len(s.credit_notes) >= count, what=f"{count} credit note(s)"
    )


@pytest.mark.usefixtures("worker")
async def test_sections_are_credited_on_the_consolidated_invoice(
    temporal_client: Client, settings: Settings, sandbox: httpx.AsyncClient, ledger: Ledger
) -> None:
    client = temporal_client
    cids, billing_id = await two_consolidating_contracts(client, settings, sandbox, ("10", "5"))
    by_id = {cid: (await consolidated_invoiced(client, cid)).invoices[0] for cid in cids}
    first, second = sorted(cids)  # sections appear in the order of their contract ids
    a, b = by_id[first], by_id[second]
    consolidated = a.consolidated_invoice_id
    assert consolidated is not None

    # Part of the first section: the ERP credits the consolidated invoice, naming the section.
    await _credit(client, first, a.invoice_id, "200.00")
    [note] = (await _notes(client, first, 1)).credit_notes
    assert note.invoice_id == a.invoice_id and note.subtotal == Decimal("200.00")
    [erp_note] = await items(sandbox, "/erp/v1/credit-notes", invoice_id=consolidated)
    assert erp_note["credit_note_id"] == note.credit_note_id
    assert [line["section_id"] for line in erp_note["lines"]] == [a.invoice_id]

    # The whole second section, to the last cent: its tax is exactly what is left of it.
    await _credit(client, second, b.invoice_id, str(b.subtotal))
    status = await _notes(client, second, 1)
    [whole] = status.credit_notes
    assert whole.total == b.total and status.invoices[0].status == "credited"
    assert status.balance_due == 0
    [erp] = await items(sandbox, "/erp/v1/invoices", contract_id=billing_id)
    assert Decimal(erp["balance"]) == a.total - note.total

    # The customer's billing counts both credits off their sections, once each.
    billing = await customer_billing_status(client, billing_id)
    shares = {s.section_id: s for s in billing.invoices[0].sections}
    assert shares[a.invoice_id].credited == note.total
    assert shares[b.invoice_id].credited == b.total and shares[b.invoice_id].balance == 0

    # A payment goes to what is still owed: all of it to the first section.
    await record_customer_payment(
        client, billing_id, _payment(f"PAY-{uuid.uuid4().hex[:6]}", consolidated, Decimal(100))
    )
    await wait_for(
        client, first, lambda s: s.invoices[0].amount_paid == Decimal(100), what="100 paid"
    )

    # Crediting what is left of a partly paid section is refused (its tax and the paid part
    # exceed what is owed), and nothing is made.
    await _credit(client, first, a.invoice_id, str(a.subtotal - Decimal(200)))
    refused = await wait_for(
        client,
        first,
        lambda s: "refused: a section is credited up to what is still owed" in s.history[-1].event,
        what="the credit refused",
    )
    assert len(refused.credit_notes) == 1
    assert len(await items(sandbox, "/erp/v1/credit-notes", invoice_id=consolidated)) == 2

    # The rest paid: the ERP invoice and both contracts settled.
    rest = a.total - note.total - Decimal(100)
    await record_customer_payment(
        client, billing_id, _payment(f"PAY-{uuid.uuid4().hex[:6]}", consolidated, rest)
    )
    settled = await wait_for(
        client, first, lambda s: s.invoices[0].status == "paid", what="the section paid"
    )
    assert settled.balance_due == 0
    [erp] = await items(sandbox, "/erp/v1/invoices", contract_id=billing_id)
    assert erp["status"] == "paid" and Decimal(erp["balance"]) == 0

    # One consolidated_invoice.paid: the credit notes counted off, the payments' sum paid.
    async def paid_events() -> list[dict[str, Any]]:
        return [
            e.event.payload
            for e in ledger.list_outbound_events(event_type="consolidated_invoice.paid")
            if e.event.payload["invoice_id"] == consolidated
        ]

    [paid] = await until(paid_events, "consolidated_invoice.paid")
    assert Decimal(paid["amount_paid"]) == Decimal(100) + rest
    assert Decimal(paid["credited"]) == note.total + b.total
    for cid in cids:
        await replay(client, cid)
    await _replay_customer(client, billing_id)

    # Reconciliation finds the notes where they are: on the customer's invoice in the ERP.
    assert await reconcile_differences(settings, ledger, cids) == []


@pytest.mark.usefixtures("worker")
async def test_the_erp_bounds_a_credit_note_by_its_section(
    temporal_client: Client, settings: Settings, sandbox: httpx.AsyncClient
) -> None:
    cids, _ = await two_consolidating_contracts(temporal_client, settings, sandbox, ("2", "1"))
    section = (await consolidated_invoiced(temporal_client, cids[1])).invoices[0]
    consolidated = section.consolidated_invoice_id

    async def post(line: dict[str, str]) -> httpx.Response:
        amount = Decimal(line["amount"])
        return await sandbox.post(
            f"/erp/v1/invoices/{consolidated}/credit-notes",
            json={
                "credit_note_id": f"CN-{uuid.uuid4().hex[:8]}",
                "reason": "by hand",
                "lines": [{"line_id": "1", "description": "x", "tax_amount": "0.00", **line}],
                "subtotal": str(amount),
                "tax": "0.00",
                "total": str(amount),
            },
        )

    more = str(section.subtotal + Decimal("0.01"))
    answer = await post({"amount": more, "section_id": section.invoice_id})
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert (error["code"], error["field"]) == ("exceeds_section", "subtotal")
    answer = await post({"amount": "1.00", "section_id": "SEC-NOBODY"})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["field"] == "lines.0.section_id"
    answer = await post({"amount": "1.00"})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "unknown_section"
