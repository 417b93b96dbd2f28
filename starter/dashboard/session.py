"""Browser sessions and CSRF tokens for the dashboard.

A browser sends no bearer header, so an operator logs in once, with a token from
``C2C_API_TOKENS`` or through single sign-on (``starter.dashboard.sso``), and gets a signed
session cookie. A token's cookie never holds the token: it holds the role, a fingerprint of
the token (so removing the token from the configuration ends its sessions; its name and legal
entities are read from the configuration on every request), a random session id and an
expiry. A single sign-on cookie holds the issuer, the person's name and those of their groups
that ``C2C_OIDC_ROLES`` maps, so the role and legal entities follow the mapping as it is now.
Both are signed with a key derived from ``C2C_SESSION_SECRET`` and the other configured
secrets (so every API replica accepts the sessions of the others, and rotating a token or the
session secret ends every session).

Because cookies authenticate the dashboard's forms, each form carries a CSRF token: an HMAC
of a random per-browser nonce (its own cookie) and the session id (OWASP's "signed double
submit cookie"). Another site can make the browser send the cookies, but cannot read the
page to learn the token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response

from c2c.settings import Settings
from starter.api.auth import Identity, Role, TokenTable, token_digest

SESSION_COOKIE = "c2c_session"
CSRF_COOKIE = "c2c_csrf"
#: The name of the hidden form field that carries the CSRF token.
CSRF_FIELD = "csrf_token"
#: How long a login lasts.
SESSION_TTL_S = 12 * 3600
#: Longest operator name a login accepts (as ``ResolveException.operator``).
MAX_NAME_LENGTH = 200


#: What single sign-on makes of a person's groups: their role and legal entities (``None``:
#: every entity), or ``None`` when no group grants a role. ``SsoConfig.grant``.
GrantOf = Callable[[Sequence[str]], "tuple[Role, frozenset[str] | None] | None"]


@dataclass(frozen=True)
class Session:
    """Who the browser is: a role (``None`` when nothing is configured), a name, the legal
    entities it may see (``None``: all) and how it logged in (``token``, ``sso``)."""

    role: Role | None
    name: str = ""
    session_id: str = ""
    expires_at: int = 0
    entities: frozenset[str] | None = None
    via: str = "token"

    @property
    def identity(self) -> Identity:
        """The session as the API's identity: what a decision records and what it may see."""
        return Identity(name=self.operator, role=self.role, entities=self.entities)

    def allows(self, needed: Role) -> bool:
        """Whether this session may do what ``needed`` may (anything, on an open API)."""
        return self.role is None or self.role.allows(needed)

    @property
    def operator(self) -> str:
        """The name recorded on an operator's decision."""
        return self.name or f"dashboard:{self.role or 'anonymous'}"


def signing_key(settings: Settings, tokens: TokenTable) -> bytes:
    """The key that signs sessions and CSRF tokens.

    Derived from every configured secret, so it is the same on every replica and secret
    whenever any secret is configured. ``C2C_SESSION_SECRET`` is the one meant for it: the
    token entries alone are digests that whoever reads the configuration knows, so without a
    secret beside them anyone who can read it could sign a session (``install`` warns). With
    no secret at all (a developer's open API) the CSRF tokens still bind a form to the
    browser's own nonce cookie.
    """
    digest = hashlib.sha256(b"c2c dashboard v1")
    for entry in sorted(tokens.entries, key=lambda e: (e.digest, e.role.value)):
        digest.update(b"\0token\0" + entry.digest + b"\0" + entry.role.value.encode())
    for name, secret in _secrets(settings):
        digest.update(b"\0" + name + b"\0" + secret.encode())
    return digest.digest()


def _secrets(settings: Settings) -> list[tuple[bytes, str]]:
    """The configured secrets that go into the signing key, by name; blanks are unset."""
    given = (
        (b"secret", settings.webhook_secret),
        (b"secret", settings.encryption_key),
        (b"session", settings.session_secret),
        (b"oidc", settings.oidc_client_secret),
    )
    return [(name, s.get_secret_value()) for name, s in given if s and s.get_secret_value()]


def has_signing_secret(settings: Settings) -> bool:
    """Whether the session key holds a secret beyond the token digests."""
    return bool(_secrets(settings))


def token_fingerprint(digest: bytes) -> str:
    """A short, one-way name for a token (from its configured digest), kept in the session
    instead of the token."""
    return hashlib.sha256(b"c2c session token\0" + digest).hexdigest()[:32]


def same_text(given: str, expected: str) -> bool:
    """Whether ``given`` (from a cookie or a form) is ``expected``, compared in constant time.

    ``hmac.compare_digest`` raises ``TypeError`` on a ``str`` that is not ASCII, and a cookie
    or a form field may carry any character: comparing the UTF-8 bytes makes such a value
    merely wrong, never an error.
    """
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, purpose: str, payload: str) -> str:
    message = f"{purpose}\0{payload}".encode("utf-8", "surrogatepass")
    return _b64(hmac.new(key, message, hashlib.sha256).digest())


