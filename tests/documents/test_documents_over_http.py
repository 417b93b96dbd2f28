"""Invoice documents on a real Temporal server, the sandbox and the API over HTTP: each issued
invoice and credit note gets its PDF (and, from an EU legal entity, its UBL e-invoice), kept
by SHA-256 in the archive, recorded in the ledger, linked from the ERP invoice and served once
its hash verifies; an altered or missing archive object is refused with 502, never served. A
customer's consolidated invoice gets them too, with a section per contract."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Replayer
from typer.testing import CliRunner

from activities.registry import build_steps
from c2c.settings import LegalEntityDetails, Settings
from connectors.registry import build_connectors
from domain.models import ClosePeriod, CreditInvoice
from domain.steps import RENDER_CONSOLIDATED_INVOICE_DOCUMENTS, ConsolidatedDocumentsInput
from ledger import Ledger
from ledger.archive import LocalArchive, archive_from_settings
from starter.api import invoice_documents
from starter.api.contracts import close_period_for, contract_handle, customer_billing_status
from starter.cli.main import app as cli
from tests.documents.pdf import page_text
from tests.documents.schematron import fatal
from tests.documents.ubl import NS, text, validate
from tests.support import serve
from tests.workflows.billing_helpers import consolidating_contracts, start_active, wait_invoices
from tests.workflows.helpers import add_time, items, wait_for
from worker import contract_worker
from workflows.customer_billing import CustomerBilling

pytestmark = pytest.mark.usefixtures("sandbox")

REVERSE_CHARGE = (
    "Reverse charge: VAT to be accounted for by the recipient "
    "(Art. 196 Council Directive 2006/112/EC)"
)
INITECH = {"crm_account_id": "INITECH-DE", "name": "Initech GmbH", "country": "DE"}
DE01 = LegalEntityDetails(
    address_lines=["Friedrichstrasse 1"],
    postcode="10117",
    city="Berlin",
    tax_id="DE811907980",
    payment_instructions="Bank transfer, quoting the invoice number",
    iban="DE89370400440532013000",
    bic="COBADEFFXXX",
)


@pytest_asyncio.fixture(scope="module")
async def own(temporal_client: Client, settings: Settings) -> AsyncIterator[Settings]:
    """A worker whose legal entities print their address, VAT number and bank account."""
    configured = settings.model_copy(
        update={
            "task_queue": f"c2c-docs-{uuid.uuid4().hex[:8]}",
            "legal_entity_details": {"DE01": DE01},
        }
    )
    async with contract_worker(temporal_client, configured):
        yield configured


@pytest.fixture(scope="module")
def api_url(own: Settings) -> Iterator[str]:
    with serve(own) as url:
        yield url


async def french_customer(sandbox: httpx.AsyncClient) -> dict[str, Any]:
    """A customer in France, with a French VAT number on the contract."""
    account = f"CHAMPS-FR-{uuid.uuid4().hex[:6].upper()}"
    created = await sandbox.post(
        "/crm/v1/accounts",
        json={"crm_account_id": account, "name": "Champs Conseil SAS", "country": "FR"},
    )
    assert created.status_code in (200, 201), created.text
    return {
        "crm_account_id": account,
        "name": "Champs Conseil SAS",
        "country": "FR",
        "tax_id": "FR40303265045",
    }


async def document(api_url: str, invoice_id: str, kind: str = "document") -> httpx.Response:
    """The document once the worker has archived it (404 until then)."""
    async with httpx.AsyncClient(timeout=30) as client:
        for _ in range(300):
            answer = await client.get(f"{api_url}/api/invoices/{invoice_id}/{kind}")
            if answer.status_code != 404:
                return answer
            await asyncio.sleep(0.2)
    return answer


async def test_an_eu_invoice_and_its_credit_note_get_verified_pdfs_and_valid_ubl(
    temporal_client: Client,
    own: Settings,
    api_url: str,
    sandbox: httpx.AsyncClient,
    ledger: Ledger,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    customer = await french_customer(sandbox)
    cid, status = await start_active(
        temporal_client, own, customer=customer, legal_entity="DE01", currency="EUR"
    )
    await add_time(sandbox, status.refs["psa_project_id"], "Analyst", "2026-10-20", "10")
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-10"))
    [invoice] = (await wait_invoices(temporal_client, cid, 1)).invoices
    assert invoice.tax == 0  # DE01 to a French business with a VAT number: reverse charge

    # The PDF: served once its bytes hash to what the ledger recorded, the ETag that hash.
    pdf = await document(api_url, invoice.invoice_id)
    assert pdf.status_code == 200, pdf.text
    assert pdf.headers["content-type"] == "application/pdf"
    sha256 = hashlib.sha256(pdf.content).hexdigest()
    assert pdf.headers["etag"] == f'"{sha256}"'
    record = ledger.get_invoice_document(invoice.invoice_id, "pdf")
    assert record is not None
    assert (record.sha256, record.size, record.contract_id) == (sha256, len(pdf.content), cid)

    # The contract's status shows the documents' hashes on the invoice.
    status = await wait_for(temporal_client, cid, lambda s: bool(s.invoices[0].documents))
    assert status.invoices[0].documents["pdf"] == sha256

    # The e-invoice: a Peppol BIS Billing 3.0 UBL Invoice, valid against the UBL 2.1 schema,
    # its reverse charge category AE with the legal mention as exemption reason.
    einvoice = await document(api_url, invoice.invoice_id, "einvoice")
    assert einvoice.status_code == 200, einvoice.text
    root = validate(einvoice.content)
    assert root.tag.endswith("}Invoice")
    assert text(root, "cbc:ID") == [invoice.number]
    seller = "cac:AccountingSupplierParty/cac:Party/"
    buyer = "cac:AccountingCustomerParty/cac:Party/"
    assert text(root, seller + "cbc:EndpointID") == ["DE811907980"]
    assert text(root, seller + "cac:PartyTaxScheme/cbc:CompanyID") == ["DE811907980"]
    assert text(root, buyer + "cbc:EndpointID") == ["FR40303265045"]
    category = "cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/"
    assert text(root, category + "cbc:ID") == ["AE"]
    assert text(root, category + "cbc:TaxExemptionReason") == [REVERSE_CHARGE]
    assert text(root, "cac:LegalMonetaryTotal/cbc:PayableAmount") == [format(invoice.total, "f")]
    assert text(root, "cac:PaymentMeans/cac:PayeeFinancialAccount/cbc:ID") == [DE01.iban]
    assert fatal(einvoice.content) == []

    # The ERP invoice links both.
    erp = (await sandbox.get(f"/erp/v1/invoices/{invoice.invoice_id}")).json()
    assert erp["document_url"] == f"{own.api_url}/api/invoices/{invoice.invoice_id}/document"
    assert erp["document_sha256"] == sha256
    assert erp["einvoice_sha256"] == hashlib.sha256(einvoice.content).hexdigest()

    # The CLI downloads the same bytes.
    monkeypatch.setattr(invoice_documents, "get_settings", lambda: own)
    target = tmp_path / "invoice.pdf"
    run = CliRunner().invoke(
        cli, ["contracts", "invoice-pdf", invoice.invoice_id, "-o", str(target)]
    )
    assert run.exit_code == 0, run.output
    assert target.read_bytes() == pdf.content
    xml = tmp_path / "invoice.xml"
    run = CliRunner().invoke(
        cli, ["contracts", "invoice-einvoice", invoice.invoice_id, "-o", str(xml)]
    )
    assert run.exit_code == 0, run.output
    assert xml.read_bytes() == einvoice.content

    # The dashboard links the invoice row to both, served by the same check.
    async with httpx.AsyncClient(timeout=30) as client:
        page = await client.get(f"{api_url}/contracts/{cid}")
        linked = await client.get(f"{api_url}/invoices/{invoice.invoice_id}/document")
    assert page.status_code == 200, page.text
    assert f'href="/invoices/{invoice.invoice_id}/document"' in page.text
    assert f'href="/invoices/{invoice.invoice_id}/einvoice"' in page.text
    assert linked.status_code == 200 and linked.content == pdf.content

    # A credit note: its own PDF, and a UBL CreditNote naming the invoice.
    note_id = f"CN-{cid}-1"
    await contract_handle(temporal_client, cid).signal(
        "credit_invoice",
        CreditInvoice(
            invoice_id=invoice.invoice_id,
            amount=Decimal("100.00"),
            reason="hours billed in error",
            credit_note_id=note_id,
        ),
    )
    status = await wait_for(temporal_client, cid, lambda s: len(s.credit_notes) == 1)
    [note] = status.credit_notes
    note_pdf = await document(api_url, note.credit_note_id)
    assert note_pdf.status_code == 200, note_pdf.text
    status = await wait_for(temporal_client, cid, lambda s: bool(s.credit_notes[0].documents))
    assert status.credit_notes[0].documents["pdf"] == hashlib.sha256(note_pdf.content).hexdigest()
    # The ERP's credit note links its documents too.
    erp_note = (await sandbox.get(f"/erp/v1/credit-notes/{note.credit_note_id}")).json()
    assert erp_note["document_url"] == f"{own.api_url}/api/invoices/{note.credit_note_id}/document"
    assert erp_note["document_sha256"] == status.credit_notes[0].documents["pdf"]
    assert erp_note["einvoice_sha256"] == status.credit_notes[0].documents["einvoice"]
    assert note_pdf.content.startswith(b"%PDF-")
    credit = await document(api_url, note.credit_note_id, "einvoice")
    assert credit.status_code == 200, credit.text
    root = validate(credit.content)
    assert root.tag.endswith("}CreditNote")
    assert text(root, "cbc:CreditNoteTypeCode") == ["381"]
    assert text(root, "cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID") == [
        invoice.number
    ]
    assert text(root, "cac:LegalMonetaryTotal/cbc:PayableAmount") == ["100.00"]
    assert len(root.findall("cac:CreditNoteLine", NS)) == 1
    assert fatal(credit.content) == []

    # An altered archive object is refused, never served; so is a missing one.
    store = archive_from_settings(own)
    assert isinstance(store, LocalArchive)
    path = store.path_of(sha256)
    path.chmod(0o644)
    path.write_bytes(pdf.content + b"% changed")
    async with httpx.AsyncClient(timeout=30) as client:
        altered = await client.get(f"{api_url}/api/invoices/{invoice.invoice_id}/document")
        path.unlink()
        gone = await client.get(f"{api_url}/api/invoices/{invoice.invoice_id}/document")
        unknown = await client.get(f"{api_url}/api/invoices/INV-none/document")
    assert altered.status_code == 502
    assert altered.json()["error"]["code"] == "archive_document_altered"
    assert b"%PDF" not in altered.content
    assert gone.status_code == 502
    assert gone.json()["error"]["code"] == "archive_document_missing"
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "no_invoice_document"
    run = CliRunner().invoke(
        cli, ["contracts", "invoice-pdf", invoice.invoice_id, "-o", str(target)]
    )
    assert run.exit_code == 1
    assert "archive_document_missing" in run.output


async def test_a_us_invoice_gets_a_pdf_with_the_reverse_charge_mention_and_no_einvoice(
    temporal_client: Client, own: Settings, api_url: str, sandbox: httpx.AsyncClient
) -> None:
    cid, status = await start_active(temporal_client, own, customer=INITECH)
    await add_time(sandbox, status.refs["psa_project_id"], "Analyst", "2026-10-20", "10")
    await close_period_for(temporal_client, cid, ClosePeriod(period="2026-10"))
    [invoice] = (await wait_invoices(temporal_client, cid, 1)).invoices
    pdf = await document(api_url, invoice.invoice_id)
    assert pdf.status_code == 200, pdf.text
    pages = page_text(pdf.content)
    assert b"Reverse charge: VAT to be accounted for by the recipient" in pages
    assert b"Initech GmbH" in pages
    async with httpx.AsyncClient(timeout=30) as client:
        none = await client.get(f"{api_url}/api/invoices/{invoice.invoice_id}/einvoice")
    assert none.status_code == 404
    await wait_for(
        temporal_client,
        cid,
        lambda s: any("documents of invoice" in h.event for h in s.history),
        what="the documents in the history",
    )


async def test_a_consolidated_invoice_gets_one_pdf_and_ubl_with_a_section_per_contract(
    temporal_client: Client,
    own: Settings,
    api_url: str,
    sandbox: httpx.AsyncClient,
    ledger: Ledger,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Two contracts of one French customer under one PO, from DE01: one consolidated invoice.
    customer = await french_customer(sandbox)
    cids, billing_id = await consolidating_contracts(
        temporal_client,
        own,
        sandbox,
        ("10", "5"),
        legal_entity="DE01",
        currency="EUR",
        crm_account_id=customer["crm_account_id"],
        customer=customer,
    )
    # Each contract's section shows the consolidated invoice's documents as its own.
    sections = [
        (
            await wait_for(
                temporal_client,
                cid,
                lambda s: len(s.invoices) == 1 and bool(s.invoices[0].documents),
                what="its section with the consolidated invoice's documents",
            )
        ).invoices[0]
        for cid in cids
    ]
    a, b = sections
    invoice_id = a.consolidated_invoice_id
    assert invoice_id is not None and b.consolidated_invoice_id == invoice_id
    assert a.documents == b.documents and set(a.documents) == {"pdf", "einvoice"}
    total = a.total + b.total

    # The PDF: served under the consolidated invoice's id, content-addressed, recorded once
    # for the customer's billing; a titled section per contract, the totals, the PO, the
    # reverse charge mention, the due date.
    pdf = await document(api_url, invoice_id)
    assert pdf.status_code == 200, pdf.text
    sha256 = hashlib.sha256(pdf.content).hexdigest()
    assert pdf.headers["etag"] == f'"{sha256}"' and a.documents["pdf"] == sha256
    record = ledger.get_invoice_document(invoice_id, "pdf")
    assert record is not None and (record.sha256, record.contract_id) == (sha256, billing_id)
    pages = page_text(pdf.content)
    for cid, section in zip(cids, sections, strict=True):
        assert f"Contract {cid}".encode() in pages
        assert f"{section.total:,.2f} EUR".encode() in pages
    assert pages.count(b"Section total") == 2
    assert f"{total:,.2f} EUR".encode() in pages
    po = (await customer_billing_status(temporal_client, billing_id)).key.po_number
    assert f"Purchase order: {po}".encode() in pages
    assert b"Reverse charge: VAT to be accounted for by the recipient" in pages
    assert f"Due date: {a.due_on.isoformat()}".encode() in pages

    # The e-invoice: valid UBL under EN 16931's rules, line ids unique across the sections,
    # each line's note naming its section and contract, the reverse charge as category AE.
    einvoice = await document(api_url, invoice_id, "einvoice")
    assert einvoice.status_code == 200, einvoice.text
    root = validate(einvoice.content)
    assert fatal(einvoice.content) == []
    ids = text(root, "cac:InvoiceLine/cbc:ID")
    assert len(ids) >= 2 and len(set(ids)) == len(ids)
    notes = text(root, "cac:InvoiceLine/cbc:Note")
    assert len(notes) == len(ids)
    for cid, section in zip(cids, sections, strict=True):
        assert any(n.startswith(f"Section {section.invoice_id}: Contract {cid}") for n in notes)
    assert text(root, "cac:OrderReference/cbc:ID") == [po]
    assert text(root, "cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/cbc:ID") == ["AE"]
    assert text(root, "cac:LegalMonetaryTotal/cbc:PayableAmount") == [format(total, "f")]

    # The ERP invoice links both.
    erp = (await sandbox.get(f"/erp/v1/invoices/{invoice_id}")).json()
    assert erp["document_url"] == f"{own.api_url}/api/invoices/{invoice_id}/document"
    assert erp["document_sha256"] == sha256
    assert erp["einvoice_sha256"] == hashlib.sha256(einvoice.content).hexdigest()
    # It carries the reverse charge mention, as an ordinary invoice does.
    assert erp["notes"] == [REVERSE_CHARGE]

    # The customer's billing status lists them; the dashboard links each section to them.
    async with httpx.AsyncClient(timeout=30) as client:
        billing = (await client.get(f"{api_url}/api/customer-billing/{billing_id}")).json()
        page = await client.get(f"{api_url}/contracts/{cids[0]}")
        customer_page = await client.get(f"{api_url}/customer-billing/{billing_id}")
        linked = await client.get(f"{api_url}/invoices/{invoice_id}/einvoice")
    [listed] = billing["invoices"]
    assert {d["kind"]: d["sha256"] for d in listed["documents"]} == a.documents
    assert {d["url"] for d in listed["documents"]} == {
        f"{own.api_url}/api/invoices/{invoice_id}/document",
        f"{own.api_url}/api/invoices/{invoice_id}/einvoice",
    }
    assert f'href="/invoices/{invoice_id}/document"' in page.text
    assert customer_page.status_code == 200, customer_page.text
    assert f'href="/invoices/{invoice_id}/document"' in customer_page.text
    assert f'href="/invoices/{invoice_id}/einvoice"' in customer_page.text
    assert linked.status_code == 200 and linked.content == einvoice.content
    # The CLI downloads them by the same id.
    monkeypatch.setattr(invoice_documents, "get_settings", lambda: own)
    target = tmp_path / "consolidated.pdf"
    run = CliRunner().invoke(cli, ["contracts", "invoice-pdf", invoice_id, "-o", str(target)])
    assert run.exit_code == 0, run.output
    assert target.read_bytes() == pdf.content

    # Its history, with the step, replays; the step again (a retry, a reset) with the input
    # the workflow gave it: the same documents, recorded once, linked as before.
    history = await temporal_client.get_workflow_handle(billing_id).fetch_history()
    await Replayer(
        workflows=[CustomerBilling], data_converter=pydantic_data_converter
    ).replay_workflow(history)
    [scheduled] = [
        e.activity_task_scheduled_event_attributes
        for e in history.events
        if e.activity_task_scheduled_event_attributes.activity_type.name
        == RENDER_CONSOLIDATED_INVOICE_DOCUMENTS
    ]
    [step] = await pydantic_data_converter.decode(
        scheduled.input.payloads, [ConsolidatedDocumentsInput]
    )
    connectors = build_connectors(own)
    try:
        render = build_steps(connectors, ledger, own)[RENDER_CONSOLIDATED_INVOICE_DOCUMENTS]
        again = await ActivityEnvironment().run(render, step)
    finally:
        await connectors.aclose()
    assert {d.kind: d.sha256 for d in again.documents} == a.documents
    assert ledger.get_invoice_document(invoice_id, "pdf") == record
    assert [r.invoice_id for r in ledger.invoice_documents(billing_id)] == [invoice_id] * 2
    assert (await sandbox.get(f"/erp/v1/invoices/{invoice_id}")).json() == erp
    [consolidated] = await items(sandbox, "/erp/v1/invoices", contract_id=billing_id)
    assert consolidated["invoice_id"] == invoice_id

    # Served with the same auth: a token of DE01 reads them, one of another entity learns
    # nothing of them.
    scoped = own.model_copy(
        update={"api_tokens": SecretStr("de-viewer-1:viewer:DE01@d,us-viewer-1:viewer:US01@u")}
    )
    with serve(scoped) as scoped_url:
        async with httpx.AsyncClient(timeout=30) as client:
            path = f"{scoped_url}/api/invoices/{invoice_id}/document"
            seen = await client.get(path, headers={"Authorization": "Bearer de-viewer-1"})
            hidden = await client.get(path, headers={"Authorization": "Bearer us-viewer-1"})
    assert seen.status_code == 200 and seen.content == pdf.content
    assert hidden.status_code == 404
    assert hidden.json()["error"]["code"] == "no_invoice_document"
