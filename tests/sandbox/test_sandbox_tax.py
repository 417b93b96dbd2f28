"""Tax engine: jurisdictions by address and per-line rounding in the currency's minor unit."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.sandbox.support import ok


def calculate(
    client: httpx.Client, customer: dict[str, Any], currency: str, *amounts: str
) -> httpx.Response:
    return client.post(
        "/tax/v1/calculate",
        json={
            "document_id": "INV-1",
            "customer": customer,
            "legal_entity": "US01",
            "currency": currency,
            "date": "2026-10-31",
            "lines": [{"line_id": f"L{i}", "amount": a} for i, a in enumerate(amounts, 1)],
        },
    )


def test_jpy_tax_is_rounded_half_up_to_whole_yen(client: httpx.Client) -> None:
    result = ok(calculate(client, {"country": "JP"}, "JPY", "10005", "333", "15"))

    assert result["jurisdiction_code"] == "JP" and result["rate"] == "0.10"
    assert [line["tax_amount"] for line in result["lines"]] == ["1001", "33", "2"]
    assert result["total_tax"] == "1036"
    assert result["lines"][0] == {
        "line_id": "L1",
        "taxable_amount": "10005",
        "rate": "0.10",
        "tax_amount": "1001",
    }


def test_eur_tax_is_rounded_per_line_then_summed(client: httpx.Client) -> None:
    result = ok(calculate(client, {"country": "DE"}, "EUR", "100.05", "0.05", "0.05"))

    # 19.0095 → 19.01 and 0.0095 → 0.01 twice: per line, not 0.0285 rounded once.
    assert [line["tax_amount"] for line in result["lines"]] == ["19.01", "0.01", "0.01"]
    assert result["total_tax"] == "19.03"


def test_us_state_rates(client: httpx.Client) -> None:
    ny = ok(calculate(client, {"country": "US", "region": "NY"}, "USD", "1000.00"))
    other_state = ok(calculate(client, {"country": "US", "region": "WA"}, "USD", "1000.00"))

    assert (ny["jurisdiction_code"], ny["total_tax"]) == ("US-NY", "88.75")
    assert (other_state["jurisdiction_code"], other_state["total_tax"]) == ("US", "0.00")


@pytest.mark.parametrize(
    ("address", "field"),
    [
        ({"country": "US"}, "region"),
        ({"country": "CA"}, "region"),
        ({"country": "CA", "region": "BC"}, "region"),
        ({"country": "BR"}, "country"),
    ],
)
def test_addresses_that_name_no_jurisdiction(
    client: httpx.Client, address: dict[str, str], field: str
) -> None:
    validated = client.post("/tax/v1/addresses/validate", json=address)
    calculated = calculate(client, address, "USD", "1.00")

    assert validated.status_code == calculated.status_code == 422
    assert validated.json()["error"]["code"] == "unknown_jurisdiction"
    assert validated.json()["error"]["field"] == field
    assert calculated.json()["error"]["field"] == f"customer.{field}"


def test_valid_address_and_jurisdiction_list(client: httpx.Client) -> None:
    valid = ok(client.post("/tax/v1/addresses/validate", json={"country": "CA", "region": "ON"}))
    us = ok(client.get("/tax/v1/jurisdictions", params={"country": "US"}))

    assert valid == {"valid": True, "jurisdiction_code": "CA-ON"}
    assert [j["code"] for j in us["items"]] == ["US-CA", "US-NY", "US-TX", "US"]
    assert us["items"][0]["rate"] == "0.0725"


def test_amounts_beyond_the_minor_unit_are_refused(client: httpx.Client) -> None:
    refused = calculate(client, {"country": "JP"}, "JPY", "100", "100.5")

    assert refused.status_code == 422
    assert refused.json()["error"]["field"] == "lines.1.amount"


def test_the_tax_engine_shares_no_code_with_c2cs_domain() -> None:
    """The engine stands in for another company's system: its rounding and rates are its own,
    so that where c2c and the engine both compute, they can disagree."""
    import ast
    from pathlib import Path

    import sandbox

    root = Path(sandbox.__file__).parent
    for module in ("tax.py", "tax_documents.py"):
        tree = ast.parse((root / module).read_text())
        imported = {
            node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
        } | {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        assert not {name for name in imported if name.split(".")[0] == "domain"}, module


def test_the_engine_rounds_half_up_by_its_own_rules(client: httpx.Client) -> None:
    # 0.05 at 10 % is 0.005: half-up to 0.01; 0.04 gives 0.004: down to 0.00.
    result = ok(calculate(client, {"country": "JP"}, "USD", "0.05", "0.04"))
    assert [line["tax_amount"] for line in result["lines"]] == ["0.01", "0.00"]
    refused = calculate(client, {"country": "JP"}, "JPY", "10.5")
    assert refused.status_code == 422
    assert refused.json()["error"]["field"] == "lines.0.amount"
