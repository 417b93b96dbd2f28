"""Bearer tokens for ``/api/*`` and ``/codec/*`` (``C2C_API_TOKENS``).

``C2C_API_TOKENS`` lists ``token:role`` or ``sha256:<hex digest>:role`` entries, comma-separated.
A digest entry keeps the token itself out of the configuration (``c2c ops hash-token`` makes
one); a plain entry is hashed as it is read. Either way a presented token is hashed and
compared with every configured digest in constant time.

A viewer may read; an operator may also act (start, amend, close periods, resolve
exceptions) and decrypt payloads through the codec server. Without configured tokens the API
is open, as on a developer's machine. Webhooks are authenticated by their signatures, not by
tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from c2c.settings import Settings
from starter.api.errors import ApiError

_bearer = HTTPBearer(auto_error=False, description="a token from C2C_API_TOKENS")
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: The prefix of a hashed entry in ``C2C_API_TOKENS``.
DIGEST_PREFIX = "sha256:"
_HEX_DIGEST = re.compile(r"^[0-9a-fA-F]{64}$")


class Role(StrEnum):
    """What a token may do; each role may do everything the one before it may."""

    VIEWER = "viewer"
    OPERATOR = "operator"

    def allows(self, needed: Role) -> bool:
        """Whether this role may do what ``needed`` may."""
        order = list(Role)
        return order.index(self) >= order.index(needed)


def token_digest(token: str) -> bytes:
    """The SHA-256 digest under which a token is configured and compared.

    Unsalted and fast on purpose: API tokens are long random strings, not passwords, so a
    digest cannot be reversed by guessing, and every request can afford to compute it.
    """
    # Any character may come in a header or a form; none of them makes this raise.
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def hashed_entry(token: str, role: Role) -> str:
    """The ``C2C_API_TOKENS`` entry that accepts ``token`` with ``role`` without holding it."""
    return f"{DIGEST_PREFIX}{token_digest(token).hex()}:{role.value}"


@dataclass(frozen=True)
class TokenEntry:
    """One configured token: its digest, its role and, for a plain entry only, the token.

    The plain token is kept solely so local tools on the same machine (``c2c demo``) can
    present it; requests are only ever compared by digest.
    """

    digest: bytes
    role: Role
    plain: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class TokenTable:
    """The configured tokens and their roles."""

    entries: tuple[TokenEntry, ...] = ()

    @classmethod
    def parse(cls, spec: str | None) -> TokenTable:
        """Parse ``token:role`` and ``sha256:<hex digest>:role`` entries, comma-separated.

        Raises:
            ValueError: an entry has no role or an unknown one, or a malformed digest (the
                message names the entry's position and the role, never the token).
        """
        entries: list[TokenEntry] = []
        for position, item in enumerate((spec or "").split(","), start=1):
            item = item.strip()
            if not item:
                continue
            token, sep, role_name = item.rpartition(":")
            if not sep or not token:
                raise ValueError(
                    f"C2C_API_TOKENS entry {position} must be token:role or sha256:<digest>:role"
                )
            try:
                role = Role(role_name.strip())
            except ValueError:
                raise ValueError(
                    f"unknown role {role_name!r} in C2C_API_TOKENS entry {position}; "
                    "use viewer or operator"
                ) from None
            if token.startswith(DIGEST_PREFIX):
                digest = token.removeprefix(DIGEST_PREFIX)
                if not _HEX_DIGEST.match(digest):
                    raise ValueError(
                        f"C2C_API_TOKENS entry {position}: a sha256 digest is 64 hex digits "
                        "(make one with `c2c ops hash-token`)"
                    )
                entries.append(TokenEntry(bytes.fromhex(digest), role))
            else:
                entries.append(TokenEntry(token_digest(token), role, plain=token))
        return cls(tuple(entries))

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenTable:
        """The tokens of ``C2C_API_TOKENS``."""
        return cls.parse(settings.api_tokens.get_secret_value() if settings.api_tokens else None)

    def first_with(self, role: Role) -> str | None:
        """A plain token with exactly ``role``, if one is configured (for local tools: the
        demo). A hashed entry cannot be presented, so it is never the answer."""
        return next((e.plain for e in self.entries if e.role is role and e.plain), None)

    @property
    def enabled(self) -> bool:
        """Whether any token is configured."""
        return bool(self.entries)

    def role_of(self, token: str) -> Role | None:
        """The role of ``token``, or ``None`` if it is not configured."""
        given = token_digest(token)
        found: Role | None = None
        # Every entry is compared, in constant time, so timing tells nothing about the tokens.
        for entry in self.entries:
            if hmac.compare_digest(entry.digest, given) and found is None:
                found = entry.role
        return found


def tokens_of(request: Request) -> TokenTable:
    """The app's token table (set by the app factory)."""
    tokens: TokenTable = request.app.state.tokens
    return tokens


async def token_table(request: Request) -> TokenTable:
    """Dependency: the app's token table (a coroutine: no worker-thread hop per request)."""
    return tokens_of(request)


def _check(
    credentials: HTTPAuthorizationCredentials | None, tokens: TokenTable, needed: Role
) -> Role | None:
    if not tokens.enabled:
        return None
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(401, "unauthorized", "a bearer token is required", headers=challenge)
    role = tokens.role_of(credentials.credentials)
    if role is None:
        raise ApiError(401, "unauthorized", "unknown token", headers=challenge)
    if not role.allows(needed):
        raise ApiError(403, "forbidden", f"this needs the {needed} role; the token is {role}")
    return role


async def authorize(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    tokens: TokenTable = Depends(token_table),
) -> Role | None:
    """Let the request through if its token's role allows its method.

    Reads need a viewer, anything else an operator.

    Raises:
        ApiError: ``401`` without a known token, ``403`` if its role is too weak.
    """
    needed = Role.VIEWER if request.method in _READ_METHODS else Role.OPERATOR
    return _check(credentials, tokens, needed)


def require(
    needed: Role, *, session: Callable[[Request, TokenTable], Role | None] | None = None
) -> Callable[..., Awaitable[Role | None]]:
    """A dependency that lets a request through only with a token of at least ``needed``
    (whatever its method), when tokens are configured.

    Args:
        needed: The least role.
        session: For a request without an ``Authorization`` header, the role of the browser
            session it carries (the dashboard's login cookie), if any.

    Raises:
        ApiError: ``401`` without a known token, ``403`` if its role is too weak.
    """

    async def dependency(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
        tokens: TokenTable = Depends(token_table),
    ) -> Role | None:
        if credentials is None and session is not None and tokens.enabled:
            role = session(request, tokens)
            if role is not None:
                if not role.allows(needed):
                    raise ApiError(
                        403, "forbidden", f"this needs the {needed} role; the session is {role}"
                    )
                return role
        return _check(credentials, tokens, needed)

    return dependency
