"""The codec server on the API, over real HTTP: operator-only, CORS for the Temporal UI's
origin alone, and a round trip with the same codec as the worker's."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr, ValidationError
from temporalio.contrib.pydantic import pydantic_data_converter

from c2c.codec import Keyring, codec_from_spec
from c2c.settings import Settings
from starter.api.auth import Role, hashed_entry
from starter.api.codec import is_loopback
from starter.dashboard.session import SESSION_COOKIE
from tests.dashboard.helpers import log_in
from tests.starter.helpers import captured_logs
from tests.support import serve

VIEWER = "viewer-token-for-codec-tests"
OPERATOR = "operator-token-for-codec-tests"
UI = "http://localhost:8233"
KEY = Keyring.new_entry("ui-k1")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def wire(data: bytes, **metadata: bytes) -> dict[str, Any]:
    return {
        "metadata": {k: base64.b64encode(v).decode() for k, v in metadata.items()},
        "data": base64.b64encode(data).decode(),
    }


@pytest.fixture(scope="module")
def codec_settings(settings: Settings) -> Settings:
    # The operator's entry is stored only as a digest.
    tokens = f"{VIEWER}:viewer,{hashed_entry(OPERATOR, Role.OPERATOR)}"
    return settings.model_copy(
        update={"api_tokens": SecretStr(tokens), "encryption_key": SecretStr(KEY)}
    )


@pytest.fixture(scope="module")
def codec_url(codec_settings: Settings) -> Iterator[str]:
    with serve(codec_settings) as url:
        yield url


@pytest_asyncio.fixture
async def http(codec_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=codec_url, timeout=30) as client:
        yield client


async def test_the_ui_round_trip_matches_the_workers_codec(http: httpx.AsyncClient) -> None:
    [payload] = pydantic_data_converter.payload_converter.to_payloads([{"name": "Acme Corp"}])
    body = {"payloads": [wire(payload.data, **dict(payload.metadata))]}
    headers = {**bearer(OPERATOR), "X-Namespace": "default", "Origin": UI}

    encoded = await http.post("/codec/encode", json=body, headers=headers)
    assert encoded.status_code == 200, encoded.text
    assert encoded.headers["access-control-allow-origin"] == UI
    [sealed] = encoded.json()["payloads"]
    assert base64.b64decode(sealed["metadata"]["encoding"]) == b"binary/encrypted"
    assert base64.b64decode(sealed["metadata"]["encryption-key-id"]) == b"ui-k1"
    assert b"Acme" not in base64.b64decode(sealed["data"])

    # What the worker's codec seals, the codec server opens (and the other way round).
    worker_codec = codec_from_spec(KEY)
    assert worker_codec is not None
    [by_worker] = await worker_codec.encode([payload])
    decoded = await http.post(
        "/codec/decode",
        json={"payloads": [wire(by_worker.data, **dict(by_worker.metadata)), sealed]},
        headers=headers,
    )
    assert decoded.status_code == 200, decoded.text
    assert decoded.json()["payloads"] == body["payloads"] * 2


async def test_payloads_that_are_not_encrypted_come_back_unchanged(
    http: httpx.AsyncClient,
) -> None:
    body = {"payloads": [wire(b'"hello"', encoding=b"json/plain")]}
    answer = await http.post("/codec/decode", json=body, headers=bearer(OPERATOR))
    assert answer.status_code == 200
    assert answer.json() == body


async def test_without_a_token_the_codec_answers_401_with_cors_headers(
    http: httpx.AsyncClient,
) -> None:
    answer = await http.post("/codec/decode", json={"payloads": []}, headers={"Origin": UI})
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "unauthorized"
    assert answer.headers["www-authenticate"] == "Bearer"
    # The UI can read the refusal and show it.
    assert answer.headers["access-control-allow-origin"] == UI
    unknown = await http.post("/codec/decode", json={"payloads": []}, headers=bearer("nope"))
    assert unknown.status_code == 401


async def test_the_ui_may_decrypt_with_an_operators_dashboard_session(codec_url: str) -> None:
    # The Temporal UI told to include credentials sends the dashboard's login cookie (the UI
    # and the API are the same site on another port); it has no bearer token to send.
    [payload] = pydantic_data_converter.payload_converter.to_payloads([{"name": "Acme Corp"}])
    sealed = await codec_from_spec(KEY).encode([payload])  # type: ignore[union-attr]
    body = {"payloads": [wire(sealed[0].data, **dict(sealed[0].metadata))]}
    for token, expected in ((OPERATOR, 200), (VIEWER, 403)):
        async with httpx.AsyncClient(base_url=codec_url, timeout=30) as browser:
            assert (await log_in(browser, token)).status_code == 303
            answer = await browser.post("/codec/decode", json=body, headers={"Origin": UI})
            assert answer.status_code == expected, answer.text
            assert answer.headers["access-control-allow-origin"] == UI
            assert answer.headers["access-control-allow-credentials"] == "true"
    # A forged cookie is no session.
    async with httpx.AsyncClient(base_url=codec_url, timeout=30) as forger:
        forger.cookies.set(SESSION_COOKIE, "eyJyb2xlIjoib3BlcmF0b3IifQ.forged")
        answer = await forger.post("/codec/decode", json=body, headers={"Origin": UI})
        assert answer.status_code == 401


async def test_a_viewer_may_not_decrypt(http: httpx.AsyncClient) -> None:
    for path in ("/codec/decode", "/codec/encode"):
        answer = await http.post(path, json={"payloads": []}, headers=bearer(VIEWER))
        assert answer.status_code == 403, path
        assert "operator" in answer.json()["error"]["message"]


async def test_the_ui_origin_passes_preflight_without_a_token(http: httpx.AsyncClient) -> None:
    answer = await http.options(
        "/codec/decode",
        headers={
            "Origin": UI,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
        },
    )
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == UI
    allowed = answer.headers["access-control-allow-headers"].lower()
    assert {"authorization", "content-type", "x-namespace"} <= set(allowed.split(", "))
    assert "POST" in answer.headers["access-control-allow-methods"]


async def test_other_origins_are_refused_and_the_api_itself_has_no_cors(
    http: httpx.AsyncClient,
) -> None:
    preflight = await http.options(
        "/codec/decode",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    # The UI's origin gains no browser access to /api.
    api = await http.get("/api/contracts", headers={**bearer(VIEWER), "Origin": UI})
    assert "access-control-allow-origin" not in api.headers


async def test_malformed_payloads_are_named(http: httpx.AsyncClient) -> None:
    answer = await http.post(
        "/codec/decode",
        json={"payloads": [{"metadata": {}, "data": "@@@"}]},
        headers=bearer(OPERATOR),
    )
    assert answer.status_code == 422
    assert answer.json()["error"]["field"] == "payloads.0.data"
    assert "base64" in answer.json()["error"]["message"]


async def test_a_payload_under_an_unknown_key_is_named(http: httpx.AsyncClient) -> None:
    other = codec_from_spec(Keyring.new_entry("gone"))
    assert other is not None
    [payload] = pydantic_data_converter.payload_converter.to_payloads(["x"])
    [sealed] = await other.encode([payload])
    body = {"payloads": [wire(b"", encoding=b"json/plain"), wire(sealed.data, **sealed.metadata)]}
    answer = await http.post("/codec/decode", json=body, headers=bearer(OPERATOR))
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["field"] == "payloads.1"
    assert "'gone'" in error["message"]


async def test_with_encryption_off_the_codec_says_so(settings: Settings) -> None:
    with serve(settings) as url:
        async with httpx.AsyncClient(base_url=url) as http:
            answer = await http.post("/codec/decode", json={"payloads": []})
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "encryption_off"


def test_a_malformed_key_stops_the_api_from_starting(settings: Settings) -> None:
    from starter.api.app import create_app

    bad = settings.model_copy(update={"encryption_key": SecretStr("k1:c2hvcnQ=")})
    with pytest.raises(ValueError, match="key 'k1' is 5 bytes"):
        create_app(bad)


def test_codec_origins_are_exact_origins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("C2C_CODEC_CORS_ORIGINS", "https://temporal.example.com/, http://[::1]:8233")
    parsed = Settings(_env_file=None)  # type: ignore[call-arg]
    assert parsed.codec_cors_origins == ["https://temporal.example.com", "http://[::1]:8233"]
    for bad in ("*", "https://temporal.example.com/ui", "temporal.example.com"):
        monkeypatch.setenv("C2C_CODEC_CORS_ORIGINS", bad)
        with pytest.raises(ValidationError) as caught:
            Settings(_env_file=None)  # type: ignore[call-arg]
        assert "C2C_CODEC_CORS_ORIGINS" in str(caught.value)
        assert "no path, no wildcard" in str(caught.value)


async def test_without_tokens_an_api_reachable_from_elsewhere_decrypts_for_nobody(
    settings: Settings,
) -> None:
    """Decrypting shows customer data: with a key and no tokens, only an API that listens on
    loopback alone serves the codec, and it says so when it starts."""
    keyed = settings.model_copy(update={"encryption_key": SecretStr(KEY), "api_tokens": None})
    with captured_logs("api") as logs, serve(keyed, host="0.0.0.0") as url:
        async with httpx.AsyncClient(base_url=url) as http:
            sealed = await sealed_payload()
            answer = await http.post("/codec/decode", json=sealed)
            encoded = await http.post("/codec/encode", json={"payloads": []})
    assert answer.status_code == 403, answer.text
    assert answer.json()["error"]["code"] == "codec_needs_tokens"
    assert "C2C_API_TOKENS" in answer.json()["error"]["message"]
    assert encoded.status_code == 403
    assert "the codec server is off" in logs.getvalue()


async def test_without_tokens_an_api_on_loopback_alone_serves_the_codec(
    settings: Settings,
) -> None:
    keyed = settings.model_copy(update={"encryption_key": SecretStr(KEY), "api_tokens": None})
    with serve(keyed, host="127.0.0.1") as url:
        sealed = await sealed_payload()
        async with httpx.AsyncClient(base_url=url) as http:
            answer = await http.post("/codec/decode", json=sealed)
    assert answer.status_code == 200, answer.text
    assert base64.b64decode(answer.json()["payloads"][0]["data"]) == b'"secret"'


def test_an_unknown_interface_is_not_taken_for_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback(None) and not is_loopback("0.0.0.0") and not is_loopback("::")
    assert not is_loopback("api.example")


async def sealed_payload() -> dict[str, Any]:
    """A payload encrypted with ``KEY`` (the API's key), in the codec's wire shape."""
    codec = codec_from_spec(KEY)
    assert codec is not None
    [payload] = pydantic_data_converter.payload_converter.to_payloads(["secret"])
    [sealed] = await codec.encode([payload])
    return {"payloads": [wire(sealed.data, **sealed.metadata)]}
