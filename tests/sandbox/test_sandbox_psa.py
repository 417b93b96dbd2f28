"""PSA: project life cycle, time and expense rules, billing batches, milestones."""

from __future__ import annotations

import asyncio

import httpx

from tests.sandbox.support import PROJECT, active_project, log_time, ok


def test_project_life_cycle(client: httpx.Client) -> None:
    created = ok(client.post("/psa/v1/projects", json=PROJECT), 201)
    project_id = created["project_id"]
    duplicate = client.post("/psa/v1/projects", json=PROJECT)
    not_active = log_time(client, project_id, "2026-10-01")
    active = ok(client.post(f"/psa/v1/projects/{project_id}/activate"))
    active_again = ok(client.post(f"/psa/v1/projects/{project_id}/activate"))
    rates = ok(
        client.put(
            f"/psa/v1/projects/{project_id}/rate-card",
            json={"rate_card": [{"role": "architect", "hourly_rate": "210"}]},
        )
    )

    assert created["status"] == "draft"
    assert created["milestones"] == [
        {
            "milestone_id": "M1",
            "name": "Design",
            "amount": "5000.00",
            "due_date": None,
            "status": "open",
            "completed_on": None,
        },
    ]
    assert duplicate.status_code == 409 and duplicate.json()["existing_id"] == project_id
    assert not_active.json()["error"]["code"] == "project_not_active"
    assert active["status"] == active_again["status"] == "active"
    assert rates["rate_card"] == [{"role": "architect", "hourly_rate": "210"}]
    found = ok(client.get("/psa/v1/projects", params={"contract_id": "C-2001"}))["items"]
    assert [p["project_id"] for p in found] == [project_id]
    assert ok(client.post(f"/psa/v1/projects/{project_id}/close"))["status"] == "closed"


def test_time_entry_rules_name_the_field(client: httpx.Client) -> None:
    project_id = active_project(client)

    role = log_time(client, project_id, "2026-10-01", role="astronaut")
    zero = log_time(client, project_id, "2026-10-01", hours="0")
    too_long = log_time(client, project_id, "2026-10-01", hours="24.5")
    outside = log_time(client, project_id, "2027-01-04")
    created = ok(log_time(client, project_id, "2026-10-01", hours="24", notes="long day"), 201)

    assert [r.json()["error"]["field"] for r in (role, zero, too_long, outside)] == [
        "role",
        "hours",
        "hours",
        "work_date",
    ]
    assert created["entry_id"].startswith("TE-")
    assert (created["hours"], created["batch_id"], created["invoice_id"]) == ("24", None, None)


def test_billing_batch_freezes_approved_billable_work_once(client: httpx.Client) -> None:
    project_id = active_project(client)
    in_batch = [
        ok(log_time(client, project_id, "2026-10-01"), 201)["entry_id"],
        ok(log_time(client, project_id, "2026-10-02", hours="4.5"), 201)["entry_id"],
    ]
    unapproved = ok(log_time(client, project_id, "2026-10-03", approved=False), 201)
    ok(log_time(client, project_id, "2026-10-04", billable=False), 201)
    ok(log_time(client, project_id, "2026-11-02"), 201)
    expense = {
        "consultant_id": "ann",
        "incurred_on": "2026-10-05",
        "amount": "120.50",
        "currency": "USD",
        "category": "travel",
        "billable": True,
        "approved": True,
    }
    ok(client.post(f"/psa/v1/projects/{project_id}/expenses", json=expense), 201)
    batches = f"/psa/v1/projects/{project_id}/billing-batches"
    body = {"batch_id": "2026-10", "through_date": "2026-10-31", "include_expenses": True}

    batch = ok(client.post(batches, json=body), 201)
    ok(client.post(f"/psa/v1/projects/{project_id}/time-entries/{unapproved['entry_id']}/approve"))
    again = client.post(batches, json={**body, "through_date": "2026-11-30"})
    next_batch = ok(
        client.post(batches, json={**body, "batch_id": "2026-11", "through_date": "2026-11-30"}),
        201,
    )

    assert batch == {**again.json()}
    assert again.status_code == 200
    assert (batch["time_entry_count"], batch["expense_count"], batch["hours"]) == (2, 1, "12.5")
    assert (batch["status"], batch["invoice_id"]) == ("open", None)
    assert (next_batch["time_entry_count"], next_batch["hours"]) == (2, "16")
    entries = ok(
        client.get(f"/psa/v1/projects/{project_id}/time-entries", params={"batch_id": "2026-10"})
    )["items"]
    assert [e["entry_id"] for e in entries] == in_batch
    expenses = ok(client.get(f"/psa/v1/projects/{project_id}/expenses", params={"approved": True}))
    assert expenses["items"][0]["batch_id"] == "2026-10"


