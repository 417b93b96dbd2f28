"""The tax connector against the sandbox's engine: documents by code (long keys shortened to
the engine's 50 characters), commit, a return at the sale's tax date, and the CRM's tax
number of an account."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

import httpx
import pytest

from connectors.crm import HttpCrm
from connectors.tax import HttpTax, document_code
from domain.errors import NotFound
from domain.write_models import TaxLineRequest, TaxRequest


def document(code: str, *amounts: str, **changes: object) -> TaxRequest:
    fields: dict[str, object] = {
        "code": code,
        "type": "SalesInvoice",
        "company": "UK01",
        "on": date(2026, 10, 31),
        "customer_code": "GLOBEX-UK",
        "ship_from_country": "GB",
        "ship_to_country": "GB",
        "currency": "GBP",
        "lines": [
            TaxLineRequest(number=str(i), amount=Decimal(a), tax_code="SV-PROFESSIONAL")
            for i, a in enumerate(amounts, 1)
        ],
    }
    return TaxRequest.model_validate(fields | changes)


def test_a_long_key_becomes_a_stable_code_of_fifty_characters() -> None:
    key = "contract-T-0123456789ab:invoice:milestone:M-kick-off-and-discovery"
    assert len(document_code(key)) == 50 and document_code(key) == document_code(key)
    assert document_code(key) != document_code(key + "2")
    assert document_code("contract-T-1:invoice:2026-10") == "contract-T-1:invoice:2026-10"


async def test_a_sale_saved_committed_and_returned_at_its_tax_date(
    tax: HttpTax, sandbox: httpx.AsyncClient
) -> None:
    key = f"contract-T-{uuid.uuid4().hex}:invoice:milestone:M-kick-off"
    saved = await tax.create_or_adjust(document(key, "1000.00", "0.05"))
    # UK VAT 20 %, line by line: 200.00 and 0.01.
    assert (saved.status, saved.total_tax, saved.code) == (
        "Saved",
        Decimal("200.01"),
        document_code(key),
    )
    assert [line.tax for line in saved.lines] == [Decimal("200.00"), Decimal("0.01")]
    again = await tax.create_or_adjust(document(key, "1000.00", "0.05"))
    assert again == saved
    committed = await tax.commit_document("UK01", key, idempotency_key=f"{key}:commit")
    assert committed.status == "Committed"

    # A return dated later, taxed at the sale's date, with its tax set by c2c (the engine's
    # own figure kept beside it). The rate by tax date is the sandbox tests' to show.
    refund_key = f"{key}:credit-note:CN-1"
    returned = await tax.create_or_adjust(
        document(
            refund_key,
            "-100.00",
            type="ReturnInvoice",
            on=date(2026, 11, 20),
            tax_date=date(2026, 10, 31),
            reference_code=key,
            commit=True,
            lines=[
                TaxLineRequest(
                    number="1",
                    amount=Decimal("-100.00"),
                    tax_code="SV-PROFESSIONAL",
                    tax_amount=Decimal("-19.99"),
                )
            ],
        ),
    )
    assert (returned.on, returned.tax_date, returned.status) == (
        date(2026, 11, 20),
        date(2026, 10, 31),
        "Committed",
    )
    assert (returned.total_tax, returned.lines[0].tax_calculated) == (
        Decimal("-19.99"),
        Decimal("-20.00"),
    )
    stored = (
        await sandbox.get(f"/tax/v1/companies/UK01/transactions/{document_code(refund_key)}")
    ).json()
    assert stored["referenceCode"] == document_code(key)


async def test_committing_a_document_the_engine_never_had_is_not_found(tax: HttpTax) -> None:
    with pytest.raises(NotFound):
        await tax.commit_document("UK01", f"missing-{uuid.uuid4().hex}", idempotency_key="k")


async def test_a_reverse_charge_comes_back_as_the_invoice_mention(tax: HttpTax) -> None:
    key = f"contract-T-{uuid.uuid4().hex[:8]}:invoice:2026-10"
    made = await tax.create_or_adjust(
        document(
            key,
            "1000.00",
            company="US01",
            ship_from_country="US",
            ship_to_country="DE",
            customer_tax_id="DE123456789",
            currency="EUR",
        ),
    )
    assert made.total_tax == Decimal("0.00")
    assert made.messages == [
        "Reverse charge: VAT to be accounted for by the recipient "
        "(Art. 196 Council Directive 2006/112/EC)"
    ]


async def test_the_crm_gives_the_accounts_tax_number(crm: HttpCrm) -> None:
    assert (await crm.get_account("INITECH-DE")).tax_id == "DE123456789"
    assert (await crm.get_account("UMBRELLA-JP")).tax_id == "T1234567890123"
    assert (await crm.get_account("ACME-HOLD")).tax_id is None
