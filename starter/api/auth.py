"""Bearer tokens for ``/api/*`` and ``/codec/*`` (``C2C_API_TOKENS``), and who a request is.

``C2C_API_TOKENS`` lists entries, comma-separated, each ``<token>:<role>``, optionally followed
by ``:<ENTITY>+<ENTITY>...`` (the legal entities the token is limited to) and ``@<name>`` (who
holds it), for example ``s3cret:operator:UK01+DE01@olga``. ``<token>`` may also be
``sha256:<hex digest>``: a digest entry keeps the token itself out of the configuration
(``c2c ops hash-token`` makes one); a plain entry is hashed as it is read. Either way a
presented token is hashed and compared with every configured digest in constant time.

Every request that passes is an ``Identity``: a name (the entry's ``@name``, or
``token-<first 8 hex digits of its digest>`` without one), a role, and the legal entities it
may see (``None``: all of them). Operator decisions record that name, never a name the client
sends. The dashboard's logins (a token's, or single sign-on's) are identities too.

A viewer may read; an operator may also act (start, amend, close periods, resolve
exceptions) and decrypt payloads through the codec server. Without configured tokens the API
is open, as on a developer's machine. Webhooks are authenticated by their signatures, not by
tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from c2c.settings import Settings
from starter.api.errors import ApiError

_bearer = HTTPBearer(auto_error=False, description="a token from C2C_API_TOKENS")
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: The prefix of a hashed entry in ``C2C_API_TOKENS``.
DIGEST_PREFIX = "sha256:"
_HEX_DIGEST = re.compile(r"^[0-9a-fA-F]{64}$")
#: A legal entity code, as contracts carry it.
ENTITY_CODE = re.compile(r"[A-Z0-9]{2,10}")
#: A token's or a person's name as decisions record it.
IDENTITY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,199}")


class Role(StrEnum):
    """What a token may do; each role may do everything the one before it may."""

    VIEWER = "viewer"
    OPERATOR = "operator"

    def allows(self, needed: Role) -> bool:
        """Whether this role may do what ``needed`` may."""
        order = list(Role)
        return order.index(self) >= order.index(needed)


class OperatorBody(BaseModel):
    """The body of an operator's decision: on an open API it may name the operator; with
    tokens the token's name is recorded instead."""

    model_config = ConfigDict(extra="forbid")

    operator: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="ignored when tokens are configured: the token's name is recorded",
    )


@dataclass(frozen=True)
class Identity:
    """Who a request is: the name decisions record, the role, and the legal entities it may
    see and act on (``None``: every entity; an empty set: none).

    ``role`` is ``None`` only on an open API (no tokens, no single sign-on), where anyone may
    do anything and the name is ``anonymous``.
    """

    name: str
    role: Role | None
    entities: frozenset[str] | None = None

    def allows(self, needed: Role) -> bool:
        """Whether this identity may do what ``needed`` may (anything, on an open API)."""
        return self.role is None or self.role.allows(needed)

    @property
    def scoped(self) -> bool:
        """Whether this identity is limited to some legal entities."""
        return self.entities is not None

    def sees(self, legal_entity: str | None) -> bool:
        """Whether this identity may see a contract of ``legal_entity``; a contract whose
        entity is not known is seen only by an identity of every entity."""
        if self.entities is None:
            return True
        return legal_entity is not None and legal_entity in self.entities


#: Whoever calls an open API.
ANONYMOUS = Identity(name="anonymous", role=None)


def parse_entities(text: str, where: str) -> frozenset[str]:
    """``UK01+DE01`` (or an iterable of codes) as a set of entity codes.

    Raises:
        ValueError: a code is not 2-10 capitals and digits (the message names ``where``).
    """
    codes = [c.strip() for c in text.split("+")]
    bad = [c for c in codes if not ENTITY_CODE.fullmatch(c)]
    if bad or not codes:
        raise ValueError(
            f"{where}: legal entities are codes of 2-10 capitals and digits joined by +, "
            f"e.g. UK01+DE01; got {text!r}"
        )
    return frozenset(codes)


def entities_of(codes: Iterable[str], where: str) -> frozenset[str]:
    """A list of entity codes as a set, each checked as ``parse_entities`` checks them."""
    return parse_entities("+".join(codes), where)


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
    #: Who holds the token (``@name``); ``token-<8 hex digits of the digest>`` without one.
    name: str = ""
    #: The legal entities the token is limited to; ``None``: every entity.
    entities: frozenset[str] | None = None

    @property
    def identity(self) -> Identity:
        """Who a request with this token is."""
        return Identity(
            name=self.name or f"token-{self.digest.hex()[:8]}",
            role=self.role,
            entities=self.entities,
        )


