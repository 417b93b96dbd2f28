"""The dashboard's single sign-on against a real OpenID Connect provider on loopback
(``oidc_provider_mock``): the authorization code flow with PKCE, the group claim mapped to a
role, a group limited to one legal entity seeing only its contracts, and the refusals."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import pytest_asyncio
from oidc_provider_mock import run_server_in_thread
from pydantic import SecretStr
from temporalio.client import Client

from c2c.settings import Settings
from domain.models import ContractApproved
from starter.api.contracts import start_contract
from starter.dashboard.session import SESSION_COOKIE
from tests.dashboard.helpers import OPERATOR_TOKEN, csrf_of, page_token
from tests.support import approval_payload, serve

UK = f"K{uuid.uuid4().hex[:6].upper()}"
DE = f"D{uuid.uuid4().hex[:6].upper()}"
CLIENT_ID = "c2c-dashboard"
ROLES = {
    "finance-all": "viewer",
    "ops-uk": {"role": "operator", "entities": [UK]},
    "ops-global": "operator",
}


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    """The identity provider, listening on loopback; its issuer URL."""
    with run_server_in_thread(require_nonce=True) as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture(scope="module")
def sso_settings(settings: Settings, state_dir: Path, provider: str) -> Settings:
    return settings.model_copy(
        update={
            "task_queue": f"c2c-sso-test-{uuid.uuid4().hex[:8]}",
            "database_url": f"sqlite:///{state_dir / f'sso-{uuid.uuid4().hex[:6]}.db'}",
            "api_tokens": SecretStr(f"{OPERATOR_TOKEN}:operator@night-shift"),
            "session_secret": SecretStr("sso-test-session-secret"),
            "oidc_issuer": provider,
            "oidc_client_id": CLIENT_ID,
            "oidc_client_secret": SecretStr("c2c-client-secret"),
            "oidc_roles": SecretStr(json.dumps(ROLES)),
        }
    )


@pytest.fixture(scope="module")
def sso_url(sso_settings: Settings) -> Iterator[str]:
    with serve(sso_settings) as url:
        yield url


@pytest_asyncio.fixture
async def browser(sso_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A browser of the dashboard: keeps cookies, follows no redirect by itself."""
    async with httpx.AsyncClient(base_url=sso_url, timeout=30) as client:
        yield client


async def set_user(provider: str, sub: str, **claims: object) -> None:
    """Tell the provider who ``sub`` is (their claims, groups included)."""
    async with httpx.AsyncClient(timeout=30) as idp:
        answer = await idp.put(f"{provider}/users/{sub}", json=claims)
        assert answer.status_code == 204, answer.text


async def sign_in(browser: httpx.AsyncClient, sub: str, *, next_url: str = "/") -> httpx.Response:
    """Go through the whole flow as a browser does; the dashboard's answer to the callback."""
    start = await browser.get("/auth/login", params={"next": next_url})
    assert start.status_code == 303, start.text
    authorize = start.headers["location"]
    query = parse_qs(urlsplit(authorize).query)
    # The authorization code flow, with a PKCE challenge, a state and a nonce.
    assert query["response_type"] == ["code"]
    assert query["client_id"] == [CLIENT_ID]
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["state"][0] and query["nonce"][0]
    assert "openid" in query["scope"][0].split()
    async with httpx.AsyncClient(timeout=30) as idp:
        # The person signs in at the provider, which sends the browser back with a code.
        consent = await idp.post(authorize, data={"sub": sub})
    assert consent.status_code == 302, consent.text
    back = urlsplit(consent.headers["location"])
    assert back.path == "/auth/callback"
    return await browser.get(f"/auth/callback?{back.query}")


async def test_the_login_page_offers_single_sign_on_beside_tokens(
    browser: httpx.AsyncClient,
) -> None:
    page = await browser.get("/login")
    assert page.status_code == 200
    assert 'id="sso-login"' in page.text and 'name="token"' in page.text
    # A token still logs in, under the token's configured name.
    csrf = await page_token(browser, "/login")
    answer = await browser.post("/login", data={"csrf_token": csrf, "token": OPERATOR_TOKEN})
    assert answer.status_code == 303
    home = await browser.get("/")
    assert "night-shift · operator" in home.text


