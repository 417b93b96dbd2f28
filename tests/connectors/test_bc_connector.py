"""The Business Central connector against the sandbox's Business Central over real HTTP:
records found by number or external document number before any create, an answer lost after
a create, stale ETags read again, throttling, tokens from the Entra-shaped endpoint, and
Business Central's errors."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest

from c2c.bc_mapping import SANDBOX_COMPANIES, SANDBOX_ENVIRONMENT, SANDBOX_TENANT
from connectors.business_central import BusinessCentralErp, invoice_key
from domain.errors import BusinessError, TransientError
from domain.write_models import (
    AmendmentDraft,
    BillingSchedule,
    BillingScheduleLine,
    BillToContact,
    ContractDraft,
    CustomerDraft,
    InvoiceDraft,
    PaymentDraft,
    ProjectDraft,
    RevenueEntryDraft,
    RevenueSchedule,
)
from tests.bc_support import business_central
from tests.connectors.support import two_roles_invoice

ADMIN = "/_admin/bc"
UK = next(iter(SANDBOX_COMPANIES))


SCHEDULE = BillingSchedule(lines=(BillingScheduleLine(kind="time_and_materials"),))


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def provisioned(erp: BusinessCentralErp) -> dict[str, str]:
    """A customer, project and contract record, as the provisioning steps make them."""
    contract_id = unique("BC")
    customer = await erp.ensure_customer(
        CustomerDraft(
            **{
                "crm_account_id": unique("ACC"),
                "name": "Business Central Test Ltd",
                "country": "GB",
                "billing_email": "ap@example.com",
                "legal_entity": "UK01",
                "currency": "GBP",
            }
        ),
        idempotency_key=f"{contract_id}:customer",
    )
    project = await erp.ensure_project(
        ProjectDraft(
            contract_id=contract_id,
            customer_id=customer.customer_id,
            legal_entity="UK01",
            name="Build-out",
            currency="GBP",
            start_date=date(2026, 10, 1),
            end_date=date(2026, 12, 31),
        ),
        idempotency_key=f"{contract_id}:project",
    )
    contract = await erp.ensure_contract(
        ContractDraft(
            **{
                "contract_id": contract_id,
                "project_id": project.project_id,
                "customer_id": customer.customer_id,
                "legal_entity": "UK01",
                "currency": "GBP",
                "billing_model": "time_and_materials",
                "start_date": "2026-10-01",
                "end_date": "2026-12-31",
                "payment_terms_days": 30,
                "contract_value": "10000.00",
                "billing_schedule": SCHEDULE,
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
    return two_roles_invoice(refs, ("480.00", "144.12"), legal_entity="UK01", currency="GBP")


async def raw(erp: BusinessCentralErp, method: str, tail: str, **kwargs: Any) -> Any:
    return await erp.call(method, "UK01", tail, **kwargs)


async def test_records_are_made_once_and_an_invoice_is_posted_paid_and_balanced(
    sandbox_url: str,
) -> None:
    erp = business_central(sandbox_url)
    try:
        entity = await erp.get_legal_entity("UK01")
        assert entity is not None
        assert (entity.country, entity.functional_currency) == ("GB", "GBP")
        refs = await provisioned(erp)
        invoice = await erp.create_invoice(invoice_body(refs), idempotency_key="k")
        assert invoice.status == "draft" and invoice.currency == "GBP"
        assert (invoice.subtotal, invoice.tax, invoice.total) == (
            Decimal("3120.60"),
            Decimal("624.12"),
            Decimal("3744.72"),
        )
        assert [(line.kind, line.amount) for line in invoice.lines] == [
            ("time", Decimal("2400.00")),
            ("time", Decimal("720.60")),
        ]
        # The same invoice asked for again (another attempt, days later) is the same record.
        repeat = await erp.create_invoice(invoice_body(refs), idempotency_key="other")
        assert repeat.invoice_id == invoice.invoice_id
        issued = await erp.issue_invoice(invoice.invoice_id, idempotency_key="i")
        assert issued.status == "issued" and issued.number and issued.number.startswith("PS-INV")
        again = await erp.issue_invoice(invoice.invoice_id, idempotency_key="i")
        assert again.number == issued.number
        found = await erp.find_invoice(refs["contract_id"], reference="2026-10")
        assert found is not None and found.invoice_id == invoice.invoice_id
        assert found.period == "2026-10" and found.contract_id == refs["contract_id"]

        payment = await erp.record_payment(
            PaymentDraft(
                **{
                    "payment_id": unique("pay"),
                    "invoice_id": invoice.invoice_id,
                    "contract_id": refs["contract_id"],
                    "amount": "3800.00",
                    "currency": "GBP",
                    "received_on": "2026-11-20",
                }
            ),
            idempotency_key="p",
        )
        assert payment.applied_amount == Decimal("3744.72")
        assert payment.unapplied_amount == Decimal("55.28")
        paid = await erp.get_invoice(invoice.invoice_id)
        assert paid is not None and paid.status == "paid" and paid.balance == 0
        await erp.put_billing_schedule(refs["erp_contract_id"], SCHEDULE, idempotency_key="b")
        await erp.post_revenue(
            refs["erp_contract_id"],
            RevenueEntryDraft(
                **{
                    "entry_id": f"{refs['contract_id']}:2026-10",
                    "period": "2026-10",
                    "amount": "3120.60",
                    "method": "as_invoiced",
                    "recognised_on": "2026-10-31",
                }
            ),
            idempotency_key="r",
        )
        balances = await erp.get_balances(refs["erp_contract_id"])
        assert balances.billed_to_date == Decimal("3120.60")
        assert balances.recognised_to_date == Decimal("3120.60")
        assert balances.receivable == 0 and balances.unapplied_cash == Decimal("55.28")
        closed = await erp.close_project(refs["project_id"], idempotency_key="c")
        assert (closed.status, closed.contract_id) == ("closed", refs["contract_id"])
    finally:
        await erp.aclose()


class LoseFirstAnswer(httpx.AsyncBaseTransport):
    """Sends every request; the answer to the first ``POST`` to a path ending in ``suffix``
    reaches the sandbox's database but never the caller, as when a connection drops after
    Business Central committed."""

    def __init__(self, suffix: str = "/salesInvoices") -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.suffix = suffix
        self.lost = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        create = request.method == "POST" and request.url.path.endswith(self.suffix)
        if create and self.lost == 0:
            await response.aread()
            self.lost += 1
            raise httpx.ReadTimeout("answer lost", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_an_answer_lost_after_a_create_makes_no_second_invoice(sandbox_url: str) -> None:
    setup = business_central(sandbox_url)
    refs = await provisioned(setup)
    lossy = LoseFirstAnswer()
    erp = business_central(sandbox_url, transport=lossy)
    try:
        invoice = await erp.create_invoice(invoice_body(refs), idempotency_key="k")
        # A retry days later, by a new process with no memory of the first, finds the invoice.
        again = await setup.create_invoice(invoice_body(refs), idempotency_key="k2")
        key = invoice_key(refs["contract_id"], "2026-10")
        page = await raw(
            setup, "GET", "/salesInvoices", params={"$filter": f"externalDocumentNumber eq '{key}'"}
        )
    finally:
        await erp.aclose()
        await setup.aclose()
    assert lossy.lost == 1
    assert again.invoice_id == invoice.invoice_id
    assert [f"UK01:{r['id']}" for r in page["value"]] == [invoice.invoice_id]


async def test_a_payment_whose_answer_was_lost_is_one_journal_line(sandbox_url: str) -> None:
    setup = business_central(sandbox_url)
    refs = await provisioned(setup)
    invoice = await setup.create_invoice(invoice_body(refs), idempotency_key="k")
    await setup.issue_invoice(invoice.invoice_id, idempotency_key="i")
    payment = PaymentDraft(
        **{
            "payment_id": unique("pay"),
            "invoice_id": invoice.invoice_id,
            "contract_id": refs["contract_id"],
            "amount": "1000.00",
            "currency": "GBP",
            "received_on": "2026-11-20",
        }
    )
    lossy = LoseFirstAnswer("/customerPayments")
    erp = business_central(sandbox_url, transport=lossy)
    try:
        # The create's answer is lost, and the look-up after it finds the line.
        first = await erp.record_payment(payment, idempotency_key="p")
        again = await setup.record_payment(payment, idempotency_key="p")
        lines = await setup.list_payments(contract_id=refs["contract_id"])
        paid = await setup.get_invoice(invoice.invoice_id)
    finally:
        await erp.aclose()
        await setup.aclose()
    assert lossy.lost == 1
    assert first.payment_id == again.payment_id == payment.payment_id
    assert [(p.payment_id, p.amount) for p in lines] == [(payment.payment_id, Decimal("1000"))]
    assert paid is not None and paid.status == "partially_paid"
    assert paid.amount_paid == Decimal("1000.00")


async def test_a_stale_etag_is_read_again_and_the_change_retried(
    sandbox_url: str, sandbox: httpx.AsyncClient
) -> None:
    erp = business_central(sandbox_url)
    try:
        refs = await provisioned(erp)
        # The next two changes find the contract changed by someone else since c2c read it.
        await sandbox.put(ADMIN, json={"conflicts": 2})
        amended = await erp.amend_contract(
            refs["erp_contract_id"],
            AmendmentDraft(
                amendment_id="A1",
                effective_date=date(2026, 11, 1),
                end_date=date(2027, 3, 31),
            ),
            idempotency_key="a",
        )
        assert [a.amendment_id for a in amended.amendments] == ["A1"]
        assert str(amended.end_date) == "2027-03-31"
        assert (await sandbox.get(ADMIN)).json()["conflicts"] == 0
        # A change without If-Match, or with an old ETag, is refused.
        guid = refs["erp_contract_id"].split(":", 1)[1]
        pages = "api/c2c/contractToCash/v1.0"
        with pytest.raises(BusinessError) as missing:
            await raw(
                erp, "PATCH", f"/contracts({guid})", api=pages, json={"endDate": "2027-01-01"}
            )
        assert missing.value.rejection.status == 428
        # Someone else's change between c2c's read and write is a 412 c2c reads again.
        await sandbox.put(ADMIN, json={"conflicts": 10})
        with pytest.raises(TransientError, match="kept changing"):
            await erp.amend_contract(
                refs["erp_contract_id"],
                AmendmentDraft(amendment_id="A2", effective_date=date(2026, 12, 1)),
                idempotency_key="a2",
            )
    finally:
        await sandbox.put(ADMIN, json={"conflicts": 0, "throttle": 0})
        await erp.aclose()


async def test_throttling_is_waited_out_as_retry_after_asks(
    sandbox_url: str, sandbox: httpx.AsyncClient
) -> None:
    erp = business_central(sandbox_url)
    try:
        refs = await provisioned(erp)
        before = (await sandbox.get(ADMIN)).json()["throttled"]
        # Two 429s asking for a second each: waited out within the call.
        await sandbox.put(ADMIN, json={"throttle": 2, "retry_after_s": 1})
        found = await erp.get_invoice(refs["customer_id"].replace("UK01:", "UK01:0"))
        assert found is None
        assert (await sandbox.get(ADMIN)).json()["throttled"] == before + 2
        # A long wait is Temporal's to schedule: the error carries it.
        await sandbox.put(ADMIN, json={"throttle": 1, "retry_after_s": 30})
        with pytest.raises(TransientError) as throttled:
            await erp.get_legal_entity("UK01")
        assert throttled.value.status == 429 and throttled.value.retry_after_s == 30
    finally:
        await sandbox.put(ADMIN, json={"throttle": 0, "retry_after_s": 1})
        await erp.aclose()


async def test_tokens_come_from_the_tenant_and_a_wrong_secret_is_refused(
    sandbox_url: str, sandbox: httpx.AsyncClient
) -> None:
    erp = business_central(sandbox_url, client_secret="not-the-secret")
    try:
        with pytest.raises(BusinessError) as refused:
            await erp.get_legal_entity("UK01")
        assert refused.value.rejection.code == "Authentication_InvalidCredentials"
    finally:
        await erp.aclose()
    base = f"/vendors/bc/v2.0/{SANDBOX_TENANT}/{SANDBOX_ENVIRONMENT}/api/v2.0"
    unsigned = await sandbox.get(f"{base}/companies({UK})/customers")
    assert unsigned.status_code == 401
    assert unsigned.json()["error"]["code"] == "Authentication_InvalidCredentials"
    forged = await sandbox.get(
        f"{base}/companies({UK})/customers", headers={"Authorization": "Bearer made-up"}
    )
    assert forged.status_code == 401


async def test_a_revoked_token_is_replaced_once_and_the_call_goes_through(
    sandbox_url: str, sandbox: httpx.AsyncClient
) -> None:
    erp = business_central(sandbox_url, quick_retries=0)
    try:
        assert await erp.get_legal_entity("UK01") is not None
        issued = (await sandbox.get(ADMIN)).json()["token_requests"]
        assert await erp.get_legal_entity("UK01") is not None
        assert (await sandbox.get(ADMIN)).json()["token_requests"] == issued
        await sandbox.put(ADMIN, json={"revoke_tokens": True})
        assert await erp.get_legal_entity("UK01") is not None
        assert (await sandbox.get(ADMIN)).json()["token_requests"] == issued + 1
    finally:
        await erp.aclose()


async def test_refusals_carry_business_centrals_code_and_a_missing_mapping_names_it(
    sandbox_url: str,
) -> None:
    erp = business_central(sandbox_url)
    try:
        refs = await provisioned(erp)
        body = invoice_body(refs)
        architect = body.lines[0].model_copy(update={"role": "Architect"})
        body = body.model_copy(update={"lines": (architect, *body.lines[1:])})
        with pytest.raises(BusinessError) as unmapped:
            await erp.create_invoice(body, idempotency_key="x")
        assert unmapped.value.rejection.code == "bc_mapping_missing"
        assert "Architect" in unmapped.value.rejection.message
        with pytest.raises(BusinessError) as refused:
            await raw(erp, "POST", "/projects", json={"displayName": "no number"})
        assert refused.value.rejection.code == "BadRequest"
        assert "number" in refused.value.rejection.message
    finally:
        await erp.aclose()


async def test_an_invoice_carries_the_purchase_order_and_bill_to(sandbox_url: str) -> None:
    """The PO goes in ``customerPurchaseOrderReference`` (``externalDocumentNumber`` stays
    c2c's key), the bill-to contact in ``billToName``, ``billToAddressLine1`` and ``email``."""
    erp = business_central(sandbox_url)
    try:
        refs = await provisioned(erp)
        bill_to = {"name": "Acme AP", "email": "ap@acme.example", "address": "1 Main St"}
        body = invoice_body(refs).model_copy(
            update={
                "reference": "2026-11",
                "period": "2026-11",
                "po_number": "PO-4711",
                "bill_to": BillToContact.model_validate(bill_to),
            }
        )
        invoice = await erp.create_invoice(body, idempotency_key="po")
        assert (invoice.po_number, invoice.bill_to) == ("PO-4711", bill_to)
        issued = await erp.issue_invoice(invoice.invoice_id, idempotency_key="po-issue")
        assert issued.po_number == "PO-4711" and issued.number
    finally:
        await erp.aclose()


async def test_entra_id_throttled_or_down_is_transient_not_a_wrong_tenant(
    sandbox_url: str, sandbox: httpx.AsyncClient, faults: Any
) -> None:
    # Entra ID's tenant discovery answers 429, then 503; then its token endpoint 503s: each a
    # passing failure for Temporal to retry, never "no such tenant" or "credentials refused".
    await faults(system="business-central", path_prefix="/login", method="GET", status=429, times=1)
    await faults(system="business-central", path_prefix="/login", method="GET", status=503, times=1)
    await faults(
        system="business-central", path_prefix="/login", method="POST", status=503, times=1
    )
    erp = business_central(sandbox_url, quick_retries=0)
    try:
        for status in (429, 503, 503):
            with pytest.raises(TransientError) as passing:
                await erp.get_legal_entity("UK01")
            assert passing.value.status == status
        assert await erp.get_legal_entity("UK01") is not None
    finally:
        await erp.aclose()
