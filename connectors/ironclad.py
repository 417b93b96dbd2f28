"""Ironclad's public API (``/public/api/v1``): a workflow's attributes and its documents.

Two reads, both on Ironclad's own paths: Retrieve a Workflow (``GET /workflows/{id}``), whose
attributes carry the contract's terms, and Retrieve a Workflow Document (``GET
/workflows/{id}/document/{key}/download``), the signed copy. Authentication is a bearer token
(``C2C_IRONCLAD_ACCESS_TOKEN``, an OAuth client's token with the scopes to read workflows and
their documents); without one, calls carry none (the sandbox without a token takes them).

Failures map to c2c's two error classes: ``429``, ``5xx``, timeouts and connection failures are
transient; other refusals (an unknown workflow, a token Ironclad refuses) are business errors
of the ``ironclad`` system, which an operator sees with Ironclad's message.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import httpx

from c2c.logs import get_logger
from c2c.settings import Settings
from connectors.http import GovernedClient
from domain.errors import BusinessError, Rejection, TransientError

log = get_logger("c2c.connectors")

SYSTEM = "ironclad"
API = "/public/api/v1"


class IroncladClient:
    """Reads workflows and their documents from Ironclad.

    Args:
        base_url: Ironclad's base URL (``https://na1.ironcladapp.com``, or the sandbox's
            ``/vendors/ironclad``); the client adds ``/public/api/v1``.
        token: The bearer token, if any.
        timeout_s: Connect and read timeout of each call.
    """

    def __init__(self, base_url: str, *, token: str | None, timeout_s: float = 10.0) -> None:
        self.base_url = f"{base_url.rstrip('/')}{API}"
        self.token = token
        self.timeout_s = timeout_s

    @classmethod
    def from_settings(cls, settings: Settings) -> IroncladClient:
        token = settings.ironclad_access_token
        return cls(
            settings.ironclad_base_url,
            token=token.get_secret_value() if token else None,
            timeout_s=settings.connector_timeout_s,
        )

    async def workflow(self, workflow_id: str) -> dict[str, Any]:
        """The workflow as Ironclad gives it (``GET /workflows/{id}``)."""
        answer = await self._get(f"/workflows/{quote(workflow_id, safe='')}", "workflows")
        try:
            payload = answer.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            raise BusinessError(
                Rejection(system=SYSTEM, code="not_a_workflow", message="no workflow object")
            )
        return payload

    async def workflow_document(self, workflow_id: str, key: str) -> bytes:
        """A document of the workflow by its key (``GET /workflows/{id}/document/{key}/
        download``)."""
        path = f"/workflows/{quote(workflow_id, safe='')}/document/{quote(key, safe='')}/download"
        answer = await self._get(path, "workflows/document")
        return answer.content

    async def _get(self, path: str, route: str) -> httpx.Response:
        headers = {"Accept": "application/json, application/pdf"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        started = time.monotonic()
        try:
            async with GovernedClient(SYSTEM, timeout=self.timeout_s) as client:
                answer = await client.get(f"{self.base_url}{path}", headers=headers)
        except httpx.HTTPError as exc:
            raise TransientError(SYSTEM, f"{route}: {type(exc).__name__}") from None
        finally:
            log.debug("ironclad call", route=route, ms=int((time.monotonic() - started) * 1000))
        status = answer.status_code
        if status == 200:
            return answer
        if status == 429 or status >= 500:
            retry_after = None
            try:
                retry_after = float(answer.headers.get("Retry-After", ""))
            except ValueError:
                retry_after = None
            raise TransientError(
                SYSTEM, f"{route}: HTTP {status}", status=status, retry_after_s=retry_after
            )
        code, message = f"http_{status}", answer.reason_phrase or "refused"
        try:
            payload = answer.json()
        except ValueError:
            payload = None
        if isinstance(payload, dict):
            code = str(payload.get("code") or code)
            message = str(payload.get("message") or message)
        raise BusinessError(Rejection(system=SYSTEM, code=code, message=message, status=status))
