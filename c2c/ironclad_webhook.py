"""Ironclad's webhook signature, and the verification key the API keeps.

Ironclad signs each webhook with its private key: ``X-Ironclad-Webhook-Verification`` is a
JSON object of ``nonce``, ``signAlgorithm`` (``RSA-SHA256``), ``signature`` and ``encoding``
(``base64``), and the signed bytes are ``X-Ironclad-Webhook-Event-Id``, then the raw body, then
the nonce. The public key is Ironclad's to give: ``GET /public/api/v1/webhooks/
verification-key`` answers it as PEM.

``VerificationKeys`` is the one place where the API reads a system: it fetches that key once,
keeps it, and fetches it again only when a signature fails to verify with what it keeps (Ironclad
rotated its key; Ironclad's webhooks name no key id), at most once every
``C2C_IRONCLAD_KEY_REFRESH_S``, so that forged webhooks cannot make c2c call Ironclad on each
request. The key it replaced is kept beside the new one: webhooks signed before a rotation and
delivered after it still verify.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from collections.abc import Mapping, Sequence

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

EVENT_ID_HEADER = "X-Ironclad-Webhook-Event-Id"
VERIFICATION_HEADER = "X-Ironclad-Webhook-Verification"
SIGN_ALGORITHM = "RSA-SHA256"
#: Ironclad's verification key endpoint, under its base URL.
KEY_PATH = "/public/api/v1/webhooks/verification-key"
#: Keys kept at once: the newest and the one it replaced.
KEPT_KEYS = 2


class IroncladSignatureError(ValueError):
    """A webhook's signature is missing, malformed or does not verify (safe to log)."""


class VerificationKeyUnavailable(RuntimeError):
    """Ironclad's verification key could not be fetched (c2c answers ``503`` for a retry)."""


def signed_bytes(event_id: str, body: bytes, nonce: str) -> bytes:
    """What Ironclad signs: the event id, the raw body and the nonce, in that order."""
    return event_id.encode() + body + nonce.encode()


def sign_webhook(
    private_key: rsa.RSAPrivateKey, event_id: str, body: bytes, nonce: str
) -> dict[str, str]:
    """The two headers Ironclad sends with ``body`` (the sandbox signs with this)."""
    signature = private_key.sign(
        signed_bytes(event_id, body, nonce), padding.PKCS1v15(), hashes.SHA256()
    )
    verification = {
        "nonce": nonce,
        "signAlgorithm": SIGN_ALGORITHM,
        "signature": base64.b64encode(signature).decode("ascii"),
        "encoding": "base64",
    }
    return {EVENT_ID_HEADER: event_id, VERIFICATION_HEADER: json.dumps(verification)}


def load_public_key(pem: str | bytes) -> rsa.RSAPublicKey:
    """An RSA public key from PEM.

    Raises:
        ValueError: Not a PEM RSA public key.
    """
    data = pem.encode() if isinstance(pem, str) else pem
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the verification key is not an RSA public key")
    return key


def _signature_of(headers: Mapping[str, str]) -> tuple[str, str, bytes]:
    """The event id, nonce and signature a request's headers carry."""
    lowered = {name.lower(): value for name, value in headers.items()}
    event_id = lowered.get(EVENT_ID_HEADER.lower(), "").strip()
    if not event_id:
        raise IroncladSignatureError(f"missing {EVENT_ID_HEADER} header")
    raw = lowered.get(VERIFICATION_HEADER.lower())
    if not raw:
        raise IroncladSignatureError(f"missing {VERIFICATION_HEADER} header")
    try:
        verification = json.loads(raw)
    except ValueError:
        raise IroncladSignatureError(f"{VERIFICATION_HEADER} is not a JSON object") from None
    if not isinstance(verification, dict):
        raise IroncladSignatureError(f"{VERIFICATION_HEADER} is not a JSON object")
    nonce, signature = verification.get("nonce"), verification.get("signature")
    if not isinstance(nonce, str) or not isinstance(signature, str):
        raise IroncladSignatureError(f"{VERIFICATION_HEADER}: nonce and signature are required")
    algorithm = str(verification.get("signAlgorithm", SIGN_ALGORITHM)).upper()
    if algorithm not in (SIGN_ALGORITHM, "SHA256"):
        raise IroncladSignatureError(f"{VERIFICATION_HEADER}: signAlgorithm {algorithm!r}")
    if str(verification.get("encoding", "base64")).lower() != "base64":
        raise IroncladSignatureError(f"{VERIFICATION_HEADER}: encoding must be base64")
    try:
        decoded = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise IroncladSignatureError(f"{VERIFICATION_HEADER}: signature is not base64") from None
    return event_id, nonce, decoded


