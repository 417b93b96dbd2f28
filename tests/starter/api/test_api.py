"""The HTTP API over real HTTP, against a real Temporal dev server (no worker).

Each refusal is checked twice: by its answer, and by Temporal not knowing the contract.
"""

from __future__ import annotations

import time
from typing import Any, get_args

import httpx
import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from domain.names import (
    SA_BILLING_MODEL,
    SA_CONTRACT_ID,
    SA_CONTRACT_VALUE,
    SA_CUSTOMER_ID,
    SA_LEGAL_ENTITY,
    SA_OPEN_EXCEPTIONS,
    SA_STAGE,
    WORKFLOW_TYPE,
    contract_workflow_id,
)
from ledger.models import ExceptionStatus
from starter.api.routes import ExceptionStatusFilter
from tests.starter.helpers import OPERATOR_TOKEN, VIEWER_TOKEN, approval, event, signed
from tests.support import WEBHOOK_SECRET, new_contract_id

CLM = "/webhooks/clm"


async def assert_not_started(client: Client, contract_id: str) -> None:
    with pytest.raises(RPCError) as refused:
        await client.get_workflow_handle(contract_workflow_id(contract_id)).describe()
    assert refused.value.status == RPCStatusCode.NOT_FOUND


async def post_approval(api: httpx.AsyncClient, data: dict[str, Any]) -> httpx.Response:
    body = event("contract.approved", data)
    return await api.post(CLM, content=body, headers=signed(body, WEBHOOK_SECRET))


def assert_error(
    response: httpx.Response, status: int, code: str, field: str | None = None
) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    if field is not None:
        assert error["field"] == field
        assert field in [e["field"] for e in response.json()["errors"]]


async def test_health_and_readiness(api: httpx.AsyncClient) -> None:
    assert (await api.get("/healthz")).json() == {"status": "ok"}
    assert (await api.get("/readyz")).status_code == 200


async def test_a_valid_approval_starts_the_contract(
    api: httpx.AsyncClient, temporal_client: Client
) -> None:
    data = approval()
    response = await post_approval(api, data)

    assert response.status_code == 202, response.text
    body = response.json()
    workflow_id = contract_workflow_id(data["contract_id"])
    assert body["workflow_id"] == workflow_id
    assert body["duplicate"] is False
    described = await temporal_client.get_workflow_handle(workflow_id).describe()
    assert described.workflow_type == WORKFLOW_TYPE
    assert described.run_id == body["run_id"]
    assert described.status == WorkflowExecutionStatus.RUNNING
    attributes = described.typed_search_attributes
    assert attributes.get(SA_CONTRACT_ID) == data["contract_id"]
    assert attributes.get(SA_CUSTOMER_ID) == "ACME-US"
    assert attributes.get(SA_LEGAL_ENTITY) == "US01"
    assert attributes.get(SA_BILLING_MODEL) == "time_and_materials"
    assert attributes.get(SA_STAGE) == "received"
    assert attributes.get(SA_OPEN_EXCEPTIONS) == 0
    assert attributes.get(SA_CONTRACT_VALUE) == 50000.0


async def test_a_repeated_approval_is_a_duplicate_of_the_one_workflow(
    api: httpx.AsyncClient, temporal_client: Client
) -> None:
    data = approval()
    first = await post_approval(api, data)
    again = await post_approval(api, data)

    assert first.status_code == again.status_code == 202
    assert again.json()["duplicate"] is True
    assert again.json()["run_id"] == first.json()["run_id"]
    query = f"WorkflowId = '{contract_workflow_id(data['contract_id'])}'"
    assert (await temporal_client.count_workflows(query)).count == 1


@pytest.mark.parametrize(
    "make_headers",
    [
        lambda body: {},
        lambda body: {"X-C2C-Signature": "garbage"},
        lambda body: signed(b"another body", WEBHOOK_SECRET),
        lambda body: signed(body, "not-the-secret"),
    ],
    ids=["missing", "malformed", "other-body", "wrong-secret"],
)
async def test_a_bad_signature_is_refused_and_starts_nothing(
    api: httpx.AsyncClient, temporal_client: Client, make_headers: Any
) -> None:
    data = approval()
    body = event("contract.approved", data)

    response = await api.post(CLM, content=body, headers=make_headers(body))

    assert_error(response, 401, "invalid_signature")
    assert "Acme" not in response.text
    await assert_not_started(temporal_client, data["contract_id"])


