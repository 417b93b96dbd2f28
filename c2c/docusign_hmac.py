"""DocuSign Connect's HMAC: ``X-DocuSign-Signature-N`` is the base64 HMAC-SHA256 of the raw
body with the N-th active key of the Connect configuration.

DocuSign sends one header per active key (up to 100), so a key is rotated by adding the new
one in DocuSign and in ``C2C_DOCUSIGN_CONNECT_KEYS``, then removing the old one from both:
any header that matches any configured key verifies the message. Connect messages carry no
timestamp: a replayed message verifies, and is answered as the duplicate it is (c2c records
each envelope's status once).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence

#: The header of the first key; the N-th key's is ``X-DocuSign-Signature-N``.
HEADER_PREFIX = "X-DocuSign-Signature-"
#: DocuSign allows at most this many active keys per account.
MAX_KEYS = 100


class ConnectSignatureError(ValueError):
    """No signature header matches a configured key (the reason is safe to log)."""


def sign_connect(body: bytes, key: str) -> str:
    """The value of a signature header for ``body`` under ``key``."""
    mac = hmac.new(key.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(mac).decode("ascii")


def signature_headers(body: bytes, keys: Sequence[str]) -> dict[str, str]:
    """Every header DocuSign would send for ``body`` with these active keys, in order."""
    return {f"{HEADER_PREFIX}{n}": sign_connect(body, key) for n, key in enumerate(keys, 1)}


def verify_connect(headers: Mapping[str, str], body: bytes, keys: Sequence[str]) -> int:
    """Check the signature headers against every configured key.

    Args:
        headers: The request's headers (looked up case-insensitively).
        body: The raw body, exactly as received.
        keys: The configured keys.

    Returns:
        The number N of the header that matched.

    Raises:
        ConnectSignatureError: No key configured, no signature header, or none matches.
    """
    if not keys:
        raise ConnectSignatureError("no DocuSign Connect key is configured")
    lowered = {name.lower(): value for name, value in headers.items()}
    prefix = HEADER_PREFIX.lower()
    given: list[tuple[int, bytes]] = []
    for n in range(1, MAX_KEYS + 1):
        header = lowered.get(f"{prefix}{n}")
        if header is not None:
            given.append((n, header.strip().encode("ascii", "replace")))
    if not given:
        raise ConnectSignatureError("missing X-DocuSign-Signature-1 header")
    expected = [sign_connect(body, key).encode("ascii") for key in keys]
    for n, signature in given:
        # compare_digest on bytes: constant time in the contents.
        if any(hmac.compare_digest(signature, e) for e in expected):
            return n
    raise ConnectSignatureError("no X-DocuSign-Signature header matches a configured key")
