"""Webhook signatures (SPEC.md section 5): ``t=<unix>,v1=<hex HMAC-SHA256("<t>.<body>")>``."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Sequence

from domain.names import SIGNATURE_TOLERANCE_S

#: A timestamp is unix seconds in ASCII digits; twelve reach the year 33658, and a bound keeps a
#: huge number from overflowing the float arithmetic of the tolerance check.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
#: A v1 signature is a hex SHA-256 digest (compared in lowercase, as `sign` writes it).
_DIGEST = re.compile(r"[0-9a-fA-F]{64}")


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
            parts.setdefault(key, []).append(value.strip())
    stamps = parts.get("t", [])
    # fullmatch, not int(): int() also takes signs, underscores and non-ASCII digits.
    if len(stamps) != 1 or not _TIMESTAMP.fullmatch(stamps[0]):
        raise SignatureError("malformed signature header")
    t = int(stamps[0])
    candidates = [c.lower().encode("ascii") for c in parts.get("v1", []) if _DIGEST.fullmatch(c)]
    if not candidates:
        raise SignatureError("malformed signature header")
    current = time.time() if now is None else now
    # Both ways: a timestamp from the future is as much a replay risk as an old one.
    if abs(current - t) > tolerance_s:
        raise SignatureError("signature timestamp outside the tolerance")
    signed = f"{t}.".encode() + body
    for secret in secrets:
        expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest().encode("ascii")
        # compare_digest on bytes: constant time in the contents (on str it would also raise
        # TypeError for non-ASCII text, which a header may carry).
        if any(hmac.compare_digest(expected, c) for c in candidates):
            return t
    raise SignatureError("signature does not match")