async def test_a_group_maps_to_a_role_and_the_name_to_the_person(
    browser: httpx.AsyncClient, provider: str
) -> None:
    await set_user(provider, "ada", email="ada@example.com", groups=["ops-global", "other"])
    landed = await sign_in(browser, "ada", next_url="/?queue=legal")
    assert landed.status_code == 200, landed.text
    assert "Signed in as ada@example.com (operator, all legal entities)" in landed.text
    assert 'content="0;url=/?queue=legal"' in landed.text
    assert SESSION_COOKIE in browser.cookies
    home = await browser.get("/")
    assert home.status_code == 200
    assert "ada@example.com · operator" in home.text
    # The session is a login like any other: it logs out.
    out = await browser.post("/logout", data={"csrf_token": csrf_of(home.text)})
    assert out.status_code == 303
    assert (await browser.get("/")).status_code == 303


async def test_a_viewer_group_may_look_but_not_act(
    browser: httpx.AsyncClient, provider: str
) -> None:
    await set_user(provider, "fin", email="fin@example.com", groups=["finance-all"])
    assert (await sign_in(browser, "fin")).status_code == 200
    home = await browser.get("/")
    assert "fin@example.com · viewer" in home.text
    refused = await browser.post(
        "/ui/exceptions/EXC-1/skip", data={"csrf_token": csrf_of(home.text)}
    )
    assert refused.status_code == 403


async def test_a_group_of_one_legal_entity_sees_only_its_contracts(
    browser: httpx.AsyncClient,
    provider: str,
    temporal_client: Client,
    sso_settings: Settings,
) -> None:
    uk = ContractApproved.model_validate(approval_payload(legal_entity=UK))
    de = ContractApproved.model_validate(approval_payload(legal_entity=DE))
    for event in (uk, de):
        await start_contract(temporal_client, event, task_queue=sso_settings.task_queue)
    await set_user(provider, "olga", email="olga@example.com", groups=["ops-uk"])
    landed = await sign_in(browser, "olga")
    assert "Signed in as olga@example.com (operator, " + UK + ")" in landed.text
    home = await browser.get("/")
    assert home.status_code == 200
    assert f'<span id="entities">{UK}</span>' in home.text
    found = await _wait_listed(browser, uk.contract_id)
    assert uk.contract_id in found and de.contract_id not in found
    # Another entity's contract is not there for this login, and its filter is refused.
    assert (await browser.get(f"/contracts/{de.contract_id}")).status_code == 404
    refused = await browser.get("/", params={"legal_entity": DE})
    assert refused.status_code == 403 and "legal_entity" in refused.text


async def _wait_listed(browser: httpx.AsyncClient, contract_id: str) -> str:
    """The home page once visibility lists ``contract_id`` (it indexes within moments)."""
    html = ""
    for _ in range(100):
        html = (await browser.get("/")).text
        if contract_id in html:
            break
    return html


async def test_no_mapped_group_no_login(browser: httpx.AsyncClient, provider: str) -> None:
    await set_user(provider, "eve", email="eve@example.com", groups=["marketing"])
    refused = await sign_in(browser, "eve")
    assert refused.status_code == 403
    assert "none of your groups" in refused.text
    assert SESSION_COOKIE not in browser.cookies


async def test_an_answer_for_another_login_is_refused(
    browser: httpx.AsyncClient, provider: str
) -> None:
    await set_user(provider, "ada", email="ada@example.com", groups=["ops-global"])
    start = await browser.get("/auth/login")
    authorize = start.headers["location"]
    async with httpx.AsyncClient(timeout=30) as idp:
        consent = await idp.post(authorize, data={"sub": "ada"})
    query = parse_qs(urlsplit(consent.headers["location"]).query)
    # The right code with a state this browser did not start.
    forged = await browser.get(
        "/auth/callback", params={"code": query["code"][0], "state": "not-the-state"}
    )
    assert forged.status_code == 400 and "state" in forged.text
    # Another browser (no flow cookie) with the genuine answer.
    async with httpx.AsyncClient(base_url=str(browser.base_url), timeout=30) as other:
        stolen = await other.get(
            "/auth/callback", params={"code": query["code"][0], "state": query["state"][0]}
        )
    assert stolen.status_code == 400
    assert SESSION_COOKIE not in browser.cookies