def seal(key: bytes, purpose: str, text: str) -> str:
    """``text`` with a signature for ``purpose``: readable, but not forgeable."""
    payload = _b64(text.encode("utf-8", "surrogatepass"))
    return f"{payload}.{_mac(key, purpose, payload)}"


def unseal(key: bytes, purpose: str, value: str | None) -> str | None:
    """The text ``seal`` signed for ``purpose``, or ``None`` if ``value`` is not one."""
    if not value or value.count(".") != 1:
        return None
    payload, mac = value.split(".")
    if not same_text(mac, _mac(key, purpose, payload)):
        return None
    try:
        return _unb64(payload).decode()
    except (ValueError, UnicodeDecodeError):
        return None


def issue_session(
    key: bytes, token: str, role: Role, name: str, *, now: float | None = None
) -> str:
    """A signed session value for a verified token."""
    claims = {
        "role": role.value,
        "fp": token_fingerprint(token_digest(token)),
        "sid": secrets.token_urlsafe(16),
        "name": name,
        "exp": int((now or time.time()) + SESSION_TTL_S),
    }
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{payload}.{_mac(key, 'session', payload)}"


def issue_sso_session(
    key: bytes,
    issuer: str,
    subject: str,
    name: str,
    groups: Sequence[str],
    *,
    now: float | None = None,
) -> str:
    """A signed session value for a person the identity provider vouched for; ``groups`` are
    those of their groups that grant a role."""
    claims = {
        "via": "sso",
        "iss": issuer,
        "sub": subject,
        "groups": sorted(set(groups)),
        "sid": secrets.token_urlsafe(16),
        "name": name,
        "exp": int((now or time.time()) + SESSION_TTL_S),
    }
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{payload}.{_mac(key, 'session', payload)}"


def _read_sso(
    claims: dict[str, object], issuer: str | None, grant_of: GrantOf | None
) -> Session | None:
    """A single sign-on session, its role and entities from its groups as mapped now."""
    if grant_of is None or issuer is None or claims.get("iss") != issuer:
        return None
    groups = claims.get("groups")
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        return None
    granted = grant_of(groups)
    if granted is None:
        return None
    role, entities = granted
    return Session(
        role=role,
        name=str(claims.get("name") or claims.get("sub") or ""),
        session_id=str(claims["sid"]),
        expires_at=int(str(claims["exp"])),
        entities=entities,
        via="sso",
    )


def read_session(
    key: bytes,
    tokens: TokenTable,
    value: str | None,
    *,
    now: float | None = None,
    issuer: str | None = None,
    grant_of: GrantOf | None = None,
) -> Session | None:
    """The session a cookie value stands for, or ``None`` if it is forged, expired, or its
    token is no longer configured with that role (a single sign-on session: its issuer is no
    longer the one configured, or none of its groups grants a role any more)."""
    if not value or value.count(".") != 1:
        return None
    payload, mac = value.split(".")
    if not same_text(mac, _mac(key, "session", payload)):
        return None
    try:
        claims = json.loads(_unb64(payload))
        if int(claims["exp"]) < (now or time.time()):
            return None
        if claims.get("via") == "sso":
            return _read_sso(claims, issuer, grant_of)
        role = Role(claims["role"])
        fingerprint, session_id = str(claims["fp"]), str(claims["sid"])
        name, expires_at = str(claims.get("name", "")), int(claims["exp"])
    except (ValueError, KeyError, TypeError):
        return None
    if expires_at < (now or time.time()):
        return None
    entry = next(
        (
            e
            for e in tokens.entries
            if e.role is role and same_text(token_fingerprint(e.digest), fingerprint)
        ),
        None,
    )
    if entry is None:
        return None
    return Session(
        role=role,
        name=entry.name or name,
        session_id=session_id,
        expires_at=expires_at,
        entities=entry.entities,
    )


def request_session(request: Request, tokens: TokenTable) -> Session | None:
    """The session the request's cookie stands for; ``None`` without a valid one, or when the
    app serves no dashboard (it signs sessions with the key ``dashboard.install`` sets)."""
    key: bytes | None = getattr(request.app.state, "dashboard_key", None)
    if key is None:
        return None
    sso = getattr(request.app.state, "sso", None)
    return read_session(
        key,
        tokens,
        request.cookies.get(SESSION_COOKIE),
        issuer=sso.issuer if sso is not None else None,
        grant_of=sso.grant if sso is not None else None,
    )


def csrf_token(key: bytes, nonce: str, session: Session) -> str:
    """The token a form of this browser and session must carry."""
    return _mac(key, "csrf", f"{nonce}\0{session.session_id}")


def csrf_valid(key: bytes, nonce: str | None, session: Session, given: str | None) -> bool:
    """Whether a submitted form's CSRF token belongs to this browser and session."""
    if not nonce or not given:
        return False
    return same_text(given, csrf_token(key, nonce, session))


def new_nonce() -> str:
    """A fresh per-browser CSRF nonce."""
    return secrets.token_urlsafe(24)


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    """Set a cookie that scripts cannot read, that no other site's request carries, and that
    travels only over HTTPS when the dashboard is served over HTTPS."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
