"""NetSuite token-based authentication: OAuth 1.0a requests signed with HMAC-SHA256.

NetSuite's REST web services take an ``Authorization: OAuth ...`` header whose ``realm`` is
the account id and whose signature covers the method, the URL without its query, and every
query and ``oauth_*`` parameter (RFC 5849, section 3.4). The connector signs with this module
and the sandbox verifies with it, so both sides agree on the same published algorithm.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import httpx

SIGNATURE_METHOD = "HMAC-SHA256"


@dataclass(frozen=True)
class TokenCredentials:
    """An integration record's consumer key/secret and an access token's id/secret."""

    account: str
    consumer_key: str
    consumer_secret: str
    token_id: str
    token_secret: str


#: The sandbox NetSuite account's credentials: what c2c signs with unless configured otherwise.
SANDBOX_ACCOUNT = "C2C_SANDBOX"
SANDBOX_CONSUMER_KEY = "sandbox-consumer-key"
SANDBOX_CONSUMER_SECRET = "sandbox-consumer-secret"
SANDBOX_TOKEN_ID = "sandbox-token-id"
SANDBOX_TOKEN_SECRET = "sandbox-token-secret"


def _enc(value: str) -> str:
    return quote(value, safe="~-._")


def base_url(url: str) -> str:
    """Scheme and host in lower case, the default port dropped, the path kept, no query."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    port = parts.port
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    return urlunsplit((scheme, host, parts.path, "", ""))


def signature(
    method: str,
    url: str,
    params: list[tuple[str, str]],
    consumer_secret: str,
    token_secret: str,
) -> str:
    """The base64 HMAC-SHA256 of the signature base string of a request."""
    pairs = sorted((_enc(k), _enc(v)) for k, v in params if k not in ("realm", "oauth_signature"))
    normalized = "&".join(f"{k}={v}" for k, v in pairs)
    base = "&".join((method.upper(), _enc(base_url(url)), _enc(normalized)))
    key = f"{_enc(consumer_secret)}&{_enc(token_secret)}"
    digest = hmac.new(key.encode(), base.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def authorization(
    credentials: TokenCredentials,
    method: str,
    url: httpx.URL,
    *,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> str:
    """The ``Authorization`` header of one request (a fresh nonce and timestamp each time)."""
    oauth = {
        "oauth_consumer_key": credentials.consumer_key,
        "oauth_token": credentials.token_id,
        "oauth_signature_method": SIGNATURE_METHOD,
        "oauth_timestamp": str(timestamp if timestamp is not None else int(time.time())),
        "oauth_nonce": nonce or secrets.token_hex(16),
        "oauth_version": "1.0",
    }
    query = [(k, v) for k, v in url.params.multi_items()]
    oauth["oauth_signature"] = signature(
        method,
        str(url),
        [*query, *oauth.items()],
        credentials.consumer_secret,
        credentials.token_secret,
    )
    fields = [f'realm="{_enc(credentials.account)}"']
    fields += [f'{k}="{_enc(v)}"' for k, v in oauth.items()]
    return "OAuth " + ",".join(fields)


def parse_authorization(header: str) -> dict[str, str]:
    """The parameters of an ``OAuth ...`` header (percent-decoded); empty if it is not one."""
    scheme, _, rest = header.partition(" ")
    if scheme.lower() != "oauth":
        return {}
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, value = part.strip().partition("=")
        if sep:
            fields[key.strip()] = unquote(value.strip().strip('"'))
    return fields
