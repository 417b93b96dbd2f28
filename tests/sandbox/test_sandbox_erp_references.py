"""ERP: invoice references, functional-currency figures, and the rate table behind them."""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.sandbox.support import (
    create_erp_contract,
    create_invoice,
    error,
    invoice_body,
    ok,
)

DEMO_CURRENCIES = ("USD", "EUR", "GBP", "JPY")

#: Functional figures of a EUR invoice of 1500.00 + 108.75 tax booked by a GBP entity.
GBP_FIGURES = {
    "functional_currency": "GBP",
    "exchange_rate": "0.85",
    "functional_subtotal": "1275.00",
    "functional_tax": "92.44",
    "functional_total": "1367.44",
}


def test_a_reference_is_unique_per_contract_and_findable(client: httpx.Client) -> None:
    refs = create_erp_contract(client)
    other = create_erp_contract(client, "C-1002")
    advance = create_invoice(client, refs, reference="2026-10:advance")
    usage = create_invoice(client, refs, reference="2026-10")
    release = create_invoice(client, refs, period=None, reference="2026-10:release-1")
    elsewhere = create_invoice(client, other, reference="2026-10:advance")

    again = client.post(
        "/erp/v1/invoices", json=invoice_body(refs, period="2026-11", reference="2026-10:advance")
    )
    found = ok(
        client.get(
            "/erp/v1/invoices",
            params={"contract_id": refs.contract_id, "reference": "2026-10:advance"},
        )
    )["items"]

    assert [advance["reference"], usage["reference"], release["reference"]] == [
        "2026-10:advance",
        "2026-10",
        "2026-10:release-1",
    ]
    assert elsewhere["reference"] == "2026-10:advance"
    assert again.status_code == 409
    assert again.json()["existing_id"] == advance["invoice_id"]
    assert [i["invoice_id"] for i in found] == [advance["invoice_id"]]


def test_without_a_reference_the_period_or_milestone_is_the_key(client: httpx.Client) -> None:
    refs = create_erp_contract(client)
    monthly = create_invoice(client, refs, period="2026-10")
    milestone = create_invoice(client, refs, period="2026-10", milestone_id="M1")

    explicit_period = client.post(
        "/erp/v1/invoices", json=invoice_body(refs, period="2026-10", reference="2026-10")
    )
    explicit_milestone = client.post(
        "/erp/v1/invoices",
        json=invoice_body(refs, period=None, reference="milestone:M1"),
    )
    by_milestone = ok(
        client.get(
            "/erp/v1/invoices", params={"contract_id": refs.contract_id, "milestone_id": "M1"}
        )
    )["items"]

    assert (monthly["reference"], milestone["reference"]) == ("2026-10", "milestone:M1")
    assert explicit_period.json()["existing_id"] == monthly["invoice_id"]
    assert explicit_milestone.json()["existing_id"] == milestone["invoice_id"]
    assert [i["invoice_id"] for i in by_milestone] == [milestone["invoice_id"]]


def test_a_reference_is_a_key_not_free_text(client: httpx.Client) -> None:
    refs = create_erp_contract(client)

    refused = client.post("/erp/v1/invoices", json=invoice_body(refs, reference="Oct 2026"))

    assert error(refused)["field"] == "reference"


def test_functional_figures_are_stored_and_echoed(client: httpx.Client) -> None:
    refs = create_erp_contract(
        client, crm_account_id="GLOBEX-UK", legal_entity="UK01", currency="EUR"
    )

    invoice = create_invoice(client, refs, **GBP_FIGURES)
    unconverted = create_invoice(client, create_erp_contract(client, "C-USD"), period="2026-11")

    assert {k: invoice[k] for k in GBP_FIGURES} == GBP_FIGURES
    assert (invoice["credited_amount"], invoice["credit_applied"]) == ("0.00", "0.00")
    assert ok(client.get(f"/erp/v1/invoices/{invoice['invoice_id']}")) == invoice
    assert unconverted["functional_currency"] is None
    assert unconverted["functional_total"] is None


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"functional_tax": None}, "functional_tax", "functional_amounts_incomplete"),
        ({"exchange_rate": None}, "exchange_rate", "functional_amounts_incomplete"),
        ({"functional_currency": "EUR"}, "functional_currency", "functional_currency_mismatch"),
        ({"exchange_rate": "0"}, "exchange_rate", "invalid_rate"),
        ({"functional_subtotal": "1275.001"}, "functional_subtotal", "invalid_amount"),
        ({"functional_total": "1367.45"}, "functional_total", "total_mismatch"),
        ({"exchange_rate": 0.85}, "exchange_rate", "validation_error"),
    ],
)
def test_functional_figures_are_checked(
    client: httpx.Client, changes: dict[str, Any], field: str, code: str
) -> None:
    refs = create_erp_contract(
        client, crm_account_id="GLOBEX-UK", legal_entity="UK01", currency="EUR"
    )
    figures = {k: v for k, v in {**GBP_FIGURES, **changes}.items() if v is not None}

    refused = client.post("/erp/v1/invoices", json=invoice_body(refs, **figures))

    assert (error(refused)["field"], error(refused)["code"]) == (field, code)


def test_functional_amounts_keep_the_functional_currencys_minor_units(
    client: httpx.Client,
) -> None:
    ok(
        client.post(
            "/erp/v1/legal-entities",
            json={"code": "JP01", "name": "c2c KK", "country": "JP", "functional_currency": "JPY"},
        ),
        201,
    )
    refs = create_erp_contract(client, crm_account_id="UMBRELLA-JP", legal_entity="JP01")
    yen: dict[str, Any] = {
        "functional_currency": "JPY",
        "exchange_rate": "150.25",
        "functional_subtotal": "225375",
        "functional_tax": "16339",
        "functional_total": "241714",
    }

    fractional = client.post(
        "/erp/v1/invoices", json=invoice_body(refs, **{**yen, "functional_tax": "16339.50"})
    )
    accepted = create_invoice(client, refs, **yen)

    assert error(fractional)["field"] == "functional_tax"
    assert accepted["functional_total"] == "241714"


def test_a_weekend_takes_the_latest_rate_before_it(client: httpx.Client) -> None:
    friday = ok(
        client.get(
            "/erp/v1/exchange-rates", params={"from": "EUR", "to": "GBP", "date": "2026-10-30"}
        )
    )
    sunday = ok(
        client.get(
            "/erp/v1/exchange-rates", params={"from": "EUR", "to": "GBP", "date": "2026-11-01"}
        )
    )
    too_early = client.get(
        "/erp/v1/exchange-rates", params={"from": "USD", "to": "EUR", "date": "2023-12-31"}
    )

    assert (friday["date"], friday["rate_date"]) == ("2026-10-30", "2026-10-30")
    assert (sunday["date"], sunday["rate_date"]) == ("2026-11-01", "2026-10-30")
    assert sunday["rate"] == friday["rate"]
    assert too_early.status_code == 404


def test_demo_rates_cover_2025_to_2027_for_every_demo_pair(client: httpx.Client) -> None:
    days = [date(2025, 1, 1), date(2026, 6, 13), date(2027, 12, 31)]
    for (source, target), on in itertools.product(itertools.permutations(DEMO_CURRENCIES, 2), days):
        answer = ok(
            client.get(
                "/erp/v1/exchange-rates",
                params={"from": source, "to": target, "date": on.isoformat()},
            )
        )
        assert Decimal(answer["rate"]) > 0, (source, target, on)
        assert (on - date.fromisoformat(answer["rate_date"])).days <= 3