async def test_a_stale_signature_is_refused(
    api: httpx.AsyncClient, temporal_client: Client
) -> None:
    data = approval()
    body = event("contract.approved", data)
    stale = signed(body, WEBHOOK_SECRET, timestamp=int(time.time()) - 301)

    response = await api.post(CLM, content=body, headers=stale)

    assert_error(response, 401, "invalid_signature")
    await assert_not_started(temporal_client, data["contract_id"])


def _without_country(data: dict[str, Any]) -> dict[str, Any]:
    del data["customer"]["country"]
    return data


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (_without_country, "data.customer.country"),
        (
            lambda d: {**d, "rate_card": [{"role": "Analyst", "hourly_rate": 120.5}]},
            "data.rate_card.0.hourly_rate",
        ),
        (lambda d: {**d, "end_date": "2025-12-31"}, "data.end_date"),
        (lambda d: {**d, "currency": "XYZ"}, "data.currency"),
        (lambda d: {**d, "surprise": True}, "data.surprise"),
    ],
    ids=["missing-country", "float-money", "end-before-start", "currency", "unknown-field"],
)
async def test_an_invalid_approval_names_the_field_and_starts_nothing(
    api: httpx.AsyncClient, temporal_client: Client, change: Any, field: str
) -> None:
    data = change(approval())

    response = await post_approval(api, data)

    assert_error(response, 422, "validation_error", field)
    await assert_not_started(temporal_client, data["contract_id"])


async def test_an_unknown_event_type_is_refused(api: httpx.AsyncClient) -> None:
    body = event("contract.exploded", approval())
    response = await api.post(CLM, content=body, headers=signed(body, WEBHOOK_SECRET))
    assert_error(response, 422, "validation_error", "type")


async def test_a_body_that_is_not_json_is_refused(api: httpx.AsyncClient) -> None:
    body = b"{not json"
    response = await api.post(CLM, content=body, headers=signed(body, WEBHOOK_SECRET))
    assert_error(response, 400, "invalid_json")


async def test_a_body_over_the_limit_is_refused(
    api: httpx.AsyncClient, temporal_client: Client
) -> None:
    data = approval(title="x" * 100, approved_by="y" * (1024 * 1024))
    response = await post_approval(api, data)

    assert_error(response, 413, "payload_too_large")
    await assert_not_started(temporal_client, data["contract_id"])


async def test_an_unknown_contract_is_not_found(api: httpx.AsyncClient) -> None:
    contract_id = new_contract_id()
    assert_error(await api.get(f"/api/contracts/{contract_id}"), 404, "contract_not_found")
    amendment = {"amendment_id": "A-1", "effective_date": "2026-02-01", "reason": "more work"}
    response = await api.post(f"/api/contracts/{contract_id}/amendments", json=amendment)
    assert_error(response, 404, "contract_not_found")


async def test_a_payment_for_an_unknown_invoice_is_refused(api: httpx.AsyncClient) -> None:
    data = {
        "payment_id": "PAY-1",
        "invoice_id": "INV-404",
        "amount": "10.00",
        "currency": "USD",
        "received_on": "2026-02-01",
    }
    body = event("payment.succeeded", data)
    response = await api.post(
        "/webhooks/payments", content=body, headers=signed(body, WEBHOOK_SECRET)
    )
    assert_error(response, 404, "unknown_invoice", "data.invoice_id")


async def test_a_milestone_for_an_unknown_contract_is_not_found(api: httpx.AsyncClient) -> None:
    data = {
        "contract_id": new_contract_id(),
        "psa_project_id": "PRJ-1",
        "milestone_id": "M1",
        "completed_on": "2026-02-01",
    }
    body = event("milestone.completed", data)
    response = await api.post("/webhooks/psa", content=body, headers=signed(body, WEBHOOK_SECRET))
    assert_error(response, 404, "contract_not_found")


async def test_the_contract_list_filters_by_stage(api: httpx.AsyncClient) -> None:
    data = approval()
    assert (await post_approval(api, data)).status_code == 202
    listed = await api.get("/api/contracts", params={"stage": "received"})
    assert listed.status_code == 200
    assert all(item["stage"] == "received" for item in listed.json()["items"])
    assert_error(
        await api.get("/api/contracts", params={"stage": "nowhere"}),
        422,
        "validation_error",
        "stage",
    )


async def test_an_unknown_query_parameter_is_refused_not_ignored(api: httpx.AsyncClient) -> None:
    # A typo must not answer the unfiltered list as if it were the filtered one.
    response = await api.get("/api/contracts", params={"stag": "on_hold", "stage": "active"})
    assert_error(response, 422, "validation_error", "stag")
    assert "expected stage" in response.json()["error"]["message"]
    response = await api.get("/api/dead-letters", params={"source": "clm", "limit": "5"})
    assert_error(response, 422, "validation_error", "limit")


