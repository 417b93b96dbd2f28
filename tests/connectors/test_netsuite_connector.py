"""The NetSuite connector against the sandbox's NetSuite over real HTTP: upserts by external
id, an answer lost after a write, authentication, NetSuite's errors, and the account's limit
on requests in flight."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from decimal import Decimal

import httpx
import pytest

from connectors.netsuite import NetSuiteErp
from domain.errors import BusinessError, NotFound, TransientError
from domain.write_models import (
    AmendmentDraft,
    BillingSchedule,
    BillingScheduleLine,
    CashApplicationDraft,
    ContractDraft,
    CreditNoteDraft,
    CustomerDraft,
    InvoiceDraft,
    PaymentDraft,
    ProjectDraft,
    RevenueEntryDraft,
    RevenueSchedule,
)
from tests.connectors.support import two_roles_invoice
from tests.netsuite_support import netsuite


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def provisioned(erp: NetSuiteErp) -> dict[str, str]:
    """A customer, project and contract record, as the provisioning steps make them."""
    contract_id = unique("NS")
    customer = await erp.ensure_customer(
        CustomerDraft(
            **{
                "crm_account_id": unique("ACC"),
                "name": "NetSuite Test Inc.",
                "country": "US",
                "billing_email": "ap@example.com",
                "legal_entity": "US01",
                "currency": "USD",
            }
        ),
        idempotency_key=f"{contract_id}:customer",
    )
    project = await erp.ensure_project(
        ProjectDraft(
            **{
                "contract_id": contract_id,
                "customer_id": customer.customer_id,
                "legal_entity": "US01",
                "name": "Build-out",
                "currency": "USD",
                "start_date": "2026-10-01",
                "end_date": "2026-12-31",
            }
        ),
        idempotency_key=f"{contract_id}:project",
    )
    contract = await erp.ensure_contract(
        ContractDraft(
            **{
                "contract_id": contract_id,
                "project_id": project.project_id,
                "customer_id": customer.customer_id,
                "legal_entity": "US01",
                "currency": "USD",
                "billing_model": "time_and_materials",
                "start_date": "2026-10-01",
                "end_date": "2026-12-31",
                "payment_terms_days": 30,
                "contract_value": "10000.00",
                "billing_schedule": BillingSchedule(
                    lines=(BillingScheduleLine(kind="time_and_materials"),)
                ),
                "revenue_schedule": RevenueSchedule(method="as_invoiced"),
            }
        ),
        idempotency_key=f"{contract_id}:contract",
    )
    return {
        "contract_id": contract_id,
        "customer_id": customer.customer_id,
        "project_id": project.project_id,
        "erp_contract_id": contract.erp_contract_id,
    }


def invoice_body(refs: dict[str, str]) -> InvoiceDraft:
    return two_roles_invoice(refs, ("174.00", "52.24"))


async def invoices_with_external_id(sandbox: httpx.AsyncClient, eid: str) -> list[str]:
    """Ids of the sandbox's invoices holding ``eid``, read through a signed list request."""
    erp = netsuite(str(sandbox.base_url).rstrip("/"))
    try:
        page = await erp.request(
            "GET",
            "/services/rest/record/v1/invoice",
            params={"q": f'externalId IS "{eid}"'},
        )
    finally:
        await erp.aclose()
    return [item["id"] for item in page["items"]]


async def test_records_are_upserted_and_read_by_external_id(sandbox_url: str) -> None:
    erp = netsuite(sandbox_url)
    try:
        refs = await provisioned(erp)
        again = await provisioned_again(erp, refs)
        assert again == refs["project_id"]
        invoice = await erp.create_invoice(invoice_body(refs), idempotency_key="k")
        assert invoice.subtotal == Decimal("3120.60")
        assert invoice.tax == Decimal("226.24")
        assert invoice.total == Decimal("3346.84")
        assert invoice.status == "issued" and invoice.currency == "USD"
        assert [(line.line_id, line.amount) for line in invoice.lines] == [
            ("1", Decimal("2400.00")),
            ("2", Decimal("720.60")),
        ]
        found = await erp.find_invoice(refs["contract_id"], reference="2026-10")
        assert found is not None and found.invoice_id == invoice.invoice_id
        # The same invoice asked for again (another attempt, days later) is the same record.
        repeat = await erp.create_invoice(invoice_body(refs), idempotency_key="other")
        assert repeat.invoice_id == invoice.invoice_id

        payment = await erp.record_payment(
            PaymentDraft(
                **{
                    "payment_id": unique("pay"),
                    "invoice_id": invoice.invoice_id,
                    "contract_id": refs["contract_id"],
                    "amount": "3400.00",
                    "currency": "USD",
                    "received_on": "2026-11-20",
                }
            ),
            idempotency_key="p",
        )
        assert payment.applied_amount == Decimal("3346.84")
        assert payment.unapplied_amount == Decimal("53.16")
        paid = await erp.get_invoice(invoice.invoice_id)
        assert paid is not None and paid.status == "paid" and paid.balance == 0
        balances = await erp.get_balances(refs["erp_contract_id"])
        assert balances.billed_to_date == Decimal("3120.60")
        assert balances.receivable == 0 and balances.unapplied_cash == Decimal("53.16")
        closed = await erp.close_project(refs["project_id"], idempotency_key="c")
        assert closed.status == "closed"
    finally:
        await erp.aclose()


