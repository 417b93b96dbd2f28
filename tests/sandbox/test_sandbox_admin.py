"""Test and demo control: reset, demo data and bulk seeding of time."""

from __future__ import annotations

from pathlib import Path

import httpx

from sandbox.testing import run_sandbox_in_thread
from tests.sandbox.support import (
    active_project,
    create_erp_contract,
    error,
    invoice_body,
    log_time,
    ok,
)


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


def _seed_entry(project_id: str, **changes: object) -> dict[str, object]:
    entry = {
        "project_id": project_id,
        "consultant_id": "ann",
        "role": "consultant",
        "work_date": "2026-10-05",
        "hours": "7.5",
        "billable": True,
        "approved": True,
    }
    return {**entry, **changes}


def test_bulk_seeded_time_is_stored_as_the_psa_route_stores_it(client: httpx.Client) -> None:
    project_id = active_project(client)
    one = ok(log_time(client, project_id, "2026-10-01"), 201)

    seeded = ok(
        client.post(
            "/_admin/seed/time-entries",
            json={
                "entries": [_seed_entry(project_id, work_date=f"2026-10-{d:02d}") for d in (2, 3)]
            },
        ),
        201,
    )

    assert seeded == {"created": 2, "entry_ids": ["TE-000002", "TE-000003"]}
    listed = ok(client.get(f"/psa/v1/projects/{project_id}/time-entries"))["items"]
    assert [e["entry_id"] for e in listed] == [one["entry_id"], "TE-000002", "TE-000003"]
    assert {k: v for k, v in listed[1].items() if k not in ("entry_id", "created_at")} == {
        **{k: v for k, v in one.items() if k not in ("entry_id", "created_at")},
        "work_date": "2026-10-02",
        "hours": "7.5",
    }
    # The sequence moved on: the next entry from the PSA route does not collide.
    assert ok(log_time(client, project_id, "2026-10-04"), 201)["entry_id"] == "TE-000004"


def test_a_refused_bulk_entry_names_its_field_and_seeds_nothing(client: httpx.Client) -> None:
    project_id = active_project(client)
    entries = [_seed_entry(project_id), _seed_entry(project_id, role="Astronaut")]

    refused = error(client.post("/_admin/seed/time-entries", json={"entries": entries}))
    unknown = error(
        client.post("/_admin/seed/time-entries", json={"entries": [_seed_entry("PSA-999999")]})
    )
    late = error(
        client.post(
            "/_admin/seed/time-entries",
            json={"entries": [_seed_entry(project_id, work_date="2027-02-01")]},
        )
    )

    assert (refused["code"], refused["field"]) == ("unknown_role", "entries.1.role")
    assert (unknown["code"], unknown["field"]) == ("unknown_project", "entries.0.project_id")
    assert (late["code"], late["field"]) == ("outside_project_dates", "entries.0.work_date")
    assert ok(client.get(f"/psa/v1/projects/{project_id}/time-entries"))["items"] == []
    assert error(client.post("/_admin/seed/time-entries", json={"entries": []}))["field"] == (
        "entries"
    )