async def test_a_query_parameter_given_twice_is_refused(api: httpx.AsyncClient) -> None:
    # Only the last would count: a script filtering on the first would read the wrong list.
    response = await api.get("/api/contracts", params=[("stage", "on_hold"), ("stage", "active")])
    assert_error(response, 422, "validation_error", "stage")
    assert response.json()["error"]["message"] == "stage: given more than once"


async def test_the_openapi_document_declares_the_error_shape(api: httpx.AsyncClient) -> None:
    document = (await api.get("/openapi.json")).json()
    error = {"$ref": "#/components/schemas/ErrorBody"}
    for path, methods in document["paths"].items():
        if not path.startswith(("/api/", "/webhooks/")):
            continue
        for method, operation in methods.items():
            for status in ("401", "413", "422", "500"):
                content = operation["responses"][status]["content"]["application/json"]
                assert content["schema"] == error, (method, path, status)
    assert "HTTPValidationError" not in document["components"]["schemas"]


async def test_the_exception_queue(api: httpx.AsyncClient) -> None:
    listed = await api.get("/api/exceptions", params={"status": "open"})
    assert listed.status_code == 200
    assert isinstance(listed.json()["items"], list)
    # Every status, as the CLI's --status all; superseded exceptions among them.
    assert set(get_args(ExceptionStatusFilter)) == {*ExceptionStatus, "all"}
    every = await api.get("/api/exceptions", params={"status": "all"})
    assert every.status_code == 200
    assert len(every.json()["items"]) >= len(listed.json()["items"])
    assert (await api.get("/api/exceptions", params={"status": "superseded"})).status_code == 200
    assert_error(
        await api.get("/api/exceptions", params={"status": "everything"}),
        422,
        "validation_error",
        "status",
    )
    assert_error(
        await api.post("/api/exceptions/EXC-404/retry", json={}), 404, "exception_not_found"
    )
    assert_error(
        await api.post("/api/exceptions/EXC-404/explode", json={}),
        422,
        "validation_error",
        "action",
    )


async def test_close_period_checks_the_period(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/billing/close-period", json={"period": "2026-13"})
    assert_error(response, 422, "validation_error", "period")


class TestBearerTokens:
    async def test_without_a_token_api_calls_are_refused(self, secured_api_url: str) -> None:
        async with httpx.AsyncClient(base_url=secured_api_url) as client:
            assert_error(await client.get("/api/contracts"), 401, "unauthorized")
            bad = {"Authorization": "Bearer not-a-token"}
            assert_error(await client.get("/api/contracts", headers=bad), 401, "unauthorized")

    async def test_a_viewer_may_read_but_not_act(self, secured_api_url: str) -> None:
        viewer = {"Authorization": f"Bearer {VIEWER_TOKEN}"}
        async with httpx.AsyncClient(base_url=secured_api_url, headers=viewer) as client:
            assert (await client.get("/api/contracts")).status_code == 200
            response = await client.post("/api/billing/close-period", json={"period": "2026-01"})
            assert_error(response, 403, "forbidden")

    async def test_an_operator_may_act(self, secured_api_url: str) -> None:
        operator = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
        async with httpx.AsyncClient(base_url=secured_api_url, headers=operator) as client:
            assert (await client.get("/api/exceptions")).status_code == 200
            # An invalid period shows the token was accepted without signalling any contract.
            response = await client.post("/api/billing/close-period", json={"period": "x"})
            assert_error(response, 422, "validation_error", "period")

    async def test_webhooks_and_health_need_no_token(self, secured_api_url: str) -> None:
        async with httpx.AsyncClient(base_url=secured_api_url) as client:
            assert (await client.get("/healthz")).status_code == 200
            data = approval()
            body = event("contract.approved", data)
            response = await client.post(CLM, content=body, headers=signed(body, WEBHOOK_SECRET))
            assert response.status_code == 202


async def test_a_message_to_a_finished_contract_is_a_conflict(
    api: httpx.AsyncClient, temporal_client: Client
) -> None:
    data = approval()
    assert (await post_approval(api, data)).status_code == 202
    handle = temporal_client.get_workflow_handle(contract_workflow_id(data["contract_id"]))
    await handle.terminate(reason="test: the contract is over")
    milestone = {
        "contract_id": data["contract_id"],
        "milestone_id": "M1",
        "completed_on": "2026-02-01",
    }
    body = event("milestone.completed", milestone)

    response = await api.post("/webhooks/psa", content=body, headers=signed(body, WEBHOOK_SECRET))

    assert_error(response, 409, "contract_closed")