def test_invoicing_a_batch_marks_its_work_billed(client: httpx.Client) -> None:
    project_id = active_project(client)
    ok(log_time(client, project_id, "2026-10-01"), 201)
    ok(log_time(client, project_id, "2026-10-20"), 201)
    batches = f"/psa/v1/projects/{project_id}/billing-batches"
    ok(
        client.post(
            batches,
            json={"batch_id": "B1", "through_date": "2026-10-10", "include_expenses": False},
        ),
        201,
    )

    invoiced = ok(client.post(f"{batches}/B1/invoiced", json={"invoice_id": "INV-000001"}))
    again = ok(client.post(f"{batches}/B1/invoiced", json={"invoice_id": "INV-000001"}))
    other = client.post(f"{batches}/B1/invoiced", json={"invoice_id": "INV-000002"})

    assert invoiced["status"] == "invoiced" and invoiced["invoice_id"] == "INV-000001"
    assert again == invoiced
    assert other.status_code == 409 and other.json()["existing_id"] == "INV-000001"
    entries = f"/psa/v1/projects/{project_id}/time-entries"
    billed = ok(client.get(entries, params={"billed": True}))["items"]
    unbilled = ok(client.get(entries, params={"billed": False, "approved": True}))["items"]
    assert [e["invoice_id"] for e in billed] == ["INV-000001"]
    assert [e["work_date"] for e in unbilled] == ["2026-10-20"]
    assert ok(client.get(f"{batches}/B1")) == invoiced


async def test_concurrent_batches_never_share_an_entry(fresh_sandbox: str) -> None:
    with httpx.Client(base_url=fresh_sandbox) as client:
        project_id = active_project(client)
        for day in range(1, 21):
            ok(log_time(client, project_id, f"2026-10-{day:02d}", hours="1"), 201)
    batches = f"/psa/v1/projects/{project_id}/billing-batches"
    async with httpx.AsyncClient(base_url=fresh_sandbox) as http:
        answers = await asyncio.gather(
            *(
                http.post(
                    batches,
                    json={
                        "batch_id": f"B{i}",
                        "through_date": "2026-10-31",
                        "include_expenses": True,
                    },
                )
                for i in range(6)
            )
        )

    counts = [a.json()["time_entry_count"] for a in answers]
    assert all(a.status_code == 201 for a in answers)
    assert sorted(counts) == [0, 0, 0, 0, 0, 20]


def test_milestone_completion_sends_one_webhook(client: httpx.Client) -> None:
    project_id = active_project(client)
    url = f"/psa/v1/projects/{project_id}/milestones/M1/complete"

    completed = ok(client.post(url, json={"completed_on": "2026-10-15"}))
    again = ok(client.post(url, json={"completed_on": "2026-10-16"}))
    unknown = client.post(
        f"/psa/v1/projects/{project_id}/milestones/M9/complete", json={"completed_on": "2026-10-15"}
    )

    assert completed["status"] == "completed" and completed["completed_on"] == "2026-10-15"
    assert again == completed
    assert unknown.status_code == 404
    deliveries = ok(client.get("/_admin/webhooks", params={"type": "milestone.completed"}))
    assert len(deliveries["items"]) == 1
    assert deliveries["items"][0]["payload"]["data"] == {
        "contract_id": "C-2001",
        "psa_project_id": project_id,
        "milestone_id": "M1",
        "completed_on": "2026-10-15",
    }
