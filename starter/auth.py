"""Bearer tokens for ``/api/*`` (``C2C_API_TOKENS=token1:viewer,token2:operator``).

A viewer may read; an operator may also act (start, amend, close periods, resolve
exceptions). Without configured tokens the API is open, as on a developer's machine.
Webhooks are authenticated by their signatures, not by tokens.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from enum import StrEnum

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from c2c.settings import Settings
from starter.errors import ApiError

_bearer = HTTPBearer(auto_error=False, description="a token from C2C_API_TOKENS")
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Role(StrEnum):
    """What a token may do; each role may do everything the one before it may."""

    VIEWER = "viewer"
    OPERATOR = "operator"

    def allows(self, needed: Role) -> bool:
        """Whether this role may do what ``needed`` may."""
        order = list(Role)
        return order.index(self) >= order.index(needed)


@dataclass(frozen=True)
class TokenTable:
    """The configured tokens and their roles."""

    entries: tuple[tuple[bytes, Role], ...] = ()

    @classmethod
    def parse(cls, spec: str | None) -> TokenTable:
        """Parse ``token:role,token:role``.

        Raises:
            ValueError: an entry has no role or an unknown one (the message names the role,
                never the token).
        """
        entries: list[tuple[bytes, Role]] = []
        for item in (spec or "").split(","):
            item = item.strip()
            if not item:
                continue
            token, sep, role = item.rpartition(":")
            if not sep or not token:
                raise ValueError("C2C_API_TOKENS entries must be token:role")
            try:
                entries.append((token.encode(), Role(role.strip())))
            except ValueError:
                raise ValueError(
                    f"unknown role {role!r} in C2C_API_TOKENS; use viewer or operator"
                ) from None
        return cls(tuple(entries))

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenTable:
        """The tokens of ``C2C_API_TOKENS``."""
        return cls.parse(settings.api_tokens.get_secret_value() if settings.api_tokens else None)

    def first_with(self, role: Role) -> str | None:
        """A token with exactly ``role``, if one is configured (for local tools: the demo)."""
        return next((token.decode() for token, r in self.entries if r is role), None)

    @property
    def enabled(self) -> bool:
        """Whether any token is configured."""
        return bool(self.entries)

    def role_of(self, token: str) -> Role | None:
        """The role of ``token``, or ``None`` if it is not configured."""
        given = token.encode()
        found: Role | None = None
        # Every entry is compared, in constant time, so timing tells nothing about the tokens.
        for known, role in self.entries:
            if hmac.compare_digest(known, given) and found is None:
                found = role
        return found


def token_table(request: Request) -> TokenTable:
    """The app's token table (set by the app factory)."""
    tokens: TokenTable = request.app.state.tokens
    return tokens


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
    if not tokens.enabled:
        return None
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(401, "unauthorized", "a bearer token is required", headers=challenge)
    role = tokens.role_of(credentials.credentials)
    if role is None:
        raise ApiError(401, "unauthorized", "unknown token", headers=challenge)
    needed = Role.VIEWER if request.method in _READ_METHODS else Role.OPERATOR
    if not role.allows(needed):
        raise ApiError(403, "forbidden", f"this needs the {needed} role; the token is {role}")
    return role
