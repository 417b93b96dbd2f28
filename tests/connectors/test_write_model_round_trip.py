"""The same write models sent to each ERP family over real HTTP read back the same: the
reference ERP, NetSuite and Business Central each map c2c's customer, project, contract,
invoice draft, credit note draft, payment and revenue entry to their own wire format, and
what c2c reads back (lines, tax, totals, amounts, dates) is the same whichever ERP holds it.
Likewise a tax request taxes an invoice the same through the sandbox's tax engine and AvaTax,
and a payment request is taken the same by the sandbox's gateway and Stripe."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal

import pytest
import pytest_asyncio

from connectors.avatax import AvataxTax
from connectors.erp import HttpErp
from connectors.payments import HttpPayments
from connectors.ports import ErpPort, PaymentsPort, TaxPort
from connectors.stripe import StripePayments
from connectors.tax import HttpTax
from domain.tax import apply_tax
from domain.write_models import (
    AmendmentDraft,
    BillingSchedule,
    BillingScheduleLine,
    ContractDraft,
    CreditNoteDraft,
    CreditNoteLineDraft,
    CustomerDraft,
    InvoiceDraft,
    PaymentDraft,
    PaymentRequest,
    ProjectDraft,
    RateDraft,
    RevenueEntryDraft,
    RevenueSchedule,
    TaxLineRequest,
    TaxLineResult,
    TaxRequest,
    TaxResult,
)
from sandbox.avatax import DEFAULT_ACCOUNT_ID, DEFAULT_LICENSE_KEY
from tests.bc_support import business_central
from tests.connectors.support import erp_contract, issued_invoice, two_roles_invoice
from tests.netsuite_support import netsuite

ERPS = ("reference", "netsuite", "business-central")


@pytest_asyncio.fixture(params=ERPS)
async def erp(request: pytest.FixtureRequest, sandbox_url: str) -> AsyncIterator[ErpPort]:
    kind = request.param
    port: ErpPort
    if kind == "netsuite":
        port = netsuite(sandbox_url)
    elif kind == "business-central":
        port = business_central(sandbox_url)
    else:
        port = HttpErp(f"{sandbox_url}/erp/v1", timeout_s=5)
    yield port
    await port.aclose()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def taxed_invoice(contract_id: str, refs: dict[str, str]) -> InvoiceDraft:
    """October's invoice of two roles' time, taxed by the engine's figures for each line."""
    return two_roles_invoice({**refs, "contract_id": contract_id}, ("174.00", "52.24"))


