"""Connectors against the sandbox over real HTTP: error classes, Retry-After, idempotency."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from connectors.crm import HttpCrm
from connectors.erp import HttpErp
from connectors.tax import HttpTax
from domain.errors import BusinessError, NotFound, TransientError
from domain.write_models import CustomerDraft


def customer(crm_account_id: str) -> CustomerDraft:
    return CustomerDraft(
        crm_account_id=crm_account_id,
        name="Transport Test Ltd",
        country="GB",
        legal_entity="UK01",
        currency="GBP",
    )


async def crm_account(sandbox: httpx.AsyncClient) -> str:
    account_id = f"T-{uuid.uuid4().hex[:8]}"
    created = await sandbox.post(
        "/crm/v1/accounts", json={"crm_account_id": account_id, "name": "T", "country": "GB"}
    )
    assert created.status_code == 201, created.text
    return account_id


async def test_429_is_transient_and_carries_retry_after(erp: HttpErp, faults: Any) -> None:
    await faults(system="erp", path_prefix="/legal-entities", status=429, retry_after_s=7, times=1)
    with pytest.raises(TransientError) as exc:
        await erp.get_legal_entity("US01")
    assert exc.value.status == 429
    assert exc.value.retry_after_s == 7
    entity = await erp.get_legal_entity("US01")
    assert entity is not None and entity.functional_currency == "USD"


async def test_503_is_transient_and_the_next_call_recovers(
    erp: HttpErp, faults: Any, sandbox: httpx.AsyncClient
) -> None:
    account = await crm_account(sandbox)
    await faults(system="erp", path_prefix="/customers", method="POST", status=503, times=1)
    key = f"test:{account}:customer"
    with pytest.raises(TransientError) as exc:
        await erp.ensure_customer(customer(account), idempotency_key=key)
    assert exc.value.status == 503
    created = await erp.ensure_customer(customer(account), idempotency_key=key)
    again = await erp.ensure_customer(customer(account), idempotency_key=key)
    assert created.customer_id == again.customer_id
    listed = (await sandbox.get("/erp/v1/customers", params={"crm_account_id": account})).json()
    assert len(listed["items"]) == 1


async def test_a_lost_response_is_replayed_by_its_idempotency_key(
    erp: HttpErp, faults: Any, sandbox: httpx.AsyncClient
) -> None:
    account = await crm_account(sandbox)
    # The write happens, then the answer is lost: the retry must not create a second customer.
    await faults(
        system="erp", path_prefix="/customers", method="POST", status=503, phase="after", times=1
    )
    key = f"test:{account}:customer"
    body = customer(account).model_dump(mode="json", exclude_none=True)
    with pytest.raises(TransientError):
        await erp.request("POST", "/customers", json=body, idempotency_key=key)
    replayed = await sandbox.post("/erp/v1/customers", json=body, headers={"Idempotency-Key": key})
    assert replayed.status_code == 201
    assert replayed.headers.get("Idempotent-Replayed") == "true"
    listed = (await sandbox.get("/erp/v1/customers", params={"crm_account_id": account})).json()
    assert len(listed["items"]) == 1


async def test_422_is_a_business_error_with_code_and_field(erp: HttpErp) -> None:
    with pytest.raises(BusinessError) as exc:
        await erp.request(
            "POST",
            "/customers",
            json=customer("NOPE-1").model_dump(mode="json", exclude_none=True)
            | {"legal_entity": "XX99"},
            idempotency_key="test:nope",
        )
    rejection = exc.value.rejection
    assert (rejection.system, rejection.status) == ("erp", 422)
    assert rejection.field == "legal_entity"
    assert rejection.code
    assert not isinstance(exc.value, TransientError)


async def test_404_is_not_found_and_unknown_accounts_say_so(sandbox_url: str) -> None:
    crm = HttpCrm(f"{sandbox_url}/crm/v1")
    try:
        with pytest.raises(NotFound):
            await crm.get_account("NO-SUCH")
        account = await crm.get_account("ACME-US")
        assert account.parent_crm_account_id == "ACME-HOLD"
        assert [a.crm_account_id for a in await crm.get_ancestors("ACME-US")] == ["ACME-HOLD"]
    finally:
        await crm.aclose()


async def test_timeouts_and_refused_connections_are_transient(
    faults: Any, sandbox_url: str
) -> None:
    await faults(system="tax", path_prefix="/addresses", latency_ms=1500, times=1)
    tax = HttpTax(f"{sandbox_url}/tax/v1", timeout_s=0.5)
    try:
        with pytest.raises(TransientError, match="timed out"):
            await tax.validate_address("US", "CA")
    finally:
        await tax.aclose()
    unreachable = HttpTax("http://127.0.0.1:9/tax/v1", timeout_s=1)
    try:
        with pytest.raises(TransientError):
            await unreachable.validate_address("US", "CA")
    finally:
        await unreachable.aclose()


async def test_tax_for_a_jpy_invoice_rounds_to_whole_yen(sandbox_url: str) -> None:
    from datetime import date
    from decimal import Decimal

    from domain.write_models import TaxLineRequest, TaxRequest

    tax = HttpTax(f"{sandbox_url}/tax/v1")
    document = TaxRequest(
        code=f"doc-{uuid.uuid4().hex[:8]}",
        type="SalesInvoice",
        company="US01",
        on=date(2026, 10, 31),
        customer_code="UMBRELLA-JP",
        ship_to_country="JP",
        currency="JPY",
        lines=[
            TaxLineRequest(number="1", amount=Decimal("12345"), tax_code="SV-PROFESSIONAL"),
            TaxLineRequest(number="2", amount=Decimal("999"), tax_code="SV-PROFESSIONAL"),
        ],
    )
    try:
        made = await tax.create_or_adjust(document)
    finally:
        await tax.aclose()
    assert [line.tax for line in made.lines] == [Decimal("1235"), Decimal("100")]
    assert made.total_tax == Decimal("1335")


async def test_a_repeatable_request_is_retried_at_once_and_a_bare_post_is_not(
    sandbox_url: str, faults: Any
) -> None:
    erp = HttpErp(f"{sandbox_url}/erp/v1", timeout_s=5, quick_retries=2)
    try:
        # Two dropped answers to a read: the third try answers, the caller never knows.
        await faults(system="erp", path_prefix="/legal-entities", method="GET", status=503, times=2)
        entity = await erp.get_legal_entity("US01")
        assert entity is not None and entity.code == "US01"
        # A third failure in a row is the step's to retry (Temporal's retry policy).
        await faults(system="erp", path_prefix="/legal-entities", method="GET", status=503, times=3)
        with pytest.raises(TransientError):
            await erp.get_legal_entity("US01")
        # A POST without an idempotency key might be made twice: never retried in place.
        await faults(system="erp", path_prefix="/customers", method="POST", status=503, times=1)
        with pytest.raises(TransientError):
            await erp.request("POST", "/customers", json={"crm_account_id": "X"})
    finally:
        await erp.aclose()
