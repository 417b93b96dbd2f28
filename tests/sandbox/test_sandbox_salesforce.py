"""The sandbox's Salesforce answers as Salesforce does: OAuth errors, sessions, SOQL it does not
understand, the daily budget, and the Change Data Capture event of an account's change."""

from __future__ import annotations

from typing import Any

import httpx

SF = "/vendors/salesforce"
V = f"{SF}/services/data/v62.0"


async def token(sandbox: httpx.AsyncClient, **form: str) -> httpx.Response:
    body = {"grant_type": "client_credentials", "client_id": "c2c", "client_secret": "sandbox"}
    return await sandbox.post(f"{SF}/services/oauth2/token", data={**body, **form})


async def bearer(sandbox: httpx.AsyncClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {(await token(sandbox)).json()['access_token']}"}


async def test_oauth_answers_a_token_and_the_instance_url(sandbox: httpx.AsyncClient) -> None:
    answer = await token(sandbox)
    assert answer.status_code == 200
    assert answer.json()["instance_url"].endswith(SF)
    assert answer.json()["token_type"] == "Bearer"
    wrong = await token(sandbox, client_secret="guess")
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_client")
    grant = await token(sandbox, grant_type="password")
    assert (grant.status_code, grant.json()["error"]) == (400, "unsupported_grant_type")


async def test_data_calls_need_a_session_and_count_against_the_budget(
    sandbox: httpx.AsyncClient,
) -> None:
    unauthenticated = await sandbox.get(f"{V}/limits/")
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()[0]["errorCode"] == "INVALID_SESSION_ID"
    headers = await bearer(sandbox)
    try:
        await sandbox.put(f"{SF}/_admin/limits", json={"max": 10, "used": 8})
        first = await sandbox.get(f"{V}/limits/", headers=headers)
        assert first.headers["Sforce-Limit-Info"] == "api-usage=9/10"
        assert first.json()["DailyApiRequests"] == {"Max": 10, "Remaining": 1}
        await sandbox.get(f"{V}/limits/", headers=headers)
        spent = await sandbox.get(f"{V}/limits/", headers=headers)
        assert spent.status_code == 403
        assert spent.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    finally:
        await sandbox.put(f"{SF}/_admin/limits", json={"max": 100_000, "used": 0})


async def test_soql_outside_the_subset_is_refused_by_name(sandbox: httpx.AsyncClient) -> None:
    headers = await bearer(sandbox)

    async def ask(q: str) -> Any:
        answer = await sandbox.get(f"{V}/query/", params={"q": q}, headers=headers)
        assert answer.status_code == 400, answer.text
        return answer.json()[0]

    assert (await ask("SELECT Id FROM Account WHERE Name = 'a' OR Name = 'b'"))[
        "errorCode"
    ] == "MALFORMED_QUERY"
    assert (await ask("SELECT Nope__c FROM Account"))["errorCode"] == "INVALID_FIELD"
    assert (await ask("SELECT Id FROM Opportunity"))["errorCode"] == "INVALID_TYPE"


async def test_an_account_change_sends_its_change_event(sandbox: httpx.AsyncClient) -> None:
    headers = await bearer(sandbox)
    made = await sandbox.post(
        f"{V}/sobjects/Account/",
        json={"Name": "Globex", "BillingCountryCode": "US", "BillingCity": "Springfield"},
        headers=headers,
    )
    account = made.json()["id"]
    changed = await sandbox.post(
        f"{SF}/_admin/accounts/{account}/change",
        json={"fields": {"Name": "Globex Corp", "BillingCity": "Shelbyville"}},
    )
    assert changed.status_code == 200, changed.text
    event = changed.json()["data"]
    header = event["payload"]["ChangeEventHeader"]
    assert (header["entityName"], header["changeType"], header["recordIds"]) == (
        "Account",
        "UPDATE",
        [account],
    )
    assert event["payload"]["Name"] == "Globex Corp"
    assert event["payload"]["BillingAddress"] == {"City": "Shelbyville"}
    assert isinstance(event["event"]["replayId"], int)
    read = await sandbox.get(f"{V}/sobjects/Account/{account}", headers=headers)
    assert read.json()["BillingCity"] == "Shelbyville"

    unknown = await sandbox.post(
        f"{SF}/_admin/accounts/{account}/change", json={"fields": {"Revenue__c": "1"}}
    )
    assert unknown.status_code == 422
    assert unknown.json()["error"]["field"] == "fields"