async def test_every_write_model_reads_back_the_same_from_each_erp(erp: ErpPort) -> None:
    contract_id = unique("RT")
    customer = CustomerDraft(
        crm_account_id=unique("ACC"),
        name="Round Trip Inc.",
        country="US",
        region="CA",
        billing_email="ap@example.com",
        legal_entity="US01",
        currency="USD",
    )
    made_customer = await erp.ensure_customer(customer, idempotency_key=f"{contract_id}:c")
    assert (made_customer.crm_account_id, made_customer.name) == (
        customer.crm_account_id,
        customer.name,
    )

    project = ProjectDraft(
        contract_id=contract_id,
        customer_id=made_customer.customer_id,
        legal_entity="US01",
        name="Round trip",
        currency="USD",
        start_date=date(2026, 10, 1),
        end_date=date(2026, 12, 31),
        project_template="standard",
    )
    made_project = await erp.ensure_project(project, idempotency_key=f"{contract_id}:p")
    # The reference ERP calls an open project "open", the vendors' connectors "active".
    assert made_project.contract_id == contract_id
    assert made_project.status in ("open", "active")

    contract = ContractDraft(
        contract_id=contract_id,
        project_id=made_project.project_id,
        customer_id=made_customer.customer_id,
        legal_entity="US01",
        currency="USD",
        billing_model="time_and_materials",
        start_date=date(2026, 10, 1),
        end_date=date(2026, 12, 31),
        payment_terms_days=30,
        contract_value=Decimal("10000.00"),
        not_to_exceed=Decimal("50000.00"),
        rate_card=(
            RateDraft(
                role="Senior Consultant",
                hourly_rate=Decimal("200.00"),
                effective_from=date(2026, 10, 1),
            ),
            RateDraft(
                role="Analyst", hourly_rate=Decimal("120.10"), effective_from=date(2026, 10, 1)
            ),
        ),
        billing_schedule=BillingSchedule(
            lines=(BillingScheduleLine(kind="time_and_materials", expenses_billable=False),)
        ),
        revenue_schedule=RevenueSchedule(method="as_invoiced", contract_value=Decimal("10000.00")),
    )
    made_contract = await erp.ensure_contract(contract, idempotency_key=f"{contract_id}:k")
    ecid = made_contract.erp_contract_id
    await erp.put_billing_schedule(ecid, contract.billing_schedule, idempotency_key="b")
    await erp.put_revenue_schedule(ecid, contract.revenue_schedule, idempotency_key="r")
    assert (made_contract.contract_id, made_contract.not_to_exceed) == (
        contract_id,
        Decimal("50000.00"),
    )

    refs = {
        "customer_id": made_customer.customer_id,
        "project_id": made_project.project_id,
        "erp_contract_id": ecid,
    }
    invoice = taxed_invoice(contract_id, refs)
    created = await erp.create_invoice(invoice, idempotency_key=f"{contract_id}:i")
    issued = await erp.issue_invoice(created.invoice_id, idempotency_key=f"{contract_id}:ii")
    read = await erp.get_invoice(issued.invoice_id)
    assert read is not None
    assert [(line.kind, line.amount) for line in read.lines] == [
        (line.kind, line.amount) for line in invoice.lines
    ]
    assert (read.subtotal, read.tax, read.total) == (
        Decimal("3120.60"),
        Decimal("226.24"),
        Decimal("3346.84"),
    )
    assert (read.subtotal, read.tax, read.total) == (invoice.subtotal, invoice.tax, invoice.total)
    assert (read.contract_id, read.currency, read.invoice_date, read.due_on) == (
        contract_id,
        "USD",
        invoice.invoice_date,
        invoice.due_on,
    )
    assert await erp.find_invoice(contract_id, reference="2026-10") == read

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
    credited = await erp.create_credit_note(read.invoice_id, note, idempotency_key="cn")
    assert (credited.credit_note_id, credited.invoice_id) == (note.credit_note_id, read.invoice_id)
    assert (credited.subtotal, credited.tax, credited.total) == (
        Decimal("100.00"),
        Decimal("7.25"),
        Decimal("107.25"),
    )

    payment = PaymentDraft(
        payment_id=unique("PAY"),
        contract_id=contract_id,
        invoice_id=read.invoice_id,
        amount=Decimal("1000.00"),
        currency="USD",
        received_on=date(2026, 11, 20),
    )
    paid = await erp.record_payment(payment, idempotency_key="pay")
    assert (paid.payment_id, paid.amount, paid.applied_amount, paid.currency) == (
        payment.payment_id,
        Decimal("1000.00"),
        Decimal("1000.00"),
        "USD",
    )

    entry = RevenueEntryDraft(
        entry_id=f"{contract_id}:2026-10",
        period="2026-10",
        amount=Decimal("3120.60"),
        method="as_invoiced",
        description="October",
        recognised_on=date(2026, 10, 31),
    )
    posted = await erp.post_revenue(ecid, entry, idempotency_key="rev")
    assert (posted.entry_id, posted.period, posted.amount, posted.recognised_on) == (
        entry.entry_id,
        "2026-10",
        Decimal("3120.60"),
        date(2026, 10, 31),
    )

    amendment = AmendmentDraft(
        amendment_id="A-1",
        effective_date=date(2026, 11, 1),
        end_date=date(2027, 3, 31),
        not_to_exceed=Decimal("60000.00"),
        contract_value=Decimal("12000.00"),
        rate_card=(
            RateDraft(
                role="Analyst", hourly_rate=Decimal("130.00"), effective_from=date(2026, 11, 1)
            ),
        ),
        reason="Extended to March",
    )
    amended = await erp.amend_contract(ecid, amendment, idempotency_key="a1")
    again = await erp.amend_contract(ecid, amendment, idempotency_key="a1-after-a-reset")
    assert [(a.amendment_id, a.effective_date) for a in again.amendments] == [
        ("A-1", date(2026, 11, 1))
    ]
    assert (amended.end_date, amended.not_to_exceed) == (date(2027, 3, 31), Decimal("60000.00"))

    balances = await erp.get_balances(ecid)
    assert (balances.billed_to_date, balances.recognised_to_date) == (
        Decimal("3020.60"),
        Decimal("3120.60"),
    )


