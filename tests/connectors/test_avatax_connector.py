"""The AvaTax connector (Avalara's ``avalara`` client) against the sandbox's AvaTax over real
HTTP: basic auth with account id and license key, documents made or adjusted by code, commit,
a refund found by its code on a retry, a void, and ResolveAddress naming the part at fault."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal

import httpx
import pytest
import pytest_asyncio

from connectors.avatax import AvataxTax
from connectors.tax import document_code
from domain.errors import BusinessError
from domain.write_models import TaxLineRequest, TaxRequest
from sandbox.avatax import DEFAULT_ACCOUNT_ID, DEFAULT_LICENSE_KEY


@pytest_asyncio.fixture
async def avatax(sandbox_url: str) -> AsyncIterator[AvataxTax]:
    connector = AvataxTax(
        f"{sandbox_url}/vendors/avatax",
        account_id=DEFAULT_ACCOUNT_ID,
        license_key=DEFAULT_LICENSE_KEY,
    )
    yield connector
    await connector.aclose()


def sale(code: str, *amounts: str) -> TaxRequest:
    return TaxRequest(
        code=code,
        type="SalesInvoice",
        company="UK01",
        on=date(2026, 10, 31),
        customer_code="GLOBEX-UK",
        ship_from_country="GB",
        ship_to_country="GB",
        currency="GBP",
        lines=[
            TaxLineRequest(number=str(i), amount=Decimal(a), tax_code="SV-PROFESSIONAL")
            for i, a in enumerate(amounts, 1)
        ],
    )


async def test_a_sale_made_adjusted_committed_refunded_once(avatax: AvataxTax) -> None:
    key = f"contract-T-{uuid.uuid4().hex}:invoice:milestone:M-kick-off"
    saved = await avatax.create_or_adjust(sale(key, "1000.00", "0.05"))
    assert (saved.status, saved.total_tax, saved.code) == (
        "Saved",
        Decimal("200.01"),
        document_code(key),
    )
    assert await avatax.create_or_adjust(sale(key, "1000.00", "0.05")) == saved
    adjusted = await avatax.create_or_adjust(sale(key, "1000.00"))
    assert adjusted.total_tax == Decimal("200.00")
    found = await avatax.get_document("UK01", key)
    assert found is not None and found.total_tax == Decimal("200.00")
    committed = await avatax.commit_document("UK01", key, idempotency_key=f"{key}:commit")
    assert committed.status == "Committed"
    refund_code = f"{key}:refund"
    refund = await avatax.refund_document(
        "UK01", key, refund_code=refund_code, on=date(2026, 11, 5)
    )
    assert (refund.type, refund.status, refund.total_tax) == (
        "ReturnInvoice",
        "Committed",
        Decimal("-200.00"),
    )
    # A retry (the first answer lost, however long ago) finds the return by its code.
    again = await avatax.refund_document("UK01", key, refund_code=refund_code, on=date(2026, 11, 5))
    assert again == refund


async def test_a_void_cancels_the_document(avatax: AvataxTax) -> None:
    key = f"contract-T-{uuid.uuid4().hex}:invoice:2026-10"
    await avatax.create_or_adjust(sale(key, "10.00"))
    voided = await avatax.void_document("UK01", key)
    assert voided.status == "Cancelled"
    assert await avatax.get_document("UK01", f"{key}-none") is None


async def test_addresses_resolve_to_a_tax_authority_or_name_the_part_at_fault(
    avatax: AvataxTax,
) -> None:
    assert await avatax.validate_address("GB", None)
    with pytest.raises(BusinessError) as missing_region:
        await avatax.validate_address("US", None)
    assert missing_region.value.rejection.field == "region"
    with pytest.raises(BusinessError) as unknown:
        await avatax.validate_address("ZZ", None)
    assert unknown.value.rejection.field == "country"


async def test_a_wrong_license_key_is_refused_in_avataxs_shape(
    sandbox_url: str, sandbox: httpx.AsyncClient
) -> None:
    wrong = AvataxTax(
        f"{sandbox_url}/vendors/avatax", account_id=DEFAULT_ACCOUNT_ID, license_key="nope"
    )
    with pytest.raises(BusinessError) as refused:
        await wrong.validate_address("GB", None)
    assert refused.value.rejection.code == "AuthenticationException"
    answer = await sandbox.post(
        "/vendors/avatax/api/v2/transactions/createoradjust",
        json={"createTransactionModel": {"code": "x"}},
        auth=(DEFAULT_ACCOUNT_ID, DEFAULT_LICENSE_KEY),
    )
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "ModelStateInvalid" and error["details"][0]["refersTo"]