async def provisioned_again(erp: NetSuiteErp, refs: dict[str, str]) -> str:
    project = await erp.ensure_project(
        ProjectDraft(
            contract_id=refs["contract_id"],
            customer_id=refs["customer_id"],
            legal_entity="US01",
            name="Build-out",
            currency="USD",
            start_date=date(2026, 10, 1),
            end_date=date(2026, 12, 31),
        ),
        idempotency_key="again",
    )
    return project.project_id


class LoseFirstAnswer(httpx.AsyncBaseTransport):
    """Sends every request; the answer to the first ``POST`` reaches the sandbox's database
    but never the caller, as when a connection drops after NetSuite committed."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.lost = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST" and self.lost == 0:
            await response.aread()
            self.lost += 1
            raise httpx.ReadTimeout("answer lost", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_an_answer_lost_after_a_create_makes_no_second_invoice(
    sandbox_url: str, sandbox: httpx.AsyncClient
) -> None:
    setup = netsuite(sandbox_url)
    refs = await provisioned(setup)
    await setup.aclose()
    lossy = LoseFirstAnswer()
    erp = netsuite(sandbox_url, transport=lossy)
    try:
        invoice = await erp.create_invoice(invoice_body(refs), idempotency_key="k")
    finally:
        await erp.aclose()
    assert lossy.lost == 1
    # A retry days later, by a new process with no memory of the first, finds the invoice.
    later = netsuite(sandbox_url)
    try:
        again = await later.create_invoice(invoice_body(refs), idempotency_key="k2")
    finally:
        await later.aclose()
    assert again.invoice_id == invoice.invoice_id
    eid = f"c2c-invoice-{refs['contract_id']}-2026-10"
    assert await invoices_with_external_id(sandbox, eid) == [invoice.invoice_id]


async def test_a_create_whose_answer_is_lost_without_retries_is_found_by_the_next_attempt(
    sandbox_url: str, sandbox: httpx.AsyncClient
) -> None:
    setup = netsuite(sandbox_url)
    refs = await provisioned(setup)
    await setup.aclose()
    erp = NetSuiteErp(
        f"{sandbox_url}/vendors/netsuite",
        credentials=setup.credentials,
        segments=setup.segments,
        quick_retries=0,
        transport=LoseFirstAnswer(),
    )
    try:
        with pytest.raises(TransientError):
            await erp.create_invoice(invoice_body(refs), idempotency_key="k")
        # Temporal's retry of the step: the look-up by external id finds the first.
        invoice = await erp.create_invoice(invoice_body(refs), idempotency_key="k")
    finally:
        await erp.aclose()
    eid = f"c2c-invoice-{refs['contract_id']}-2026-10"
    assert await invoices_with_external_id(sandbox, eid) == [invoice.invoice_id]


async def test_wrong_credentials_are_a_configuration_error(sandbox_url: str) -> None:
    erp = netsuite(sandbox_url, token_secret="not-the-secret")
    try:
        with pytest.raises(BusinessError) as refused:
            await erp.get_legal_entity("US01")
    finally:
        await erp.aclose()
    assert refused.value.rejection.code == "INVALID_LOGIN"
    assert refused.value.rejection.status == 401


async def test_netsuite_refusals_name_the_code_and_path(sandbox_url: str) -> None:
    erp = netsuite(sandbox_url)
    try:
        entity = await erp.get_legal_entity("US01")
        assert entity is not None and entity.functional_currency == "USD"
        with pytest.raises(BusinessError) as unmapped:
            await erp.get_legal_entity("DE01")
        assert (unmapped.value.rejection.code, unmapped.value.rejection.field) == (
            "netsuite_mapping_missing",
            "legal_entity",
        )
        assert await erp.get_invoice("999999999") is None
        with pytest.raises(NotFound):
            await erp.close_project("999999999", idempotency_key="x")
        with pytest.raises(BusinessError) as refused:
            await erp.request(
                "POST", "/services/rest/record/v1/invoice", json={"externalId": unique("x")}
            )
    finally:
        await erp.aclose()
    assert refused.value.rejection.code == "USER_ERROR"
    assert refused.value.rejection.field == "entity"


async def test_requests_in_flight_never_pass_the_account_limit(
    sandbox_url: str, sandbox: httpx.AsyncClient
) -> None:
    admin = "/_admin/netsuite"
    await sandbox.put(
        admin, json={"concurrency_limit": 2, "latency_ms": 50, "reset_counters": True}
    )
    erp = netsuite(sandbox_url, concurrency=2)
    try:
        entities = await asyncio.gather(*(erp.get_legal_entity("US01") for _ in range(12)))
        assert all(e is not None and e.code == "US01" for e in entities)
        seen = (await sandbox.get(admin)).json()
        assert seen["max_in_flight"] <= 2 and seen["rejected"] == 0

        # A client that ignores the limit is answered 429 CONCURRENCY_LIMIT_EXCEEDED: transient.
        greedy = NetSuiteErp(
            f"{sandbox_url}/vendors/netsuite",
            credentials=erp.credentials,
            segments=erp.segments,
            concurrency=50,
            quick_retries=0,
        )
        greedy.credentials = erp.credentials
        try:
            results = await asyncio.gather(
                *(greedy.get_legal_entity("US01") for _ in range(8)), return_exceptions=True
            )
        finally:
            await greedy.aclose()
        refused = [r for r in results if isinstance(r, Exception)]
        assert refused and all(isinstance(r, TransientError) for r in refused)
        assert (await sandbox.get(admin)).json()["max_in_flight"] <= 2
    finally:
        await erp.aclose()
        await sandbox.put(admin, json={"concurrency_limit": 5, "latency_ms": 0})


async def test_credit_memos_cash_applications_revenue_and_amendments_are_made_once(
    sandbox_url: str,
) -> None:
    erp = netsuite(sandbox_url)
    try:
        refs = await provisioned(erp)
        invoice = await erp.create_invoice(invoice_body(refs), idempotency_key="k")
        note = CreditNoteDraft.model_validate(
            {
                "credit_note_id": unique("CN"),
                "reason": "goodwill",
                "currency": "USD",
                "lines": [
                    {
                        "line_id": "1",
                        "description": "goodwill",
                        "amount": "100.00",
                        "tax_amount": "7.25",
                    }
                ],
            }
        )
        credit = await erp.create_credit_note(invoice.invoice_id, note, idempotency_key="c")
        again = await erp.create_credit_note(invoice.invoice_id, note, idempotency_key="c2")
        assert again.number == credit.number
        assert (credit.total, credit.applied_amount, credit.unapplied_amount) == (
            Decimal("107.25"),
            Decimal("107.25"),
            Decimal("0"),
        )
        assert [n.credit_note_id for n in await erp.list_credit_notes(refs["contract_id"])] == [
            note.credit_note_id
        ]

        payment_id = unique("pay")
        held = await erp.record_payment(
            PaymentDraft(
                **{
                    "payment_id": payment_id,
                    "invoice_id": None,
                    "contract_id": refs["contract_id"],
                    "amount": "500.00",
                    "currency": "USD",
                    "received_on": "2026-11-02",
                }
            ),
            idempotency_key="p",
        )
        assert held.unapplied_amount == Decimal("500.00")
        application = CashApplicationDraft(
            application_id=f"{payment_id}:{invoice.invoice_id}",
            invoice_id=invoice.invoice_id,
            amount=Decimal("200.00"),
        )
        for key in ("a1", "a2"):
            applied = await erp.apply_payment(payment_id, application, idempotency_key=key)
            assert applied.amount == Decimal("200.00")
        after = await erp.get_invoice(invoice.invoice_id)
        assert after is not None
        assert after.balance == Decimal("3346.84") - Decimal("107.25") - Decimal("200.00")
        assert after.status == "partially_paid"
        paying = await erp.list_payments(invoice_id=invoice.invoice_id)
        assert [p.payment_id for p in paying] == [payment_id]

        entry = RevenueEntryDraft(
            **{
                "entry_id": f"{refs['contract_id']}:2026-10",
                "period": "2026-10",
                "amount": "3120.60",
                "method": "as_invoiced",
                "description": "October",
                "recognised_on": "2026-10-31",
            }
        )
        for key in ("r1", "r2"):
            await erp.post_revenue(refs["erp_contract_id"], entry, idempotency_key=key)
        assert [r.amount for r in await erp.list_revenue(refs["erp_contract_id"])] == [
            Decimal("3120.60")
        ]
        amendment = {"amendment_id": "A-1", "effective_date": "2026-11-01", "reason": "extend"}
        for key in ("m1", "m2"):
            amended = await erp.amend_contract(
                refs["erp_contract_id"],
                AmendmentDraft.model_validate({**amendment, "end_date": "2027-03-31"}),
                idempotency_key=key,
            )
        assert [a.amendment_id for a in amended.amendments] == ["A-1"]
        assert str(amended.end_date) == "2027-03-31"

        balances = await erp.get_balances(refs["erp_contract_id"])
        assert balances.billed_to_date == Decimal("3020.60")
        assert balances.recognised_to_date == Decimal("3120.60")
        assert balances.contract_asset == Decimal("100.00")
        assert balances.unapplied_cash == Decimal("300.00")
    finally:
        await erp.aclose()


async def test_the_signed_document_is_linked_on_the_contract_record_once(sandbox_url: str) -> None:
    erp = netsuite(sandbox_url)
    try:
        refs = await provisioned(erp)
        url, sha = "file:///archive/ab/abcd.pdf", "ab" * 32
        linked = await erp.link_contract_document(refs["erp_contract_id"], url, sha)
        again = await erp.link_contract_document(refs["erp_contract_id"], url, sha)
    finally:
        await erp.aclose()
    assert (linked.document_url, linked.document_sha256) == (url, sha)
    assert again == linked
