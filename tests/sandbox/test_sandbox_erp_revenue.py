"""ERP: revenue entries on a contract and the balances derived from billing, revenue and cash."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.sandbox.support import (
    ErpContractRefs,
    create_erp_contract,
    create_invoice,
    error,
    issued_invoice,
    ok,
)


def entry(entry_id: str = "REV-2026-10", **changes: Any) -> dict[str, Any]:
    return {
        "entry_id": entry_id,
        "period": "2026-10",
        "amount": "1000.00",
        "method": "ratable",
        "description": "October of a twelve-month retainer",
        "recognised_on": "2026-10-31",
        **changes,
    }


def revenue_url(refs: ErpContractRefs) -> str:
    return f"/erp/v1/contracts/{refs.erp_contract_id}/revenue"


def test_a_revenue_entry_is_posted_once(client: httpx.Client) -> None:
    refs = create_erp_contract(client)
    headers = {"Idempotency-Key": "revenue-2026-10"}

    posted = ok(client.post(revenue_url(refs), json=entry(), headers=headers), 201)
    replayed = client.post(revenue_url(refs), json=entry(), headers=headers)
    repeated = client.post(revenue_url(refs), json=entry(amount="1000"))
    conflict = client.post(revenue_url(refs), json=entry(amount="999.00"))

    assert posted == {
        **posted,
        "entry_id": "REV-2026-10",
        "erp_contract_id": refs.erp_contract_id,
        "contract_id": refs.contract_id,
        "period": "2026-10",
        "amount": "1000.00",
        "currency": "USD",
        "method": "ratable",
        "recognised_on": "2026-10-31",
    }
    assert replayed.headers["Idempotent-Replayed"] == "true" and replayed.json() == posted
    assert repeated.status_code == 200 and repeated.json() == posted
    assert conflict.status_code == 409 and conflict.json()["existing_id"] == "REV-2026-10"
    stats = ok(client.get("/_admin/stats"))
    assert stats["writes"]["erp"]["POST /contracts/{erp_contract_id}/revenue"] == 1


def test_a_negative_entry_is_a_catch_up_within_what_was_recognised(
    client: httpx.Client,
) -> None:
    refs = create_erp_contract(client)
    ok(client.post(revenue_url(refs), json=entry()), 201)

    catch_up = ok(
        client.post(
            revenue_url(refs),
            json=entry(
                "REV-2026-11", period="2026-11", amount="-250.00", method="milestone_output"
            ),
        ),
        201,
    )
    too_far = client.post(
        revenue_url(refs), json=entry("REV-2026-12", period="2026-12", amount="-750.01")
    )
    listed = ok(client.get(revenue_url(refs), params={"limit": 1}))
    rest = ok(client.get(revenue_url(refs), params={"limit": 1, "cursor": listed["next"]}))
    november = ok(client.get(revenue_url(refs), params={"period": "2026-11"}))

    assert catch_up["amount"] == "-250.00"
    assert error(too_far) == {
        "code": "negative_revenue",
        "message": "revenue recognised to date is 750.00 USD; -750.01 would make it negative",
        "field": "amount",
    }
    assert [e["entry_id"] for e in listed["items"] + rest["items"]] == [
        "REV-2026-10",
        "REV-2026-11",
    ]
    assert rest["next"] is None
    assert [e["entry_id"] for e in november["items"]] == ["REV-2026-11"]


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"period": "2026-13"}, "period", "invalid_period"),
        ({"period": "October"}, "period", "invalid_period"),
        ({"amount": "10.001"}, "amount", "invalid_amount"),
        ({"amount": 10.5}, "amount", "validation_error"),
        ({"method": "percent_complete"}, "method", "validation_error"),
        ({"description": ""}, "description", "validation_error"),
        ({"recognised_on": "2026-02-30"}, "recognised_on", "validation_error"),
        ({"entry_id": None}, "entry_id", "validation_error"),
    ],
)
def test_revenue_rules_name_the_field(
    client: httpx.Client, changes: dict[str, Any], field: str, code: str
) -> None:
    refs = create_erp_contract(client)

    refused = client.post(revenue_url(refs), json=entry(**changes))

    assert (error(refused)["field"], error(refused)["code"]) == (field, code)


def test_revenue_of_an_unknown_contract_is_not_found(client: httpx.Client) -> None:
    assert client.post("/erp/v1/contracts/CTR-999999/revenue", json=entry()).status_code == 404
    assert client.get("/erp/v1/contracts/CTR-999999/revenue").status_code == 404
    assert client.get("/erp/v1/contracts/CTR-999999/balances").status_code == 404


def test_balances_follow_billing_revenue_credit_and_cash(client: httpx.Client) -> None:
    refs = create_erp_contract(client)
    url = f"/erp/v1/contracts/{refs.erp_contract_id}/balances"
    empty = ok(client.get(url))
    october = issued_invoice(client, refs, period="2026-10", amounts=("1000.00",), tax="80.00")
    issued_invoice(client, refs, period="2026-11", amounts=("500.00",), tax="40.00")
    create_invoice(client, refs, period="2026-12", amounts=("9999.00",), tax="0")  # a draft
    ok(client.post(revenue_url(refs), json=entry(amount="1200.00")), 201)
    ok(
        client.post(
            "/erp/v1/payments",
            json={
                "payment_id": "P-1",
                "invoice_id": october["invoice_id"],
                "amount": "1180.00",
                "currency": "USD",
                "received_on": "2026-11-20",
            },
        ),
        201,
    )
    ok(
        client.post(
            f"/erp/v1/invoices/{october['invoice_id']}/credit-notes",
            json={
                "credit_note_id": "CN-1",
                "reason": "Discount agreed after the fact",
                "lines": [
                    {
                        "line_id": "1",
                        "description": "Discount",
                        "amount": "100.00",
                        "tax_amount": "8.00",
                    }
                ],
                "subtotal": "100.00",
                "tax": "8.00",
                "total": "108.00",
            },
        ),
        201,
    )

    balances = ok(client.get(url))

    assert empty == {
        "contract_id": refs.contract_id,
        "erp_contract_id": refs.erp_contract_id,
        "currency": "USD",
        "billed_to_date": "0.00",
        "recognised_to_date": "0.00",
        "contract_asset": "0.00",
        "contract_liability": "0.00",
        "receivable": "0.00",
        "unapplied_cash": "0.00",
    }
    # Billed 1500 - 100 credited; recognised 1200. October's 1080 was paid 1180 (100 unapplied)
    # and credited 108 (all customer credit); November's 540 is open.
    assert balances == {
        **empty,
        "billed_to_date": "1400.00",
        "recognised_to_date": "1200.00",
        "contract_liability": "200.00",
        "receivable": "540.00",
        "unapplied_cash": "208.00",
    }


def test_revenue_ahead_of_billing_is_a_contract_asset(client: httpx.Client) -> None:
    refs = create_erp_contract(client, currency="JPY")
    issued_invoice(client, refs, amounts=("100000",), tax="10000")
    ok(client.post(revenue_url(refs), json=entry(amount="150000")), 201)

    balances = ok(client.get(f"/erp/v1/contracts/{refs.erp_contract_id}/balances"))

    assert (balances["contract_asset"], balances["contract_liability"]) == ("50000", "0")
    assert balances["receivable"] == "110000"
