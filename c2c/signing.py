"""Webhook signatures (SPEC.md section 5): ``t=<unix>,v1=<hex HMAC-SHA256("<t>.<body>")>``."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

from domain.names import SIGNATURE_TOLERANCE_S


class SignatureError(ValueError):
    """The signature header is missing, malformed, stale or does not match."""


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """The header value that signs ``body`` with ``secret`` at ``timestamp`` (now by default)."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(
    header: str | None,
    body: bytes,
    secrets: Sequence[str],
    *,
    now: float | None = None,
    tolerance_s: int = SIGNATURE_TOLERANCE_S,
) -> int:
    """Check a signature header against every accepted secret; return its timestamp.

    Raises:
        SignatureError: with a reason safe to log (never the body or a secret).
    """
    if not secrets:
        raise SignatureError("no webhook secret is configured")
    if not header:
        raise SignatureError("missing signature header")
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if sep:
            parts.setdefault(key, []).append(value)
    try:
        t = int(parts["t"][0])
    except (KeyError, ValueError):
        raise SignatureError("malformed signature header") from None
    candidates = parts.get("v1", [])
    if not candidates:
        raise SignatureError("malformed signature header")
    current = time.time() if now is None else now
    if abs(current - t) > tolerance_s:
        raise SignatureError("signature timestamp outside the tolerance")
    signed = f"{t}.".encode() + body
    for secret in secrets:
        expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        # compare_digest keeps the comparison constant-time.
        if any(hmac.compare_digest(expected, c) for c in candidates):
            return t
    raise SignatureError("signature does not match")