@pytest_asyncio.fixture(params=("sandbox", "avatax"))
async def tax(request: pytest.FixtureRequest, sandbox_url: str) -> AsyncIterator[TaxPort]:
    port: TaxPort
    if request.param == "avatax":
        port = AvataxTax(
            f"{sandbox_url}/vendors/avatax",
            account_id=DEFAULT_ACCOUNT_ID,
            license_key=DEFAULT_LICENSE_KEY,
        )
    else:
        port = HttpTax(f"{sandbox_url}/tax/v1", timeout_s=5)
    yield port
    await port.aclose()


async def test_a_tax_request_taxes_an_invoice_the_same_through_each_engine(tax: TaxPort) -> None:
    code = unique("contract-RT") + ":invoice:2026-10"
    request = TaxRequest(
        code=code,
        type="SalesInvoice",
        company="UK01",
        on=date(2026, 10, 31),
        customer_code="GLOBEX-UK",
        ship_from_country="GB",
        ship_to_country="GB",
        currency="GBP",
        lines=(
            TaxLineRequest(number="1", amount=Decimal("2400.00"), tax_code="SV-PROFESSIONAL"),
            TaxLineRequest(number="2", amount=Decimal("720.60"), tax_code="SV-PROFESSIONAL"),
        ),
    )
    result = (await tax.create_or_adjust(request)).result()
    draft = taxed_invoice(code, {"customer_id": "C", "project_id": "P", "erp_contract_id": "K"})
    taxed = apply_tax(draft.model_copy(update={"currency": "GBP"}), result)

    assert [(line.number, line.tax) for line in result.lines] == [
        ("1", Decimal("480.00")),
        ("2", Decimal("144.12")),
    ]
    assert [line.tax_amount for line in taxed.lines] == [Decimal("480.00"), Decimal("144.12")]
    assert (taxed.subtotal, taxed.tax, taxed.total) == (
        Decimal("3120.60"),
        Decimal("624.12"),
        Decimal("3744.72"),
    )
    committed = await tax.commit_document("UK01", code, idempotency_key=f"{code}:commit")
    assert committed.result() == result
    # Read back by its code, as the engine keeps it; an unknown code is none.
    found = await tax.get_document("UK01", code)
    assert found is not None and found.result() == result and found.status == "Committed"
    assert await tax.get_document("UK01", code + ":none") is None


@pytest_asyncio.fixture(params=("sandbox", "stripe"))
async def payments(request: pytest.FixtureRequest, sandbox_url: str) -> AsyncIterator[PaymentsPort]:
    port: PaymentsPort
    if request.param == "stripe":
        port = StripePayments(f"{sandbox_url}/vendors/stripe", api_key="sk_test_c2c")
    else:
        port = HttpPayments(f"{sandbox_url}/payments/v1", timeout_s=5)
    yield port
    await port.aclose()


async def test_a_payment_request_is_taken_the_same_by_each_gateway(
    payments: PaymentsPort, sandbox_url: str
) -> None:
    # The sandbox's gateway takes payments of invoices its ERP holds.
    books = HttpErp(f"{sandbox_url}/erp/v1", timeout_s=5)
    try:
        owed = await issued_invoice(books, await erp_contract(books), "2026-10")
    finally:
        await books.aclose()
    request = PaymentRequest(invoice_id=owed.invoice_id, amount=Decimal("1234.50"), currency="USD")
    key = f"pay:{request.invoice_id}"

    taken = await payments.create_payment(request, idempotency_key=key)
    again = await payments.create_payment(request, idempotency_key=key)

    assert (taken.invoice_id, taken.amount, taken.currency) == (
        request.invoice_id,
        Decimal("1234.50"),
        "USD",
    )
    assert again.payment_id == taken.payment_id
