"""What the API answers when a handler fails unexpectedly: a generic ``500`` in the error shape,
with the request id to quote and no traceback; the traceback is in the log line of that id."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client

from c2c.settings import Settings
from starter.api.app import create_app
from starter.api.errors import REQUEST_ID_HEADER
from tests.starter.helpers import captured_logs

#: Text only the failing handler knows: it must stay out of the answer.
INTERNALS = "ledger row 42 is inconsistent"


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    with captured_logs("api") as out:
        yield out


@pytest_asyncio.fixture
async def api(settings: Settings, temporal_client: Client) -> AsyncIterator[httpx.AsyncClient]:
    """The real app, every middleware and error handler in place, plus one failing route."""
    app = create_app(settings, client=temporal_client)

    async def broken() -> None:
        raise RuntimeError(INTERNALS)

    app.add_api_route("/api/broken", broken, methods=["GET"])
    # The app's own 500 answer is under test, not the transport's re-raise.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client


async def test_an_unexpected_error_is_a_generic_500_with_the_request_id(
    api: httpx.AsyncClient, log_stream: io.StringIO
) -> None:
    response = await api.get("/api/broken")

    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"]["code"] == "internal_error"
    request_id = body["request_id"]
    assert request_id and response.headers[REQUEST_ID_HEADER] == request_id
    for internal in (INTERNALS, "Traceback", "RuntimeError", "test_errors.py"):
        assert internal not in response.text
    lines = [json.loads(x) for x in log_stream.getvalue().splitlines()]
    [logged] = [x for x in lines if x["event"] == "unhandled error"]
    assert logged["request_id"] == request_id and logged["path"] == "/api/broken"
    assert INTERNALS in logged["exception"] and "Traceback" in logged["exception"]
    [request] = [x for x in lines if x["event"] == "request"]
    assert (request["request_id"], request["status"]) == (request_id, 500)


async def test_every_answer_names_its_request(api: httpx.AsyncClient) -> None:
    first, second = await api.get("/healthz"), await api.get("/api/nowhere")
    assert first.status_code == 200 and second.status_code == 404
    ids = {first.headers[REQUEST_ID_HEADER], second.headers[REQUEST_ID_HEADER]}
    assert len(ids) == 2
