"""Cookies, CSRF tokens and bearer tokens with characters no real one has, over real HTTP:
each is a wrong credential (``401``, ``403`` or the login page), never a ``500``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr

from c2c.codec import Keyring
from c2c.settings import Settings
from starter.dashboard.session import CSRF_COOKIE, SESSION_COOKIE, same_text
from tests.dashboard.helpers import OPERATOR_TOKEN, VIEWER_TOKEN, log_in, page_token
from tests.support import serve

#: Bytes as a client may send them in a header: Latin-1, UTF-8, and a control-free mix.
STRANGE = [b"abc.\xe9", "\u00fc".encode(), b"\xc3\xa9.\xff\xfe", b"abc.\xe2\x82\xac"]


@pytest.fixture(scope="module")
def strict_url(settings: Settings) -> Iterator[str]:
    update = {
        "api_tokens": SecretStr(f"{VIEWER_TOKEN}:viewer,{OPERATOR_TOKEN}:operator"),
        "encryption_key": SecretStr(Keyring.new_entry("strange-k1")),
    }
    with serve(settings.model_copy(update=update)) as url:
        yield url


@pytest_asyncio.fixture
async def http(strict_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=strict_url, timeout=30) as client:
        yield client


def cookie(name: str, value: bytes) -> dict[str, bytes]:
    return {"Cookie": name.encode() + b"=" + value}


def test_a_non_ascii_text_is_a_mismatch_not_an_error() -> None:
    assert same_text("abc", "abc")
    assert not same_text("\u00fc", "abc")
    assert not same_text("abc.\udce9", "abc")


@pytest.mark.parametrize("value", STRANGE)
async def test_a_strange_session_cookie_is_no_session(
    http: httpx.AsyncClient, value: bytes
) -> None:
    page = await http.get("/", headers=cookie(SESSION_COOKIE, value))
    assert page.status_code in (303, 401), page.text
    decoded = await http.post(
        "/codec/decode", json={"payloads": []}, headers=cookie(SESSION_COOKIE, value)
    )
    assert decoded.status_code == 401, decoded.text
    assert decoded.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("value", STRANGE)
async def test_a_strange_bearer_token_is_unknown(http: httpx.AsyncClient, value: bytes) -> None:
    response = await http.get("/api/contracts", headers={"Authorization": b"Bearer " + value})
    assert response.status_code == 401, response.text


@pytest.mark.parametrize("given", ["\u00fc", "abc\u00e9", "\u20ac" * 40])
async def test_a_strange_csrf_token_on_login_is_refused(
    http: httpx.AsyncClient, given: str
) -> None:
    await page_token(http, "/login")
    response = await http.post(
        "/login", data={"csrf_token": given, "token": OPERATOR_TOKEN, "next": "/"}
    )
    assert response.status_code == 403, response.text
    assert SESSION_COOKIE not in response.cookies


async def test_a_strange_csrf_nonce_cookie_is_refused(http: httpx.AsyncClient) -> None:
    csrf = await page_token(http, "/login")
    http.cookies.clear()
    response = await http.post(
        "/login",
        data={"csrf_token": csrf, "token": OPERATOR_TOKEN, "next": "/"},
        headers=cookie(CSRF_COOKIE, b"\xe9\xe9"),
    )
    assert response.status_code == 403, response.text


@pytest.mark.parametrize("given", ["\u00fc", "x" * 10 + "\u00e9"])
async def test_a_strange_csrf_token_on_a_dashboard_form_is_refused(
    http: httpx.AsyncClient, given: str
) -> None:
    logged_in = await log_in(http, OPERATOR_TOKEN, "ops")
    assert logged_in.status_code == 303, logged_in.text
    response = await http.post(
        "/ui/exceptions/EXC-none/retry", data={"csrf_token": given, "next": "/"}
    )
    assert response.status_code == 403, response.text
