"""PSA: what an amendment changes in a project (dates, milestones, effective-dated rates), and
the paging of a billing batch's work."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.sandbox.support import PROJECT, active_project, error, log_time, ok


def project_id_of(client: httpx.Client) -> str:
    project_id: str = ok(client.post("/psa/v1/projects", json=PROJECT), 201)["project_id"]
    return project_id


def test_the_end_date_moves_but_not_before_the_start(client: httpx.Client) -> None:
    project_id = project_id_of(client)
    url = f"/psa/v1/projects/{project_id}"

    extended = ok(client.patch(url, json={"end_date": "2027-03-31"}))
    unchanged = ok(client.patch(url, json={}))
    before_start = client.patch(url, json={"end_date": "2026-08-31"})
    unknown_field = client.patch(url, json={"start_date": "2026-01-01"})
    missing = client.patch("/psa/v1/projects/PSA-999999", json={"end_date": "2027-03-31"})

    assert (extended["start_date"], extended["end_date"]) == ("2026-09-01", "2027-03-31")
    assert unchanged == extended
    assert (error(before_start)["field"], error(before_start)["code"]) == (
        "end_date",
        "invalid_dates",
    )
    assert error(unknown_field)["field"] == "start_date"
    assert missing.status_code == 404
    assert ok(client.get(url))["end_date"] == "2027-03-31"


def test_milestones_are_added_once(client: httpx.Client) -> None:
    project_id = project_id_of(client)
    url = f"/psa/v1/projects/{project_id}/milestones"
    body = {
        "milestones": [
            {"milestone_id": "M2", "name": "Build", "amount": "8000.00", "due_date": "2026-11-30"},
            {"milestone_id": "M3", "name": "Launch", "amount": "2000.00"},
        ]
    }
    headers = {"Idempotency-Key": "amendment-A-1:psa-milestones"}

    added = ok(client.post(url, json=body, headers=headers), 201)
    replayed = client.post(url, json=body, headers=headers)
    again_unkeyed = client.post(url, json=body)
    first_page = ok(client.get(url, params={"limit": 2}))
    second_page = ok(client.get(url, params={"limit": 2, "cursor": first_page["next"]}))

    assert [m["milestone_id"] for m in added["milestones"]] == ["M1", "M2", "M3"]
    assert added["milestones"][1] == {
        "milestone_id": "M2",
        "name": "Build",
        "amount": "8000.00",
        "due_date": "2026-11-30",
        "status": "open",
        "completed_on": None,
    }
    assert replayed.status_code == 201 and replayed.json() == added
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert (error(again_unkeyed)["field"], error(again_unkeyed)["code"]) == (
        "milestones.0.milestone_id",
        "milestone_exists",
    )
    assert [m["milestone_id"] for m in first_page["items"]] == ["M1", "M2"]
    assert [m["milestone_id"] for m in second_page["items"]] == ["M3"]
    assert second_page["next"] is None


@pytest.mark.parametrize(
    ("milestones", "field"),
    [
        ([], "milestones"),
        ([{"milestone_id": "M2", "name": "B", "amount": "0"}], "milestones.0.amount"),
        (
            [
                {"milestone_id": "M2", "name": "B", "amount": "1.00"},
                {"milestone_id": "M2", "name": "C", "amount": "1.00"},
            ],
            "milestones.1.milestone_id",
        ),
    ],
)
def test_added_milestones_are_checked(
    client: httpx.Client, milestones: list[dict[str, Any]], field: str
) -> None:
    project_id = project_id_of(client)

    refused = client.post(
        f"/psa/v1/projects/{project_id}/milestones", json={"milestones": milestones}
    )

    assert error(refused)["field"] == field
    project = ok(client.get(f"/psa/v1/projects/{project_id}"))
    assert [m["milestone_id"] for m in project["milestones"]] == ["M1"]


def test_dated_rates_are_kept_as_revisions(client: httpx.Client) -> None:
    project_id = active_project(client)
    url = f"/psa/v1/projects/{project_id}/rate-card"
    raise_rates = {
        "rate_card": [
            {"role": "consultant", "hourly_rate": "165.00", "effective_from": "2026-11-01"},
            {"role": "architect", "hourly_rate": "210.00", "effective_from": "2026-11-01"},
        ]
    }
    correction = {
        "rate_card": [
            {"role": "consultant", "hourly_rate": "170.00", "effective_from": "2026-11-01"}
        ]
    }

    raised = ok(client.put(url, json=raise_rates))
    corrected = ok(client.put(url, json=correction))
    architect_time = log_time(client, project_id, "2026-11-02", role="architect")

    assert raised["rate_card"] == raise_rates["rate_card"]
    assert raised["rate_revisions"] == [
        {"role": "consultant", "hourly_rate": "150.00"},
        *raise_rates["rate_card"],
    ]
    assert corrected["rate_card"] == [
        {"role": "consultant", "hourly_rate": "170.00", "effective_from": "2026-11-01"},
        {"role": "architect", "hourly_rate": "210.00", "effective_from": "2026-11-01"},
    ]
    assert [r["hourly_rate"] for r in corrected["rate_revisions"]] == ["150.00", "210.00", "170.00"]
    assert architect_time.status_code == 201


@pytest.mark.parametrize(
    ("rates", "field", "code"),
    [
        (
            [
                {"role": "consultant", "hourly_rate": "165", "effective_from": "2026-11-01"},
                {"role": "architect", "hourly_rate": "210"},
            ],
            "rate_card.1.effective_from",
            "invalid_rate_card",
        ),
        (
            [{"role": "consultant", "hourly_rate": "165", "effective_from": "2026-08-01"}],
            "rate_card.0.effective_from",
            "invalid_dates",
        ),
        (
            [
                {"role": "consultant", "hourly_rate": "165", "effective_from": "2026-11-01"},
                {"role": "consultant", "hourly_rate": "166", "effective_from": "2026-11-01"},
            ],
            "rate_card.1.effective_from",
            "duplicate_key",
        ),
        (
            [{"role": "consultant", "hourly_rate": "165.001", "effective_from": "2026-11-01"}],
            "rate_card.0.hourly_rate",
            "invalid_amount",
        ),
    ],
)
def test_dated_rates_are_checked(
    client: httpx.Client, rates: list[dict[str, Any]], field: str, code: str
) -> None:
    project_id = project_id_of(client)

    refused = client.put(f"/psa/v1/projects/{project_id}/rate-card", json={"rate_card": rates})

    assert (error(refused)["field"], error(refused)["code"]) == (field, code)


def test_a_batch_pages_its_work_in_creation_order(client: httpx.Client) -> None:
    project_id = active_project(client)
    created = [
        ok(log_time(client, project_id, f"2026-10-{day:02d}", hours="1"), 201)["entry_id"]
        for day in (9, 3, 7, 1, 5)
    ]
    expenses_url = f"/psa/v1/projects/{project_id}/expenses"
    expense = {
        "consultant_id": "ann",
        "incurred_on": "2026-10-05",
        "category": "travel",
        "billable": True,
        "approved": True,
    }
    ok(client.post(expenses_url, json={**expense, "amount": "120.50", "currency": "EUR"}), 201)
    ok(client.post(expenses_url, json={**expense, "amount": "9000", "currency": "JPY"}), 201)
    ok(client.post(expenses_url, json={**expense, "amount": "40.00", "currency": "USD"}), 201)
    ok(
        client.post(
            f"/psa/v1/projects/{project_id}/billing-batches",
            json={"batch_id": "B-10", "through_date": "2026-10-31", "include_expenses": True},
        ),
        201,
    )

    def all_pages(url: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"batch_id": "B-10", "limit": 2}
            if cursor:
                params["cursor"] = cursor
            page = ok(client.get(url, params=params))
            items.extend(page["items"])
            if not (cursor := page["next"]):
                return items

    entries = all_pages(f"/psa/v1/projects/{project_id}/time-entries")
    expenses = all_pages(expenses_url)

    assert [e["entry_id"] for e in entries] == created
    assert [e["entry_id"] for e in all_pages(f"/psa/v1/projects/{project_id}/time-entries")] == (
        created
    )
    assert [(e["amount"], e["currency"]) for e in expenses] == [
        ("120.50", "EUR"),
        ("9000", "JPY"),
        ("40.00", "USD"),
    ]


def test_a_milestone_changes_and_is_removed(client: httpx.Client) -> None:
    project_id = project_id_of(client)
    url = f"/psa/v1/projects/{project_id}/milestones"
    ok(
        client.post(
            url, json={"milestones": [{"milestone_id": "M2", "name": "B", "amount": "1.00"}]}
        ),
        201,
    )

    changed = ok(client.patch(f"{url}/M1", json={"amount": "7500.00", "due_date": "2026-11-30"}))
    bad_amount = client.patch(f"{url}/M1", json={"amount": "1.001"})
    unknown = client.patch(f"{url}/M9", json={"name": "Nothing"})
    removed = ok(client.delete(f"{url}/M2"))
    removed_again = client.delete(f"{url}/M2")

    assert changed["milestones"][0] == {
        "milestone_id": "M1",
        "name": "Design",
        "amount": "7500.00",
        "due_date": "2026-11-30",
        "status": "open",
        "completed_on": None,
    }
    assert error(bad_amount)["field"] == "amount"
    assert unknown.status_code == 404
    assert [m["milestone_id"] for m in removed["milestones"]] == ["M1"]
    assert removed_again.status_code == 404


def test_time_entry_closes_after_a_day(client: httpx.Client) -> None:
    project_id = active_project(client)
    url = f"/psa/v1/projects/{project_id}"

    closed = ok(client.patch(url, json={"time_entry_end_date": "2026-10-20"}))
    on_the_day = log_time(client, project_id, "2026-10-20")
    after = log_time(client, project_id, "2026-10-21")
    before_start = client.patch(url, json={"time_entry_end_date": "2026-08-31"})

    assert (closed["end_date"], closed["time_entry_end_date"]) == ("2026-12-31", "2026-10-20")
    assert on_the_day.status_code == 201
    assert after.status_code == 422
    assert (error(after)["field"], error(after)["code"]) == ("work_date", "time_entry_closed")
    assert "closed after 2026-10-20" in error(after)["message"]
    assert error(before_start)["field"] == "time_entry_end_date"
