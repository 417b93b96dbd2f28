"""Write-offs above a cap and invoice documents, in each ERP family over real HTTP: the
reference ERP, NetSuite (a journal entry; custom body fields linking the documents) and
Business Central (a general journal line; ``documentAttachments`` with their content). Every
write is made once however often it is sent, and refused input names its field."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest
import pytest_asyncio

from c2c.bc_mapping import SANDBOX_TENANT
from connectors.business_central import BusinessCentralErp, code
from connectors.erp import HttpErp
from connectors.netsuite import NetSuiteErp
from connectors.ports import DocumentAttachments, ErpPort
from domain.errors import BusinessError
from domain.tax import apply_tax
from domain.write_models import (
    CreditNoteDraft,
    CreditNoteLineDraft,
    DocumentFile,
    TaxLineResult,
    TaxResult,
    WriteOffDraft,
)
from tests.bc_support import business_central
from tests.connectors.support import erp_contract, two_roles_invoice, unique
from tests.netsuite_support import netsuite, segments

ERPS = ("reference", "netsuite", "business-central")
PDF = b"%PDF-1.7 c2c test invoice\n%%EOF\n"
UBL = b"<?xml version='1.0'?><Invoice/>"


@pytest_asyncio.fixture(params=ERPS)
async def any_erp(request: pytest.FixtureRequest, sandbox_url: str) -> AsyncIterator[ErpPort]:
    port: ErpPort
    if request.param == "netsuite":
        port = netsuite(sandbox_url)
    elif request.param == "business-central":
        port = business_central(sandbox_url)
    else:
        port = HttpErp(f"{sandbox_url}/erp/v1", timeout_s=5)
    yield port
    await port.aclose()


def write_off(contract_id: str, **changes: Any) -> WriteOffDraft:
    values: dict[str, Any] = {
        "write_off_id": f"{contract_id}:write-off-1",
        "contract_id": contract_id,
        "legal_entity": "US01",
        "period": "2026-10",
        "amount": Decimal("500.00"),
        "currency": "USD",
        "reason": "work above the not-to-exceed cap of 2026-10",
        "operator": "ops@example.com",
        "written_off_on": date(2026, 11, 4),
    }
    return WriteOffDraft(**(values | changes))


async def held_write_offs(erp: ErpPort, sandbox_url: str, contract_id: str) -> list[Decimal]:
    """The amounts of the contract's write-offs as the ERP's own records hold them."""
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=10) as client:
        if isinstance(erp, HttpErp):
            answer = await client.get("/erp/v1/write-offs", params={"contract_id": contract_id})
            return [Decimal(w["amount"]) for w in answer.json()["items"]]
    if isinstance(erp, NetSuiteErp):
        records = await erp._list("journalEntry", f'custbody_c2c_contract_id IS "{contract_id}"')
        return [
            Decimal(str(line["debit"]))
            for record in records
            for line in record["line"]["items"]
            if line.get("debit")
        ]
    assert isinstance(erp, BusinessCentralErp)
    journal = await erp._lookup("US01", "journals", "code", "C2CWO")
    assert journal is not None
    lines = await erp.call("GET", "US01", f"/journals({journal['id']})/journalLines")
    posted = await erp.call("GET", "US01", "/generalLedgerEntries")
    return [
        Decimal(str(x["amount"]))
        for x in lines["value"]
        if str(x["description"]).endswith(contract_id)
    ] + [
        Decimal(str(x["debitAmount"]))
        for x in posted["value"]
        if x["debitAmount"] and str(x["description"]).endswith(contract_id)
    ]


# ------------------------------------------------------------------ write-offs


async def test_a_write_off_is_held_once_however_often_it_is_sent(
    any_erp: ErpPort, sandbox_url: str
) -> None:
    contract = await erp_contract(any_erp)  # type: ignore[arg-type]
    draft = write_off(
        contract.contract_id,
        erp_contract_id=contract.erp_contract_id,
        erp_project_id=contract.project_id,
    )
    first = await any_erp.record_write_off(draft, idempotency_key="contract-x:write-off-1")
    # A retry, and a reset's run (another key, the same write-off): the same record.
    again = await any_erp.record_write_off(draft, idempotency_key="contract-x:write-off-1")
    reset = await any_erp.record_write_off(draft, idempotency_key="another-run")
    assert first.erp_ref == again.erp_ref == reset.erp_ref
    assert (first.write_off_id, first.amount, first.currency, first.period) == (
        draft.write_off_id,
        Decimal("500.00"),
        "USD",
        "2026-10",
    )
    assert await held_write_offs(any_erp, sandbox_url, contract.contract_id) == [Decimal("500")]


async def test_business_central_finds_a_write_off_finance_posted_and_makes_no_other(
    sandbox_url: str,
) -> None:
    erp = business_central(sandbox_url)
    try:
        contract = await erp_contract(erp)  # type: ignore[arg-type]
        draft = write_off(contract.contract_id)
        recorded = await erp.record_write_off(draft, idempotency_key="k")
        assert recorded.erp_ref == f"US01:{code('WO', draft.write_off_id)}"
        journal = await erp._lookup("US01", "journals", "code", "C2CWO")
        assert journal is not None
        (line,) = [
            x
            for x in (await erp.call("GET", "US01", f"/journals({journal['id']})/journalLines"))[
                "value"
            ]
            if x["documentNumber"] == code("WO", draft.write_off_id)
        ]
        assert (line["accountNumber"], line["balanceAccountNumber"], line["amount"]) == (
            "69100",
            "13100",
            500,
        )
        # Finance posts the journal: the line leaves it for the general ledger.
        await erp._change(
            "US01", "journals", journal["id"], lambda r: {}, action="Microsoft.NAV.post"
        )
        again = await erp.record_write_off(draft, idempotency_key="k")
        assert again.erp_ref == recorded.erp_ref
        assert await held_write_offs(erp, sandbox_url, contract.contract_id) == [Decimal("500")]
    finally:
        await erp.aclose()


async def test_business_central_books_a_write_off_in_another_currency_at_the_company_rate(
    sandbox_url: str,
) -> None:
    erp = business_central(sandbox_url)
    try:
        # UK01 keeps its books in pounds; the sandbox's rate is 0.79 GBP to the dollar.
        draft = write_off(unique("CT"), legal_entity="UK01")
        recorded = await erp.record_write_off(draft, idempotency_key="k")
        assert (recorded.amount, recorded.currency) == (Decimal("500.00"), "USD")
        journal = await erp._lookup("UK01", "journals", "code", "C2CWO")
        assert journal is not None
        [line] = await erp._filter(
            "UK01",
            f"journals({journal['id']})/journalLines",
            f"documentNumber eq '{code('WO', draft.write_off_id)}'",
        )
        assert line["amount"] == 395
        assert "500.00 USD" in line["comment"]
    finally:
        await erp.aclose()


async def test_netsuite_journal_entry_balances_and_an_unmapped_account_names_the_setting(
    sandbox_url: str,
) -> None:
    erp = netsuite(sandbox_url)
    try:
        contract = await erp_contract(erp)  # type: ignore[arg-type]
        draft = write_off(contract.contract_id, erp_project_id=contract.project_id)
        recorded = await erp.record_write_off(draft, idempotency_key="k")
        record = await erp._read("journalEntry", recorded.erp_ref)
        assert record is not None
        assert record["externalId"] == f"c2c-writeoff-{draft.write_off_id}"
        assert [
            (x["account"]["id"], x.get("debit"), x.get("credit")) for x in record["line"]["items"]
        ] == [("612", 500, None), ("118", None, 500)]
        assert record["custbody_c2c_operator"] == "ops@example.com"

        erp.segments = segments(write_off=None)
        with pytest.raises(BusinessError) as refused:
            await erp.record_write_off(
                write_off(contract.contract_id, write_off_id=unique("WO")), idempotency_key="k2"
            )
        assert (refused.value.rejection.code, refused.value.rejection.field) == (
            "netsuite_mapping_missing",
            "write_off",
        )
    finally:
        await erp.aclose()


async def test_the_reference_erp_refuses_a_changed_write_off_and_bad_input_by_field(
    erp: HttpErp, sandbox: httpx.AsyncClient
) -> None:
    contract = await erp_contract(erp)
    draft = write_off(contract.contract_id)
    await erp.record_write_off(draft, idempotency_key="k")
    with pytest.raises(BusinessError) as conflict:
        await erp.record_write_off(
            draft.model_copy(update={"amount": Decimal("600.00")}), idempotency_key="k2"
        )
    assert conflict.value.rejection.code == "duplicate"
    body = draft.model_dump(mode="json") | {"write_off_id": unique("WO")}
    for field, value in (("amount", "-5.00"), ("currency", "EUR"), ("period", "2026-13")):
        answer = await sandbox.post("/erp/v1/write-offs", json=body | {field: value})
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["field"] == field
    listed = await sandbox.get("/erp/v1/write-offs", params={"contract_id": contract.contract_id})
    assert [w["write_off_id"] for w in listed.json()["items"]] == [draft.write_off_id]


# ------------------------------------------------------------------ documents


def documents(number: str, *, einvoice: bool = True) -> list[DocumentFile]:
    pdf = DocumentFile(
        kind="pdf",
        file_name=f"{number}.pdf",
        url=f"http://c2c.example/api/invoices/{number}/document",
        sha256="a" * 64,
        content_type="application/pdf",
        data=PDF,
    )
    ubl = DocumentFile(
        kind="einvoice",
        file_name=f"{number}.xml",
        url=f"http://c2c.example/api/invoices/{number}/einvoice",
        sha256="b" * 64,
        content_type="application/xml",
        data=UBL,
    )
    return [pdf, ubl] if einvoice else [pdf]


async def issued_with_credit(erp: ErpPort) -> tuple[str, str, str, str]:
    """An issued invoice and a credit note on it: (invoice id, number, note id, number)."""
    contract = await erp_contract(erp)  # type: ignore[arg-type]
    refs = {
        "contract_id": contract.contract_id,
        "customer_id": contract.customer_id,
        "project_id": contract.project_id,
        "erp_contract_id": contract.erp_contract_id,
    }
    made = await erp.create_invoice(
        two_roles_invoice(refs, ("174.00", "52.24")), idempotency_key=unique("i")
    )
    invoice = await erp.issue_invoice(made.invoice_id, idempotency_key=unique("ii"))
    note = apply_tax(
        CreditNoteDraft(
            credit_note_id=unique("CN"),
            reason="Hours billed twice",
            currency="USD",
            lines=(
                CreditNoteLineDraft(
                    line_id="1", description="Hours billed twice", amount=Decimal("100.00")
                ),
            ),
        ),
        TaxResult(
            lines=(TaxLineResult(number="1", amount=Decimal("100.00"), tax=Decimal("7.25")),)
        ),
    )
    credited = await erp.create_credit_note(invoice.invoice_id, note, idempotency_key=unique("c"))
    return invoice.invoice_id, invoice.number or "", credited.credit_note_id, credited.number


async def linked(erp: ErpPort, sandbox_url: str, kind: str, document_id: str) -> Any:
    """What the ERP holds of a document's links or attachments, in its own terms."""
    if isinstance(erp, HttpErp):
        root = "invoices" if kind == "invoice" else "credit-notes"
        async with httpx.AsyncClient(base_url=sandbox_url, timeout=10) as client:
            record = (await client.get(f"/erp/v1/{root}/{document_id}")).json()
        return (record["document_url"], record["document_sha256"], record["einvoice_sha256"])
    if isinstance(erp, NetSuiteErp):
        ref = document_id if kind == "invoice" else f"eid:c2c-credit-{document_id}"
        record = await erp._read("invoice" if kind == "invoice" else "creditMemo", ref)
        assert record is not None
        return (record.get("custbody_c2c_document_url"), record.get("custbody_c2c_einvoice_url"))
    assert isinstance(erp, BusinessCentralErp)
    entity, guid = (
        erp._split(document_id) if kind == "invoice" else await erp._credit_memo(document_id)
    )
    found = await erp._filter(entity, "documentAttachments", f"parentId eq '{guid}'")
    held = []
    for attachment in found:
        content = await erp._client.get(
            erp._path(entity, f"/documentAttachments({attachment['id']})/attachmentContent"),
            headers={"Authorization": "Bearer " + await erp.tokens.token(SANDBOX_TENANT)},
        )
        held.append((attachment["parentType"], attachment["fileName"], content.content))
    return sorted(held)


