"""The sandbox's NetSuite over raw HTTP: NetSuite's error shape, signatures, nonces, upserts."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from c2c.netsuite_auth import authorization
from tests.netsuite_support import credentials

ROOT = "/vendors/netsuite/services/rest/record/v1"


def signed(
    sandbox: httpx.AsyncClient, method: str, path: str, json: Any = None, **params: str
) -> httpx.Request:
    request = sandbox.build_request(method, path, params=params or None, json=json)
    request.headers["Authorization"] = authorization(credentials(), method, request.url)
    return request


async def test_an_unsigned_request_is_refused_in_netsuites_error_shape(
    sandbox: httpx.AsyncClient,
) -> None:
    response = await sandbox.get(f"{ROOT}/customer")
    assert response.status_code == 401
    body = response.json()
    assert body["status"] == 401 and body["title"] and body["type"]
    assert body["o:errorDetails"][0]["o:errorCode"] == "INVALID_LOGIN"


async def test_a_nonce_is_accepted_once(sandbox: httpx.AsyncClient) -> None:
    request = signed(sandbox, "GET", f"{ROOT}/subsidiary/1")
    assert (await sandbox.send(request)).status_code == 200
    replayed = await sandbox.send(request)
    assert replayed.status_code == 401


async def test_upsert_by_external_id_makes_one_record_and_a_post_of_it_is_a_duplicate(
    sandbox: httpx.AsyncClient,
) -> None:
    eid = f"c2c-customer-{uuid.uuid4().hex[:8]}"
    body = {"companyName": "Acme", "subsidiary": {"id": "1"}, "currency": {"id": "1"}}
    locations = []
    for name in ("Acme", "Acme Corp"):
        request = signed(
            sandbox, "PUT", f"{ROOT}/customer/eid:{eid}", {**body, "companyName": name}
        )
        response = await sandbox.send(request)
        assert response.status_code == 204, response.text
        locations.append(response.headers["Location"])
    assert locations[0] == locations[1]
    listed = await sandbox.send(
        signed(sandbox, "GET", f"{ROOT}/customer", q=f'externalId IS "{eid}"')
    )
    assert [item["id"] for item in listed.json()["items"]] == [locations[0].rsplit("/", 1)[1]]
    record = await sandbox.send(signed(sandbox, "GET", f"{ROOT}/customer/eid:{eid}"))
    assert record.json()["companyName"] == "Acme Corp"

    post = signed(sandbox, "POST", f"{ROOT}/customer", {**body, "externalId": eid})
    duplicate = await sandbox.send(post)
    assert duplicate.status_code == 400
    assert duplicate.json()["o:errorDetails"][0]["o:errorCode"] == "DUP_RCRD"


async def test_an_invoice_line_without_its_department_is_refused_naming_the_path(
    sandbox: httpx.AsyncClient,
) -> None:
    customer = {"companyName": "Acme", "subsidiary": {"id": "1"}, "currency": {"id": "1"}}
    eid = f"c2c-customer-{uuid.uuid4().hex[:8]}"
    made = await sandbox.send(signed(sandbox, "PUT", f"{ROOT}/customer/eid:{eid}", customer))
    customer_id = made.headers["Location"].rsplit("/", 1)[1]
    invoice = {
        "entity": {"id": customer_id},
        "subsidiary": {"id": "1"},
        "currency": {"id": "1"},
        "tranDate": "2026-10-31",
        "item": {
            "items": [
                {"item": {"id": "1"}, "class": {"id": "2"}, "location": {"id": "3"}, "amount": 10}
            ]
        },
    }
    refused = await sandbox.send(signed(sandbox, "POST", f"{ROOT}/invoice", invoice))
    assert refused.status_code == 400
    detail = refused.json()["o:errorDetails"][0]
    assert (detail["o:errorCode"], detail["o:errorPath"]) == (
        "USER_ERROR",
        "item.items[0].department",
    )