def verify_webhook(
    headers: Mapping[str, str], body: bytes, keys: Sequence[rsa.RSAPublicKey]
) -> str:
    """Check a webhook's signature against any of ``keys``.

    Returns:
        The event id the headers name.

    Raises:
        IroncladSignatureError: Missing or malformed headers, or no key verifies.
    """
    event_id, nonce, signature = _signature_of(headers)
    data = signed_bytes(event_id, body, nonce)
    for key in keys:
        try:
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            continue
        return event_id
    raise IroncladSignatureError("the signature does not verify with Ironclad's key")


class VerificationKeys:
    """Ironclad's webhook verification keys, fetched once and again on a rotation.

    Args:
        base_url: Ironclad's base URL (the sandbox's ``/vendors/ironclad`` by default).
        token: The API token, if Ironclad asks for one.
        refresh_s: Least seconds between two fetches after a failed verification.
        timeout_s: Timeout of a fetch.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        refresh_s: float = 60.0,
        timeout_s: float = 10.0,
    ) -> None:
        self.url = f"{base_url.rstrip('/')}{KEY_PATH}"
        self.token = token
        self.refresh_s = refresh_s
        self.timeout_s = timeout_s
        self.keys: list[rsa.RSAPublicKey] = []
        self.fetches = 0
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def verify(self, headers: Mapping[str, str], body: bytes) -> str:
        """Verify a webhook, fetching the key first if none is kept, and again (within the
        bound) when what is kept does not verify it.

        Returns:
            The event id.

        Raises:
            IroncladSignatureError: The signature does not verify.
            VerificationKeyUnavailable: No key is kept and Ironclad does not give one.
        """
        _signature_of(headers)  # a malformed request costs no fetch
        if not self.keys:
            await self._refresh(force=True)
        try:
            return verify_webhook(headers, body, self.keys)
        except IroncladSignatureError:
            if not await self._refresh(force=False):
                raise
        return verify_webhook(headers, body, self.keys)

    async def _refresh(self, *, force: bool) -> bool:
        """Fetch the key; ``False`` when the bound allows no fetch now or the key is the same."""
        async with self._lock:
            now = time.monotonic()
            recent = self._fetched_at is not None and now - self._fetched_at < self.refresh_s
            if not force and recent:
                return False
            if force and self.keys:
                return True  # another request fetched it meanwhile
            if force and recent:
                # The last fetch failed: webhooks wait (503, retried by Ironclad) rather than
                # making c2c call Ironclad once each.
                raise VerificationKeyUnavailable(
                    f"{self.url}: the last fetch failed; the next one is allowed "
                    f"{self.refresh_s:g} s after it"
                )
            self._fetched_at = now
            key = await self._fetch()
            known = [k.public_numbers() for k in self.keys]
            if key.public_numbers() in known:
                return False
            self.keys = [key, *self.keys][:KEPT_KEYS]
            return True

    async def _fetch(self) -> rsa.RSAPublicKey:
        headers = {"Accept": "application/x-pem-file, text/plain, application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        self.fetches += 1
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                answer = await client.get(self.url, headers=headers)
        except httpx.HTTPError as exc:
            raise VerificationKeyUnavailable(f"{self.url}: {type(exc).__name__}") from None
        if answer.status_code != 200:
            raise VerificationKeyUnavailable(f"{self.url}: HTTP {answer.status_code}")
        text = answer.text
        if text.lstrip().startswith("{"):
            # Some deployments answer JSON around the PEM: take the string that holds it.
            try:
                payload = json.loads(text)
            except ValueError:
                payload = {}
            text = next((v for v in payload.values() if isinstance(v, str) and "BEGIN" in v), "")
        try:
            return load_public_key(text)
        except ValueError as exc:
            raise VerificationKeyUnavailable(f"{self.url}: {exc}") from None