async def test_invoice_and_credit_note_documents_are_linked_once_in_each_erp(
    any_erp: ErpPort, sandbox_url: str
) -> None:
    assert isinstance(any_erp, DocumentAttachments)
    invoice_id, number, note_id, note_number = await issued_with_credit(any_erp)
    for _ in range(2):  # attaching again changes nothing
        await any_erp.attach_documents("invoice", invoice_id, documents(number))
        await any_erp.attach_documents("credit_note", note_id, documents(note_number))
    for kind, doc_id, doc_number in (
        ("invoice", invoice_id, number),
        ("credit_note", note_id, note_number),
    ):
        held = await linked(any_erp, sandbox_url, kind, doc_id)
        if isinstance(any_erp, BusinessCentralErp):
            parent = "Sales Invoice" if kind == "invoice" else "Sales Credit Memo"
            assert held == [
                (parent, f"{doc_number}.pdf", PDF),
                (parent, f"{doc_number}.xml", UBL),
            ]
        elif isinstance(any_erp, NetSuiteErp):
            url = f"http://c2c.example/api/invoices/{doc_number}"
            assert held == (f"{url}/document", f"{url}/einvoice")
        else:
            url = f"http://c2c.example/api/invoices/{doc_number}/document"
            assert held == (url, "a" * 64, "b" * 64)


