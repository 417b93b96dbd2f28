"""Test and demo control: reset and demo data."""

from __future__ import annotations

from pathlib import Path

import httpx

from sandbox.testing import run_sandbox_in_thread
from tests.sandbox.support import create_erp_contract, invoice_body, ok


def test_reset_empties_the_systems_and_reloads_the_demo_data(client: httpx.Client) -> None:
    refs = create_erp_contract(client)
    ok(client.post("/erp/v1/invoices", json=invoice_body(refs)), 201)
    client.post("/_admin/faults", json={"system": "crm", "status": 503, "probability": 0})
    ok(
        client.post("/crm/v1/accounts/ACME-US/activities", json={"type": "call", "subject": "x"}),
        201,
    )

    reset = ok(client.post("/_admin/reset"))

    assert reset == {"reset": True, "demo_data": True}
    assert ok(client.get("/erp/v1/invoices"))["items"] == []
    assert ok(client.get("/erp/v1/customers"))["items"] == []
    assert ok(client.get("/_admin/faults")) == {"rules": []}
    assert ok(client.get("/crm/v1/accounts/ACME-US/activities"))["items"] == []
    assert len(ok(client.get("/crm/v1/accounts"))["items"]) == 6
    assert ok(client.get("/crm/v1/accounts/DORMANT-CO"))["status"] == "inactive"
    assert [e["code"] for e in ok(client.get("/erp/v1/legal-entities"))["items"]] == [
        "US01",
        "UK01",
        "DE01",
    ]
    stats = ok(client.get("/_admin/stats"))
    assert stats["writes"] == {} and stats["faults_fired"] == 0
    # Numbering starts again, as in a fresh system.
    assert create_erp_contract(client).customer_id == "CUST-000001"


def test_a_new_database_without_demo_data_starts_empty(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    with (
        run_sandbox_in_thread(url, "http://127.0.0.1:9", [], load_demo=False) as base_url,
        httpx.Client(base_url=base_url) as client,
    ):
        assert ok(client.get("/crm/v1/accounts"))["items"] == []
        assert ok(client.post("/_admin/reset"))["demo_data"] is False
