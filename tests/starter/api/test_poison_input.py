"""Webhook bodies a careless or hostile sender may send, over real HTTP: each is refused with
a ``4xx`` that names the problem, kept as a dead letter, and never answered ``500``."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import httpx
import pytest

from c2c.json_input import MAX_DEPTH, JsonTooDeep, depth_of, loads
from c2c.settings import Settings
from ledger import InboundEvent, Ledger, get_ledger
from tests.starter.helpers import approval, signed
from tests.support import WEBHOOK_SECRET

CLM = "/webhooks/clm"
PSA = "/webhooks/psa"
PAYMENTS = "/webhooks/payments"


@pytest.fixture(scope="module")
def inbound(api_settings: Settings) -> Ledger:
    """The ledger of the API under test, read directly."""
    return get_ledger(api_settings.ledger_url)


def new_event_id() -> str:
    return f"evt_{uuid.uuid4().hex[:12]}"


async def send(api: httpx.AsyncClient, path: str, body: bytes) -> httpx.Response:
    return await api.post(path, content=body, headers=signed(body, WEBHOOK_SECRET))


def stored(ledger: Ledger, source: str, event_id: str) -> InboundEvent:
    found = ledger.get_inbound_event(source, event_id)
    assert found is not None, f"{source} event {event_id} was not recorded"
    return found


def nested(levels: int, kind: str = "[") -> str:
    close = "]" if kind == "[" else "}"
    opener = "[" if kind == "[" else '{"a":'
    return opener * levels + "1" + close * levels


# Deep nesting.


def test_the_reader_counts_depth_without_recursion() -> None:
    assert depth_of(1) == 0 and depth_of([]) == 1 and depth_of({"a": [{"b": []}]}) == 4
    assert loads(nested(MAX_DEPTH)) is not None
    for levels in (MAX_DEPTH + 1, 1_100, 100_000):
        with pytest.raises(JsonTooDeep):
            loads(nested(levels))


@pytest.mark.parametrize("path", [CLM, PSA, PAYMENTS])
@pytest.mark.parametrize("where", ["data", "extra"])
async def test_a_deeply_nested_body_is_refused_and_kept_as_a_dead_letter(
    api: httpx.AsyncClient, inbound: Ledger, path: str, where: str
) -> None:
    event_id = new_event_id()
    kind = {CLM: "contract.approved", PSA: "milestone.completed", PAYMENTS: "payment.succeeded"}[
        path
    ]
    deep = nested(1_100, "[" if where == "data" else "{")
    data = deep if where == "data" else json.dumps({"contract_id": "C-1"})[:-1] + f', "x": {deep}}}'
    body = f'{{"id": "{event_id}", "type": "{kind}", "data": {data}}}'.encode()
    assert len(body) < 8_000
    response = await send(api, path, body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "json_too_deep"
    assert f"more than {MAX_DEPTH} levels" in error["message"]
    # Its id could not be read from a body too deep to parse: it is kept under its digest.
    [dead] = [
        e
        for e in inbound.list_inbound_events(status="dead_letter", source=path.rsplit("/", 1)[1])
        if e.body == body.decode()
    ]
    assert dead.reason is not None and dead.reason.startswith("json_too_deep:")


async def test_a_deep_flash_cookie_is_ignored(api: httpx.AsyncClient) -> None:
    value = base64.urlsafe_b64encode(nested(1_100).encode()).decode().rstrip("=")
    response = await api.get("/", headers={"Cookie": f"c2c_flash={value}"})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "path", ["/api/contracts/C-1/amendments", "/api/billing/close-period", "/codec/decode"]
)
async def test_a_deeply_nested_api_body_is_a_client_error(
    api: httpx.AsyncClient, path: str
) -> None:
    body = nested(1_100, "{")
    response = await api.post(path, content=body, headers={"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500, response.text


# Numbers where dates belong.

NOT_DATES = [0, 1_700_000_000, "1700000000", 1.5, True, "2026-10-31T00:00:00", "31/10/2026"]


def error_fields(response: httpx.Response) -> str:
    return json.dumps(response.json())


@pytest.mark.parametrize("value", NOT_DATES)
async def test_a_termination_date_must_be_an_iso_date(
    api: httpx.AsyncClient, value: object
) -> None:
    response = await api.post(
        "/api/contracts/C-never-started/terminate",
        json={"effective_date": value, "reason": "customer ended the SOW"},
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == "effective_date"
    assert "ISO 8601 date" in error["message"]


@pytest.mark.parametrize(
    "field", ["start_date", "end_date", "approved_at", "milestones.0.due_date"]
)
@pytest.mark.parametrize("value", [0, 1_700_000_000, "1700000000"])
async def test_an_approval_with_a_number_for_a_date_is_refused_and_kept(
    api: httpx.AsyncClient, inbound: Ledger, field: str, value: object
) -> None:
    data = approval()
    data["milestones"] = [{"milestone_id": "M1", "name": "Kick-off", "amount": "10.00"}]
    target: Any = data
    *path, last = field.split(".")
    for part in path:
        target = target[int(part)] if part.isdigit() else target[part]
    target[last] = value
    event_id = new_event_id()
    body = json.dumps({"id": event_id, "type": "contract.approved", "data": data}).encode()
    response = await send(api, CLM, body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == f"data.{field}"
    assert stored(inbound, "clm", event_id).status == "dead_letter"


@pytest.mark.parametrize(
    ("path", "kind", "data", "field"),
    [
        (
            PSA,
            "milestone.completed",
            {"contract_id": "C-1", "milestone_id": "M1", "completed_on": 0},
            "data.completed_on",
        ),
        (
            PAYMENTS,
            "payment.succeeded",
            {
                "payment_id": "P-1",
                "invoice_id": "INV-1",
                "amount": "1.00",
                "currency": "USD",
                "received_on": 1_700_000_000,
            },
            "data.received_on",
        ),
        (
            CLM,
            "contract.amended",
            {
                "contract_id": "C-1",
                "amendment": {"amendment_id": "A-1", "effective_date": 0, "reason": "rates"},
            },
            "data.amendment.effective_date",
        ),
    ],
)
async def test_an_event_with_a_number_for_a_date_is_refused_and_kept(
    api: httpx.AsyncClient,
    inbound: Ledger,
    path: str,
    kind: str,
    data: dict[str, Any],
    field: str,
) -> None:
    event_id = new_event_id()
    body = json.dumps({"id": event_id, "type": kind, "data": data}).encode()
    response = await send(api, path, body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    assert stored(inbound, path.rsplit("/", 1)[1], event_id).status == "dead_letter"


# Amounts too large for exact arithmetic.

HUGE_APPROVALS = [
    ({"rate_card": [{"role": "Senior", "hourly_rate": "1e27"}]}, "data.rate_card.0.hourly_rate"),
    ({"rate_card": [{"role": "Senior", "hourly_rate": "1" * 28}]}, "data.rate_card.0.hourly_rate"),
    ({"not_to_exceed": "1e400"}, "data.not_to_exceed"),
    ({"not_to_exceed": "10000000000000.00"}, "data.not_to_exceed"),
    (
        {
            "billing_model": "fixed_fee",
            "milestones": [{"milestone_id": "M1", "name": "Go-live", "amount": "1e400"}],
        },
        "data.milestones.0.amount",
    ),
    (
        {"billing_model": "retainer", "retainer_monthly_amount": "-1e30"},
        "data.retainer_monthly_amount",
    ),
]


@pytest.mark.parametrize(("changes", "field"), HUGE_APPROVALS)
async def test_an_approval_with_a_huge_amount_is_refused_naming_the_field(
    api: httpx.AsyncClient, inbound: Ledger, changes: dict[str, Any], field: str
) -> None:
    event_id = new_event_id()
    data = approval(**changes)
    body = json.dumps({"id": event_id, "type": "contract.approved", "data": data}).encode()
    response = await send(api, CLM, body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == field
    assert "too large" in error["message"] and "InvalidOperation" not in response.text
    assert stored(inbound, "clm", event_id).status == "dead_letter"


async def test_the_largest_amount_of_a_currency_is_accepted(api: httpx.AsyncClient) -> None:
    for currency, largest in (("USD", "9999999999999.99"), ("JPY", "999999999999999")):
        data = approval(currency=currency, not_to_exceed=largest)
        data["rate_card"] = [{"role": "Senior", "hourly_rate": largest}]
        body = json.dumps({"id": new_event_id(), "type": "contract.approved", "data": data})
        response = await send(api, CLM, body.encode())
        assert response.status_code == 202, response.text


@pytest.mark.parametrize("amount", ["1e400", "1e27", 10**30, "10000000000000.00"])
async def test_a_payment_with_a_huge_amount_is_refused_and_kept(
    api: httpx.AsyncClient, inbound: Ledger, amount: object
) -> None:
    event_id = new_event_id()
    data = {
        "payment_id": "P-1",
        "invoice_id": "INV-1",
        "amount": amount,
        "currency": "USD",
        "received_on": "2026-11-02",
    }
    body = json.dumps({"id": event_id, "type": "payment.succeeded", "data": data}).encode()
    response = await send(api, PAYMENTS, body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == "data.amount"
    assert stored(inbound, "payments", event_id).status == "dead_letter"


@pytest.mark.parametrize(
    "amendment",
    [
        {"rate_card": [{"role": "Senior", "hourly_rate": "1e30"}]},
        {"not_to_exceed": "1e400"},
        {"add_milestones": [{"milestone_id": "M9", "name": "Extra", "amount": "1e400"}]},
    ],
)
async def test_an_amendment_with_a_huge_amount_is_refused_naming_the_field(
    api: httpx.AsyncClient, inbound: Ledger, amendment: dict[str, Any]
) -> None:
    change = {"amendment_id": "A-1", "effective_date": "2026-12-01", "reason": "rates", **amendment}
    response = await api.post("/api/contracts/C-1/amendments", json=change)
    assert response.status_code == 422, response.text
    assert "too large" in response.json()["error"]["message"]
    field = response.json()["error"]["field"]
    event_id = new_event_id()
    data = {"contract_id": "C-1", "amendment": change}
    body = json.dumps({"id": event_id, "type": "contract.amended", "data": data}).encode()
    webhook = await send(api, CLM, body)
    assert webhook.status_code == 422, webhook.text
    assert webhook.json()["error"]["field"] == f"data.amendment.{field}"
    assert stored(inbound, "clm", event_id).status == "dead_letter"


# An event id reused for another body.


async def test_an_event_id_reused_for_another_body_is_a_conflict_and_a_dead_letter(
    api: httpx.AsyncClient, inbound: Ledger
) -> None:
    event_id = new_event_id()
    data = approval()
    first = json.dumps({"id": event_id, "type": "contract.approved", "data": data}).encode()
    started = await send(api, CLM, first)
    assert started.status_code == 202, started.text

    # The same event again, written with its keys in another order: a duplicate.
    rewritten = json.dumps(
        {"data": data, "type": "contract.approved", "id": event_id}, indent=2
    ).encode()
    duplicate = await send(api, CLM, rewritten)
    assert duplicate.status_code == 202 and duplicate.json()["duplicate"] is True

    other = json.dumps(
        {"id": event_id, "type": "contract.approved", "data": {**data, "title": "Other SOW"}}
    ).encode()
    refused = await send(api, CLM, other)
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert body["error"]["code"] == "event_id_conflict"
    assert body["dead_letter"] is True
    kept_as = body["conflicting_event_id"]
    assert kept_as.startswith(f"{event_id}~") and body["event_id"] == kept_as

    original = stored(inbound, "clm", event_id)
    assert original.status == "processed" and original.body == first.decode()
    dead = stored(inbound, "clm", kept_as)
    assert dead.status == "dead_letter" and dead.body == other.decode()
    assert dead.reason is not None and dead.reason.startswith("event_id_conflict:")
    listed = (await api.get("/api/dead-letters", params={"source": "clm"})).json()["items"]
    assert kept_as in {item["event_id"] for item in listed}

    # Sent again, the other body is refused again, and still not applied.
    assert (await send(api, CLM, other)).status_code == 409
    assert stored(inbound, "clm", event_id).response_body == original.response_body


async def test_a_payment_reusing_an_event_id_for_another_amount_is_a_conflict(
    api: httpx.AsyncClient, inbound: Ledger
) -> None:
    """A payment applied once is not applied again under its id with another amount: that
    delivery is refused and kept. The contract's workflow is started (no worker runs it) and
    takes the signal."""
    data = approval()
    started = await send(
        api,
        CLM,
        json.dumps({"id": new_event_id(), "type": "contract.approved", "data": data}).encode(),
    )
    assert started.status_code == 202, started.text
    invoice_id = f"INV-{uuid.uuid4().hex[:8]}"
    inbound.record_xref(data["contract_id"], "erp", "invoice", invoice_id)
    event_id = new_event_id()

    def body(amount: str) -> bytes:
        payment = {
            "payment_id": f"P-{event_id}",
            "invoice_id": invoice_id,
            "amount": amount,
            "currency": "USD",
            "received_on": "2026-11-02",
        }
        return json.dumps({"id": event_id, "type": "payment.succeeded", "data": payment}).encode()

    applied = await send(api, PAYMENTS, body("10.00"))
    assert applied.status_code == 202, applied.text
    conflict = await send(api, PAYMENTS, body("99.00"))
    assert conflict.status_code == 409, conflict.text
    assert conflict.json()["error"]["code"] == "event_id_conflict"
    kept = stored(inbound, "payments", event_id)
    assert kept.status == "processed" and kept.body == body("10.00").decode()
    dead = stored(inbound, "payments", conflict.json()["conflicting_event_id"])
    assert dead.status == "dead_letter" and dead.body == body("99.00").decode()


async def test_a_dead_letter_corrected_under_its_id_keeps_the_corrected_body(
    api: httpx.AsyncClient, inbound: Ledger
) -> None:
    """A dead letter was never applied: its sender may correct it under the same id, and the
    corrected body is the one kept, and replayed."""
    event_id = new_event_id()
    data = {
        "payment_id": "P-1",
        "invoice_id": "INV-nobody-has",
        "amount": "1e400",
        "currency": "USD",
        "received_on": "2026-11-02",
    }

    def body(amount: str) -> bytes:
        payload = {"id": event_id, "type": "payment.succeeded", "data": {**data, "amount": amount}}
        return json.dumps(payload).encode()

    assert (await send(api, PAYMENTS, body("1e400"))).status_code == 422
    corrected = await send(api, PAYMENTS, body("10.00"))
    assert corrected.status_code == 404  # still no contract has that invoice
    assert corrected.json()["error"]["field"] == "data.invoice_id"
    kept = stored(inbound, "payments", event_id)
    assert kept.status == "dead_letter" and kept.body == body("10.00").decode()


async def test_an_event_recorded_without_a_digest_is_compared_by_its_body(
    api: httpx.AsyncClient, inbound: Ledger
) -> None:
    """Events recorded before digests were kept have none: a redelivery is compared with the
    body they stored."""
    event_id = new_event_id()
    data = approval()
    first = json.dumps({"id": event_id, "type": "contract.approved", "data": data}).encode()
    assert (await send(api, CLM, first)).status_code == 202
    with inbound.engine.begin() as connection:
        connection.exec_driver_sql(
            "UPDATE ledger_inbound_event SET body_digest = NULL WHERE event_id = ?", (event_id,)
        )
    assert stored(inbound, "clm", event_id).body_digest is None
    again = await send(api, CLM, first)
    assert again.status_code == 202 and again.json()["duplicate"] is True
    other = json.dumps(
        {"id": event_id, "type": "contract.approved", "data": {**data, "version": 2}}
    ).encode()
    assert (await send(api, CLM, other)).status_code == 409