async def test_netsuite_links_no_documents_without_the_fields_configured(
    sandbox_url: str,
) -> None:
    erp = netsuite(sandbox_url)
    try:
        invoice_id, number, _, _ = await issued_with_credit(erp)
        erp.document_fields = {"pdf": None, "einvoice": None}
        await erp.attach_documents("invoice", invoice_id, documents(number))
        assert await linked(erp, sandbox_url, "invoice", invoice_id) == (None, None)
    finally:
        await erp.aclose()


async def test_business_central_uploads_the_content_an_attachment_lost(sandbox_url: str) -> None:
    erp = business_central(sandbox_url)
    try:
        invoice_id, number, _, _ = await issued_with_credit(erp)
        entity, guid = erp._split(invoice_id)
        # The attachment was made, and its content's upload never arrived.
        await erp.call(
            "POST",
            entity,
            "/documentAttachments",
            json={"fileName": f"{number}.pdf", "parentType": "Sales Invoice", "parentId": guid},
        )
        await erp.attach_documents("invoice", invoice_id, documents(number, einvoice=False))
        assert await linked(erp, sandbox_url, "invoice", invoice_id) == [
            ("Sales Invoice", f"{number}.pdf", PDF)
        ]
    finally:
        await erp.aclose()


async def test_business_central_refuses_an_attachment_to_nothing(sandbox_url: str) -> None:
    erp = business_central(sandbox_url)
    try:
        with pytest.raises(BusinessError) as refused:
            await erp.call(
                "POST",
                "US01",
                "/documentAttachments",
                json={"fileName": "x.pdf", "parentType": "Customer", "parentId": "nope"},
            )
        assert "parentType" in refused.value.rejection.message
    finally:
        await erp.aclose()
