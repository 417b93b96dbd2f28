"""DocuSign eSignature: the signed envelope's custom fields and combined PDF, read with
DocuSign's own Python client (``docusign-esign``).

The client is synchronous (urllib3), so every call runs in a thread. Authentication is a
bearer token: ``C2C_DOCUSIGN_ACCESS_TOKEN`` as given (the sandbox's), or, in production, one
obtained with OAuth's JWT grant from the integration key, the user c2c acts as and the
integration key's RSA private key, and obtained again before it expires. With neither, calls
carry no token (the sandbox without a token configured takes them).

Failures map to c2c's two error classes: ``429``, ``5xx`` and connection failures are
transient; other refusals (an unknown envelope, a token DocuSign refuses) are business errors
of the ``docusign`` system, which put the contract on hold for an operator.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import urllib3
from docusign_esign import ApiClient, EnvelopesApi
from docusign_esign.client.api_exception import ApiException

from c2c.call_limits import call_slot
from c2c.logs import get_logger
from c2c.settings import Settings
from domain.errors import BusinessError, Rejection, TransientError

log = get_logger("c2c.connectors")

SYSTEM = "docusign"
#: The document id that asks for every document of the envelope as one PDF.
COMBINED = "combined"
#: How long a JWT grant's token is asked to last, and how long before its end a new one is got.
TOKEN_LIFETIME_S = 3600
TOKEN_MARGIN_S = 300


@dataclass(frozen=True)
class EnvelopeFields:
    """An envelope's custom fields: text and list fields, by name."""

    values: dict[str, str]


class DocuSignClient:
    """Reads envelopes from DocuSign's eSignature REST API (v2.1).

    Args:
        base_url: DocuSign's base URL (``https://demo.docusign.net``, or the sandbox's
            ``/vendors/docusign``); the client adds ``/restapi``.
        settings: Authentication settings (``C2C_DOCUSIGN_*``).
        timeout_s: Connect and read timeout of each call.
    """

    def __init__(self, base_url: str, settings: Settings, *, timeout_s: float = 10.0) -> None:
        self.api = ApiClient(host=f"{base_url.rstrip('/')}/restapi")
        self.settings = settings
        self.timeout_s = timeout_s
        self._token_until = 0.0
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> DocuSignClient:
        return cls(settings.docusign_base_url, settings, timeout_s=settings.connector_timeout_s)

    async def combined_document(self, account_id: str, envelope_id: str) -> bytes:
        """The envelope's documents as one PDF (``GET .../documents/combined``)."""
        data = await self._call(
            lambda envelopes: envelopes.get_document(
                account_id, COMBINED, envelope_id, _request_timeout=self.timeout_s
            ),
            "documents/combined",
        )
        if not isinstance(data, bytes):
            raise BusinessError(
                Rejection(system=SYSTEM, code="not_a_document", message="no document bytes")
            )
        return data

    async def custom_fields(self, account_id: str, envelope_id: str) -> EnvelopeFields:
        """The envelope's text and list custom fields (``GET .../custom_fields``)."""
        found = await self._call(
            lambda envelopes: envelopes.list_custom_fields(
                account_id, envelope_id, _request_timeout=self.timeout_s
            ),
            "custom_fields",
        )
        values: dict[str, str] = {}
        for field in [*(found.text_custom_fields or []), *(found.list_custom_fields or [])]:
            if field.name:
                values[field.name] = field.value or ""
        return EnvelopeFields(values)

    async def _call(self, call: Any, route: str) -> Any:
        def run() -> Any:
            self._authorize()
            return call(EnvelopesApi(self.api))

        started = time.monotonic()
        try:
            async with call_slot(SYSTEM):
                return await asyncio.to_thread(run)
        except ApiException as exc:
            raise _error(exc, route) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise TransientError(SYSTEM, f"{route}: {type(exc).__name__}") from None
        finally:
            log.debug("docusign call", route=route, ms=int((time.monotonic() - started) * 1000))

    def _authorize(self) -> None:
        """Set the bearer token: the configured one, or a JWT grant's, renewed before its end."""
        settings = self.settings
        if settings.docusign_access_token is not None:
            token = settings.docusign_access_token.get_secret_value()
            self.api.set_default_header("Authorization", f"Bearer {token}")
            return
        if not (
            settings.docusign_integration_key
            and settings.docusign_user_id
            and settings.docusign_private_key_file
        ):
            # No credentials: calls go unauthenticated, as the sandbox takes them when it has
            # no token configured (DocuSign itself answers 401, a business error).
            return
        with self._lock:
            if time.monotonic() < self._token_until:
                return
            key = settings.docusign_private_key_file.read_bytes()
            # Sets the Authorization header of the client itself.
            self.api.request_jwt_user_token(
                client_id=settings.docusign_integration_key,
                user_id=settings.docusign_user_id,
                oauth_host_name=settings.docusign_oauth_host,
                private_key_bytes=key,
                expires_in=TOKEN_LIFETIME_S,
                scopes=["signature", "impersonation"],
            )
            self._token_until = time.monotonic() + TOKEN_LIFETIME_S - TOKEN_MARGIN_S


def _error(exc: ApiException, route: str) -> Exception:
    status = int(exc.status or 0)
    if status == 429 or status >= 500 or status == 0:
        retry_after = None
        if exc.headers and exc.headers.get("Retry-After"):
            try:
                retry_after = float(exc.headers["Retry-After"])
            except ValueError:
                retry_after = None
        return TransientError(
            SYSTEM, f"{route}: HTTP {status}", status=status, retry_after_s=retry_after
        )
    code, message = f"http_{status}", str(exc.reason or "refused")
    body = exc.body
    if isinstance(body, bytes | str):
        try:
            payload = json.loads(body)
            code = str(payload.get("errorCode") or code)
            message = str(payload.get("message") or message)
        except (ValueError, AttributeError):
            pass
    return BusinessError(Rejection(system=SYSTEM, code=code, message=message, status=status))
