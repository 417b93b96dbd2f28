"""Tax documents shaped after AvaTax: create or adjust by code, commit, refund at the sale's tax
date, void; reverse charge of a cross-border B2B sale; rate changes by date."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.sandbox.support import ok

TRANSACTIONS = "/tax/v1/companies/US01/transactions"


def sale(code: str = "INV-1", **changes: Any) -> dict[str, Any]:
    model: dict[str, Any] = {
        "code": code,
        "type": "SalesInvoice",
        "companyCode": "US01",
        "date": "2026-10-31",
        "customerCode": "ACME-US",
        "addresses": {
            "shipFrom": {"country": "US", "region": "NY"},
            "shipTo": {"country": "US", "region": "CA"},
        },
        "lines": [
            {"number": "1", "amount": "1645.55", "taxCode": "SV-PROFESSIONAL"},
            {"number": "2", "amount": "1645.56", "taxCode": "SV-PROFESSIONAL"},
        ],
        "commit": False,
        "currencyCode": "USD",
    }
    return model | changes


def create(client: httpx.Client, model: dict[str, Any], **extra: Any) -> httpx.Response:
    return client.post(
        "/tax/v1/transactions/createoradjust", json={"createTransactionModel": model, **extra}
    )


def made(response: httpx.Response) -> Any:
    """The document a create-or-adjust made (201) or adjusted (200)."""
    assert response.status_code in (200, 201), response.text
    return response.json()


def test_a_document_is_created_once_by_its_code_then_adjusted(client: httpx.Client) -> None:
    created = create(client, sale())
    assert created.status_code == 201, created.text
    doc = created.json()
    # 7.25 % of each line, rounded half-up: 119.302375 → 119.30 and 119.3031 → 119.30.
    assert (doc["status"], doc["version"], doc["totalAmount"], doc["totalTax"]) == (
        "Saved",
        1,
        "3291.11",
        "238.60",
    )
    assert [line["tax"] for line in doc["lines"]] == ["119.30", "119.30"]
    assert doc["lines"][0]["details"][0]["rate"] == "0.0725"

    again = create(client, sale())
    assert (again.status_code, again.json()["version"]) == (200, 1)

    one_line = sale(lines=[{"number": "1", "amount": "3291.11"}])
    adjusted = made(create(client, one_line, adjustmentReason="PriceAdjusted"))
    # One line: 238.605475 → 238.61, a cent more than the two lines.
    assert (adjusted["version"], adjusted["totalTax"]) == (2, "238.61")
    assert adjusted["adjustmentReason"] == "PriceAdjusted"
    assert ok(client.get(f"{TRANSACTIONS}/INV-1"))["totalTax"] == "238.61"
    listed = ok(client.get(TRANSACTIONS))["items"]
    assert [d["code"] for d in listed] == ["INV-1"]


def test_commit_then_void(client: httpx.Client) -> None:
    made(create(client, sale()))
    committed = ok(client.post(f"{TRANSACTIONS}/INV-1/commit", json={"commit": True}))
    assert committed["status"] == "Committed"
    assert ok(client.post(f"{TRANSACTIONS}/INV-1/commit", json={"commit": True}))["version"] == 1

    voided = ok(client.post(f"{TRANSACTIONS}/INV-1/void", json={"code": "DocVoided"}))
    assert voided["status"] == "Cancelled"
    again = ok(client.post(f"{TRANSACTIONS}/INV-1/void", json={"code": "DocVoided"}))
    assert again["status"] == "Cancelled"
    refused = client.post(f"{TRANSACTIONS}/INV-1/commit", json={"commit": True})
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "transaction_cancelled"
    adjust = create(client, sale())
    assert adjust.status_code == 422
    missing = client.post(f"{TRANSACTIONS}/NOPE/void", json={"code": "DocVoided"})
    assert missing.status_code == 404


def test_a_return_is_taxed_at_the_sales_tax_date(client: httpx.Client) -> None:
    made(create(client, sale(commit=True)))
    raised = client.post(
        "/tax/v1/jurisdictions/US-CA/rates", json={"effective_from": "2026-11-01", "rate": "0.08"}
    )
    assert raised.status_code == 201, raised.text
    line = [{"number": "1", "amount": "-100.00"}]
    on_its_own_date = made(
        create(client, sale("CN-1", type="ReturnInvoice", date="2026-11-20", lines=line))
    )
    at_the_sales_date = made(
        create(
            client,
            sale(
                "CN-2",
                type="ReturnInvoice",
                date="2026-11-20",
                lines=line,
                referenceCode="INV-1",
                taxOverride={"type": "TaxDate", "taxDate": "2026-10-31", "reason": "credit"},
            ),
        )
    )
    assert on_its_own_date["totalTax"] == "-8.00"
    assert at_the_sales_date["totalTax"] == "-7.25"
    assert (at_the_sales_date["date"], at_the_sales_date["taxDate"]) == ("2026-11-20", "2026-10-31")
    assert at_the_sales_date["referenceCode"] == "INV-1"


def test_a_line_tax_amount_override_is_kept_beside_the_engines_figure(
    client: httpx.Client,
) -> None:
    line = {
        "number": "1",
        "amount": "-3291.01",
        "taxOverride": {"type": "TaxAmount", "taxAmount": "-238.59", "reason": "last credit"},
    }
    doc = made(create(client, sale("CN-9", type="ReturnInvoice", lines=[line])))
    assert (doc["lines"][0]["tax"], doc["lines"][0]["taxCalculated"]) == ("-238.59", "-238.60")
    assert doc["lines"][0]["taxOverrideType"] == "TaxAmount"


@pytest.mark.parametrize(
    ("refund", "amounts", "tax"),
    [
        ({"refundType": "Full"}, ["-1645.55", "-1645.56"], "-238.60"),
        ({"refundType": "Partial", "refundLines": ["2"]}, ["-1645.56"], "-119.30"),
        ({"refundType": "Percentage", "refundPercentage": 10}, ["-164.56", "-164.56"], "-23.86"),
        ({"refundType": "TaxOnly"}, ["0.00", "0.00"], "-238.60"),
    ],
)
def test_refunds(
    client: httpx.Client, refund: dict[str, Any], amounts: list[str], tax: str
) -> None:
    made(create(client, sale(commit=True)))
    body = {"refundTransactionCode": "RET-1", "refundDate": "2026-11-20", **refund}
    refunded = client.post(f"{TRANSACTIONS}/INV-1/refund", json=body)
    assert refunded.status_code == 201, refunded.text
    doc = refunded.json()
    assert (doc["type"], doc["status"], doc["referenceCode"]) == (
        "ReturnInvoice",
        "Committed",
        "INV-1",
    )
    assert doc["taxDate"] == "2026-10-31" and doc["date"] == "2026-11-20"
    assert [line["lineAmount"] for line in doc["lines"]] == amounts
    assert doc["totalTax"] == tax
    again = client.post(f"{TRANSACTIONS}/INV-1/refund", json=body)
    assert (again.status_code, again.json()["id"]) == (200, doc["id"])


def test_only_a_committed_sale_is_refunded(client: httpx.Client) -> None:
    made(create(client, sale()))
    body = {"refundTransactionCode": "RET-1", "refundDate": "2026-11-20", "refundType": "Full"}
    refused = client.post(f"{TRANSACTIONS}/INV-1/refund", json=body)
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "not_refundable"


GERMAN_CUSTOMER = {"shipFrom": {"country": "US", "region": "NY"}, "shipTo": {"country": "DE"}}


@pytest.mark.parametrize(
    ("ship_from", "vat_number", "tax", "reverse"),
    [
        ("US", "DE123456789", "0.00", True),
        ("US", None, "190.00", False),
        ("US", "DE12", "190.00", False),
        ("US", "FR12345678901", "190.00", False),
        ("DE", "DE123456789", "190.00", False),
    ],
)
def test_reverse_charge_of_a_cross_border_b2b_sale(
    client: httpx.Client, ship_from: str, vat_number: str | None, tax: str, reverse: bool
) -> None:
    model = sale(
        currencyCode="EUR",
        businessIdentificationNo=vat_number,
        addresses={"shipFrom": {"country": ship_from}, "shipTo": {"country": "DE"}},
        lines=[{"number": "1", "amount": "1000.00"}],
    )
    doc = made(create(client, model))
    assert doc["totalTax"] == tax
    messages = [m["content"] for m in doc["invoiceMessages"]]
    if reverse:
        assert messages == [
            "Reverse charge: VAT to be accounted for by the recipient "
            "(Art. 196 Council Directive 2006/112/EC)"
        ]
        assert doc["lines"][0]["details"][0]["rate"] == "0"
    else:
        assert messages == []


def test_amounts_as_json_numbers_are_read_exactly(client: httpx.Client) -> None:
    doc = made(create(client, sale(lines=[{"number": "1", "amount": 3291.11}])))
    assert (doc["totalAmount"], doc["totalTax"]) == ("3291.11", "238.61")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"currencyCode": "JPY", "lines": [{"number": "1", "amount": "10.5"}]}, "lines.0.amount"),
        ({"addresses": {"shipTo": {"country": "US"}}}, "addresses.shipTo.region"),
        ({"code": "X" * 51}, "createTransactionModel.code"),
        (
            {"taxOverride": {"type": "TaxDate", "reason": "credit"}},
            "taxOverride.taxDate",
        ),
    ],
)
def test_bad_documents_name_the_field(
    client: httpx.Client, change: dict[str, Any], field: str
) -> None:
    refused = create(client, sale(**change))
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["field"] == field
    assert ok(client.get(TRANSACTIONS))["items"] == []
