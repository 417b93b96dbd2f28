"""Signed webhooks at the API's door (SPEC.md section 5), over real HTTP against the session's
Temporal dev server: a signature that is missing, malformed, stale, from the future or made
with an unknown secret is a ``401`` that records nothing, starts nothing and logs no part of the
body or the signature; during a rotation both secrets are accepted.

The unit rules of ``c2c.signing`` are in ``tests/starter/api/test_signing.py``; these check what
the API does with them.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from c2c.settings import Settings
from c2c.signing import SignatureError, sign, verify
from domain.names import SIGNATURE_HEADER, SIGNATURE_TOLERANCE_S, contract_workflow_id
from ledger import Ledger, get_ledger
from tests.starter.helpers import captured_logs
from tests.support import approval_payload, serve

CLM = "/webhooks/clm"
NEW_SECRET = "whsec-rotated-in-7f3a"
OLD_SECRET = "whsec-rotating-out-91c2"
#: A string that only the refused bodies carry, to look for in answers and logs.
MARKER = "Body-Marker-5b1e0c"


@pytest.fixture(scope="module")
def rotation_settings(settings: Settings, state_dir: Path) -> Settings:
    """An API that accepts two secrets, as during a rotation, and a queue no worker polls."""
    return settings.model_copy(
        update={
            "webhook_secret": SecretStr(f"{NEW_SECRET}, {OLD_SECRET}"),
            "task_queue": f"c2c-sig-test-{uuid.uuid4().hex[:8]}",
            "database_url": f"sqlite:///{state_dir / 'signatures-ledger.db'}",
        }
    )


@pytest.fixture(scope="module")
def api_url(rotation_settings: Settings) -> Iterator[str]:
    with serve(rotation_settings) as url:
        yield url


@pytest.fixture(scope="module")
def inbound(rotation_settings: Settings, api_url: str) -> Ledger:
    """The API's ledger (created by the API when it first records an event)."""
    store = get_ledger(rotation_settings.ledger_url)
    store.create_all()
    return store


@pytest.fixture
def log_lines() -> Iterator[Any]:
    """The process's log lines as JSON, as ``c2c api`` writes them."""
    with captured_logs("api") as out:
        yield lambda: out.getvalue()


def approval_body() -> tuple[str, bytes]:
    """A new contract's id and its ``contract.approved`` body, which carries ``MARKER``."""
    data = approval_payload(title=f"SOW {MARKER}")
    body = {"id": f"evt_{uuid.uuid4().hex[:12]}", "type": "contract.approved", "data": data}
    return data["contract_id"], json.dumps(body).encode()


async def assert_not_started(client: Client, contract_id: str) -> None:
    with pytest.raises(RPCError) as refused:
        await client.get_workflow_handle(contract_workflow_id(contract_id)).describe()
    assert refused.value.status == RPCStatusCode.NOT_FOUND


def digest(header: str) -> str:
    """The v1 part of a signature header."""
    return header.split("v1=")[1]


def refused_headers(body: bytes) -> dict[str, str | bytes | None]:
    """Signature header values the API must refuse (``None``: no header), by what is wrong."""
    now = int(time.time())
    good = digest(sign(body, NEW_SECRET, timestamp=now))
    return {
        "missing": None,
        "empty": "",
        "garbage": "garbage",
        "no-timestamp": f"v1={good}",
        "no-digest": f"t={now}",
        "two-timestamps": f"t={now},t={now + 1},v1={good}",
        "signed-timestamp": f"t=+{now},v1={good}",
        "huge-timestamp": f"t={'9' * 400},v1={good}",
        "short-digest": f"t={now},v1={good[:63]}",
        # Latin-1 text in a header: a str comparison would raise instead of refusing.
        "non-ascii-digest": f"t={now},v1={'é' * 64}".encode("latin-1"),
        "stale": sign(body, NEW_SECRET, timestamp=now - SIGNATURE_TOLERANCE_S - 1),
        # Well beyond: a slow request brings a future timestamp closer to the API's clock.
        "future": sign(body, NEW_SECRET, timestamp=now + SIGNATURE_TOLERANCE_S + 60),
        "unknown-secret": sign(body, "whsec-retired-long-ago"),
        "other-body": sign(body + b" ", NEW_SECRET),
    }


