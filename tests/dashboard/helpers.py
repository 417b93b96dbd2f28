"""Tokens, form fields and records shared by the dashboard tests."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import httpx

from ledger import Ledger
from ledger.models import ExceptionIn

VIEWER_TOKEN = "dash-viewer-token-7f3a"
OPERATOR_TOKEN = "dash-operator-token-91c2"

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    found = _CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


async def page_token(client: httpx.AsyncClient, path: str = "/") -> str:
    """Load a page (which sets the browser's CSRF cookie) and return its forms' token."""
    response = await client.get(path)
    assert response.status_code == 200, response.text
    return csrf_of(response.text)


async def log_in(client: httpx.AsyncClient, token: str, name: str = "") -> httpx.Response:
    """Log in through the login form, as a browser does."""
    csrf = await page_token(client, "/login")
    return await client.post(
        "/login", data={"csrf_token": csrf, "token": token, "name": name, "next": "/"}
    )


def open_exception(ledger: Ledger, *, message: str, contract_id: str | None = None) -> str:
    """Put an exception straight into the ledger's queue (for contracts no workflow runs);
    returns its id."""
    exception_id = f"EXC-{uuid.uuid4().hex[:10]}"
    contract_id = contract_id or f"T-{uuid.uuid4().hex[:12]}"
    ledger.open_exception(
        ExceptionIn(
            exception_id=exception_id,
            contract_id=contract_id,
            workflow_id=f"contract-{contract_id}",
            stage="validating",
            system="erp",
            code="unknown_legal_entity",
            message=message,
            queue="legal",
            opened_at=datetime.now(UTC),
        )
    )
    return exception_id