@dataclass(frozen=True)
class TokenTable:
    """The configured tokens and their roles."""

    entries: tuple[TokenEntry, ...] = ()
    #: Whether a request needs a token even with no entries (single sign-on is configured,
    #: so the deployment is not a developer's open one).
    required: bool = False

    @classmethod
    def parse(cls, spec: str | None, *, required: bool = False) -> TokenTable:
        """Parse ``token:role[:ENTITY+ENTITY][@name]`` entries, comma-separated, where
        ``token`` may be ``sha256:<hex digest>``.

        Raises:
            ValueError: an entry has no role or an unknown one, a malformed digest, entity
                code or name (the message names the entry's position, never the token).
        """
        entries: list[TokenEntry] = []
        names: dict[str, int] = {}
        for position, item in enumerate((spec or "").split(","), start=1):
            item = item.strip()
            if not item:
                continue
            where = f"C2C_API_TOKENS entry {position}"
            name = ""
            head, at, tail = item.rpartition("@")
            # An ``@`` followed by a ``:`` belongs to the token, not to a name.
            if at and ":" not in tail:
                if not IDENTITY_NAME.fullmatch(tail):
                    raise ValueError(
                        f"{where}: the name after @ must be 1-200 letters, digits or . _ @ + - "
                        "starting with a letter or digit"
                    )
                if tail in names:
                    raise ValueError(f"{where}: the name {tail!r} is entry {names[tail]}'s too")
                name, item = tail, head
                names[name] = position
            token, sep, role_name = item.rpartition(":")
            entities: frozenset[str] | None = None
            maybe_entities = role_name.strip()
            roles = {r.value for r in Role}
            # ``token:role:ENTITIES``: the part after the role is the entities.
            if sep and maybe_entities not in roles and token.rpartition(":")[2].strip() in roles:
                entities = parse_entities(maybe_entities, where)
                token, sep, role_name = token.rpartition(":")
            if not sep or not token:
                raise ValueError(
                    f"{where} must be token:role[:ENTITY+ENTITY][@name], the token possibly "
                    "sha256:<digest>"
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
                entries.append(
                    TokenEntry(bytes.fromhex(digest), role, name=name, entities=entities)
                )
            else:
                entries.append(
                    TokenEntry(token_digest(token), role, plain=token, name=name, entities=entities)
                )
        return cls(tuple(entries), required=required)

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenTable:
        """The tokens of ``C2C_API_TOKENS``; a token is required whenever single sign-on is
        configured, even if none is listed."""
        return cls.parse(
            settings.api_tokens.get_secret_value() if settings.api_tokens else None,
            required=bool(settings.oidc_issuer),
        )

    def first_with(self, role: Role) -> str | None:
        """A plain token with exactly ``role``, if one is configured (for local tools: the
        demo). A hashed entry cannot be presented, so it is never the answer."""
        return next(
            (e.plain for e in self.entries if e.role is role and e.plain and e.entities is None),
            None,
        )

    @property
    def enabled(self) -> bool:
        """Whether requests must authenticate: a token is configured, or single sign-on."""
        return bool(self.entries) or self.required

    def entry_of(self, token: str) -> TokenEntry | None:
        """The entry of ``token``, or ``None`` if it is not configured."""
        given = token_digest(token)
        found: TokenEntry | None = None
        # Every entry is compared, in constant time, so timing tells nothing about the tokens.
        for entry in self.entries:
            if hmac.compare_digest(entry.digest, given) and found is None:
                found = entry
        return found

    def role_of(self, token: str) -> Role | None:
        """The role of ``token``, or ``None`` if it is not configured."""
        entry = self.entry_of(token)
        return entry.role if entry is not None else None


def tokens_of(request: Request) -> TokenTable:
    """The app's token table (set by the app factory)."""
    tokens: TokenTable = request.app.state.tokens
    return tokens


async def token_table(request: Request) -> TokenTable:
    """Dependency: the app's token table (a coroutine: no worker-thread hop per request)."""
    return tokens_of(request)


def _check(
    credentials: HTTPAuthorizationCredentials | None, tokens: TokenTable, needed: Role
) -> Identity:
    if not tokens.enabled:
        return ANONYMOUS
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(401, "unauthorized", "a bearer token is required", headers=challenge)
    entry = tokens.entry_of(credentials.credentials)
    if entry is None:
        raise ApiError(401, "unauthorized", "unknown token", headers=challenge)
    if not entry.role.allows(needed):
        raise ApiError(403, "forbidden", f"this needs the {needed} role; the token is {entry.role}")
    return entry.identity


async def authorize(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    tokens: TokenTable = Depends(token_table),
) -> Identity:
    """Let the request through if its token's role allows its method; the request's identity.

    Reads need a viewer, anything else an operator. On an open API the identity is
    ``ANONYMOUS``.

    Raises:
        ApiError: ``401`` without a known token, ``403`` if its role is too weak.
    """
    needed = Role.VIEWER if request.method in _READ_METHODS else Role.OPERATOR
    identity = _check(credentials, tokens, needed)
    request.state.identity = identity
    return identity


def require(
    needed: Role, *, session: Callable[[Request, TokenTable], Identity | None] | None = None
) -> Callable[..., Awaitable[Identity]]:
    """A dependency that lets a request through only with a token of at least ``needed``
    (whatever its method), when tokens are configured; the request's identity.

    Args:
        needed: The least role.
        session: For a request without an ``Authorization`` header, the identity of the
            browser session it carries (the dashboard's login cookie), if any.

    Raises:
        ApiError: ``401`` without a known token, ``403`` if its role is too weak.
    """

    async def dependency(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
        tokens: TokenTable = Depends(token_table),
    ) -> Identity:
        if credentials is None and session is not None and tokens.enabled:
            identity = session(request, tokens)
            if identity is not None:
                if not identity.allows(needed):
                    raise ApiError(
                        403,
                        "forbidden",
                        f"this needs the {needed} role; the session is {identity.role}",
                    )
                request.state.identity = identity
                return identity
        identity = _check(credentials, tokens, needed)
        request.state.identity = identity
        return identity

    return dependency