@pytest.mark.parametrize("case", list(refused_headers(b"")))
async def test_a_bad_signature_is_refused_records_nothing_and_logs_no_body(
    api_url: str, inbound: Ledger, temporal_client: Client, log_lines: Any, case: str
) -> None:
    contract_id, body = approval_body()
    sent = refused_headers(body)[case]
    headers = [(b"content-type", b"application/json")]
    if sent is not None:
        value = sent if isinstance(sent, bytes) else sent.encode()
        headers.append((SIGNATURE_HEADER.encode(), value))

    async with httpx.AsyncClient(base_url=api_url, timeout=30) as api:
        response = await api.post(CLM, content=body, headers=headers)

    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "invalid_signature"
    assert MARKER not in response.text
    assert inbound.list_inbound_events(contract_id=contract_id) == []
    await assert_not_started(temporal_client, contract_id)
    logged = log_lines()
    [line] = [json.loads(x) for x in logged.splitlines() if "signature rejected" in x]
    assert line["path"] == CLM and line["level"] == "warning"
    assert MARKER not in logged and contract_id not in logged
    if isinstance(sent, str) and "v1=" in sent and digest(sent):
        assert digest(sent) not in logged


@pytest.mark.parametrize("secret", [NEW_SECRET, OLD_SECRET], ids=["new", "old"])
async def test_during_a_rotation_either_secret_is_accepted(
    api_url: str, inbound: Ledger, temporal_client: Client, secret: str
) -> None:
    contract_id, body = approval_body()
    headers = {SIGNATURE_HEADER: sign(body, secret), "Content-Type": "application/json"}

    async with httpx.AsyncClient(base_url=api_url, timeout=30) as api:
        response = await api.post(CLM, content=body, headers=headers)

    assert response.status_code == 202, response.text
    [recorded] = inbound.list_inbound_events(contract_id=contract_id)
    assert recorded.status == "processed"
    handle = temporal_client.get_workflow_handle(contract_workflow_id(contract_id))
    assert (await handle.describe()).id == contract_workflow_id(contract_id)


def test_a_timestamp_from_the_future_beyond_the_tolerance_is_refused() -> None:
    now = 1_800_000_000
    ahead = sign(b"{}", NEW_SECRET, timestamp=now + SIGNATURE_TOLERANCE_S + 1)
    with pytest.raises(SignatureError, match="tolerance"):
        verify(ahead, b"{}", [NEW_SECRET], now=now)
    at_edge = sign(b"{}", NEW_SECRET, timestamp=now + SIGNATURE_TOLERANCE_S)
    assert verify(at_edge, b"{}", [NEW_SECRET], now=now) == now + SIGNATURE_TOLERANCE_S


def test_a_digest_in_upper_case_is_the_same_digest() -> None:
    now = 1_800_000_000
    header = sign(b"{}", NEW_SECRET, timestamp=now)
    upper = f"t={now},v1={digest(header).upper()}"
    assert verify(upper, b"{}", [NEW_SECRET], now=now) == now


def test_the_comparison_is_constant_time_on_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every candidate is compared with ``hmac.compare_digest`` and never with ``==``."""
    import hmac

    from c2c import signing

    compared: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(signing.hmac, "compare_digest", spy)
    now = 1_800_000_000
    header = sign(b"{}", OLD_SECRET, timestamp=now)
    assert verify(header, b"{}", [NEW_SECRET, OLD_SECRET], now=now) == now
    assert len(compared) == 2
    assert all(isinstance(a, bytes) and isinstance(b, bytes) for a, b in compared)
