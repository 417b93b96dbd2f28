"""Single sign-on for the dashboard: OpenID Connect, the authorization code flow with PKCE.

When ``C2C_OIDC_ISSUER`` is set, the login page offers "Sign in with single sign-on":
``/auth/login`` sends the browser to the identity provider (found through its discovery
document) with a PKCE challenge, a ``state`` and a ``nonce``, kept meanwhile in a short-lived
signed cookie; ``/auth/callback`` exchanges the code (with the PKCE verifier) for tokens and
verifies the ID token: its signature against the provider's JWKS, its issuer, audience (the
client id), nonce and expiry. Authlib does the protocol; this module decides who the person
is for c2c.

Roles come from a group claim (``C2C_OIDC_GROUPS_CLAIM``, ``groups`` by default) through
``C2C_OIDC_ROLES``, a JSON object of group to ``"viewer"``, ``"operator"`` or
``{"role": ..., "entities": ["UK01", ...]}``. A person in several mapped groups gets the
highest role among them, limited to the union of the entities of the groups that grant it
(unlimited if one of them is). A person in no mapped group is refused. Their name on every
decision is the ``C2C_OIDC_NAME_CLAIM`` claim (``email`` by default), else ``sub``.
"""

from __future__ import annotations

import json
import secrets
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import SecretStr

from c2c.logs import get_logger
from c2c.settings import Settings
from starter.api.auth import IDENTITY_NAME, Role, entities_of

with warnings.catch_warnings():
    # Authlib warns about its own modules' future, and its first import asks for every such
    # warning to be shown; the clients used here are its current ones.
    import authlib.deprecate  # noqa: F401

    warnings.simplefilter("ignore")
    from authlib.integrations.starlette_client import OAuth, StarletteOAuth2App

log = get_logger("c2c.dashboard")

#: The cookie that carries the login in progress (state, nonce, PKCE verifier) to the callback.
FLOW_COOKIE = "c2c_oidc_flow"
#: How long a browser may take at the identity provider.
FLOW_TTL_S = 600
CALLBACK_PATH = "/auth/callback"


@dataclass(frozen=True)
class Grant:
    """What one group grants: a role, over some legal entities (``None``: all)."""

    role: Role
    entities: frozenset[str] | None = None


def parse_roles(raw: str | None) -> dict[str, Grant]:
    """``C2C_OIDC_ROLES``: group → ``"role"`` or ``{"role": ..., "entities": [...]}``.

    Raises:
        ValueError: not JSON, not an object, an unknown role or a malformed entity code (the
            message names the setting and the group).
    """
    if not raw or not raw.strip():
        raise ValueError(
            'C2C_OIDC_ROLES is required with C2C_OIDC_ISSUER, e.g. {"c2c-ops": "operator"}'
        )
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"C2C_OIDC_ROLES is not JSON: {exc}") from None
    if not isinstance(data, dict) or not data:
        raise ValueError("C2C_OIDC_ROLES must be a JSON object of group to role")
    grants: dict[str, Grant] = {}
    for group, value in data.items():
        where = f"C2C_OIDC_ROLES[{group!r}]"
        spec: dict[str, Any] = value if isinstance(value, dict) else {"role": value}
        unknown = set(spec) - {"role", "entities"}
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}; use role and entities")
        try:
            role = Role(str(spec.get("role")))
        except ValueError:
            raise ValueError(f"{where}: role must be viewer or operator") from None
        entities = spec.get("entities")
        if entities is not None:
            if not isinstance(entities, list) or not all(isinstance(e, str) for e in entities):
                raise ValueError(f"{where}: entities must be a list of entity codes")
            grants[group] = Grant(role, entities_of(entities, where))
        else:
            grants[group] = Grant(role)
    return grants


@dataclass
class SsoConfig:
    """The identity provider and how its groups map to c2c's roles."""

    issuer: str
    client_id: str
    client_secret: SecretStr | None
    roles: dict[str, Grant]
    groups_claim: str = "groups"
    name_claim: str = "email"
    scopes: str = "openid email profile"
    redirect_url: str | None = None
    _client: StarletteOAuth2App | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> SsoConfig | None:
        """The configuration of ``C2C_OIDC_*``, or ``None`` when single sign-on is off.

        Raises:
            ValueError: a setting is missing or malformed (the message names it).
        """
        if not settings.oidc_issuer:
            return None
        if not settings.oidc_client_id:
            raise ValueError("C2C_OIDC_CLIENT_ID is required with C2C_OIDC_ISSUER")
        if not settings.oidc_issuer.startswith(("https://", "http://")):
            raise ValueError("C2C_OIDC_ISSUER must be an http(s) URL")
        if "openid" not in settings.oidc_scopes.split():
            raise ValueError("C2C_OIDC_SCOPES must include openid")
        roles = parse_roles(settings.oidc_roles.get_secret_value() if settings.oidc_roles else None)
        return cls(
            issuer=settings.oidc_issuer,
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret,
            roles=roles,
            groups_claim=settings.oidc_groups_claim,
            name_claim=settings.oidc_name_claim,
            scopes=settings.oidc_scopes,
            redirect_url=settings.oidc_redirect_url,
        )

    def grant(self, groups: Sequence[str]) -> tuple[Role, frozenset[str] | None] | None:
        """The role and legal entities the groups grant, or ``None`` if none grants one."""
        found = [self.roles[g] for g in groups if g in self.roles]
        if not found:
            return None
        order = list(Role)
        top = max((g.role for g in found), key=order.index)
        chosen = [g for g in found if g.role is top]
        if any(g.entities is None for g in chosen):
            return top, None
        return top, frozenset().union(*(g.entities or frozenset() for g in chosen))

    def mapped(self, groups: Sequence[str]) -> list[str]:
        """Those of ``groups`` that the mapping knows (what a session keeps)."""
        return sorted({g for g in groups if g in self.roles})

    @property
    def client(self) -> StarletteOAuth2App:
        """Authlib's client of the provider (discovery, PKCE, token exchange, ID tokens)."""
        if self._client is None:
            secret = self.client_secret.get_secret_value() if self.client_secret else None
            client_kwargs: dict[str, Any] = {
                "scope": self.scopes,
                "code_challenge_method": "S256",
                "timeout": 15,
            }
            if not secret:
                client_kwargs["token_endpoint_auth_method"] = "none"
            registered = OAuth().register(
                "c2c",
                client_id=self.client_id,
                client_secret=secret,
                server_metadata_url=self.issuer.rstrip("/") + "/.well-known/openid-configuration",
                client_kwargs=client_kwargs,
            )
            assert isinstance(registered, StarletteOAuth2App)
            self._client = registered
        return self._client

    def callback_url(self, request: Request) -> str:
        """Where the provider sends the browser back."""
        if self.redirect_url:
            return self.redirect_url
        return str(request.base_url).rstrip("/") + CALLBACK_PATH


class SsoRefused(Exception):
    """A sign-in that cannot go on; the dashboard answers with an error page."""

    def __init__(self, status: int, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


def sso_of(request: Request) -> SsoConfig:
    """The app's single sign-on configuration.

    Raises:
        SsoRefused: ``404`` when single sign-on is not configured.
    """
    sso: SsoConfig | None = getattr(request.app.state, "sso", None)
    if sso is None:
        raise SsoRefused(404, "single sign-on is not configured (C2C_OIDC_ISSUER)")
    return sso


@dataclass(frozen=True)
class SignedIn:
    """Who the provider vouched for: their subject, name and the groups that grant a role."""

    subject: str
    name: str
    groups: list[str]
    role: Role
    entities: frozenset[str] | None


async def start(request: Request, seal: Callable[[str], str], next_url: str) -> Response:
    """Send the browser to the provider; the flow's secrets go into a signed cookie.

    ``seal`` signs a text (the dashboard's key), so the callback can trust the cookie.
    """
    sso = sso_of(request)
    try:
        found = await sso.client.create_authorization_url(sso.callback_url(request))
    except Exception as exc:
        log.warning("identity provider unreachable", issuer=sso.issuer, error=str(exc))
        raise SsoRefused(502, "the identity provider did not answer; try again") from None
    flow = {
        "state": found["state"],
        "verifier": found["code_verifier"],
        "nonce": found["nonce"],
        "next": next_url,
        "exp": int(time.time() + FLOW_TTL_S),
    }
    response = RedirectResponse(found["url"], status_code=303)
    # Lax, not strict: the provider's redirect back is a navigation from another site, and
    # must carry this cookie; it holds no session, only what binds the answer to this login.
    response.set_cookie(
        FLOW_COOKIE,
        seal(json.dumps(flow, separators=(",", ":"))),
        max_age=FLOW_TTL_S,
        path="/auth",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


async def finish(
    request: Request, unseal: Callable[[str | None], str | None]
) -> tuple[SignedIn, str]:
    """Check the provider's answer and the ID token; who signed in, and where to go next.

    Raises:
        SsoRefused: the answer is not for this browser's login, the provider refused, the ID
            token does not verify, or no group grants a role.
    """
    sso = sso_of(request)
    params = request.query_params
    flow_text = unseal(request.cookies.get(FLOW_COOKIE))
    if flow_text is None:
        raise SsoRefused(
            400,
            "no sign-in in progress in this browser, or it expired; sign in again",
            field="state",
        )
    flow = json.loads(flow_text)
    if int(flow.get("exp", 0)) < time.time():
        raise SsoRefused(400, "the sign-in took too long; sign in again", field="state")
    if params.get("error"):
        text = params.get("error_description") or params["error"]
        raise SsoRefused(401, f"the identity provider refused the sign-in: {text[:200]}")
    state, code = params.get("state", ""), params.get("code", "")
    if not secrets.compare_digest(state.encode(), str(flow.get("state", "")).encode()):
        raise SsoRefused(
            400, "the answer is not for the sign-in this browser started", field="state"
        )
    if not code:
        raise SsoRefused(400, "the identity provider sent no code", field="code")
    client = sso.client
    try:
        token = await client.fetch_access_token(
            redirect_uri=sso.callback_url(request), code=code, code_verifier=flow["verifier"]
        )
    except Exception as exc:
        log.warning("sign-in code refused", issuer=sso.issuer, error=str(exc))
        raise SsoRefused(401, "the identity provider refused the sign-in code") from None
    try:
        claims = await client.parse_id_token(
            token,
            nonce=flow["nonce"],
            claims_options={
                "iss": {"essential": True, "value": sso.issuer},
                "aud": {"essential": True, "values": [sso.client_id]},
            },
            leeway=60,
        )
    except Exception as exc:
        log.warning("ID token refused", issuer=sso.issuer, error=str(exc))
        raise SsoRefused(401, "the ID token did not verify; sign in again") from None
    if claims is None:
        raise SsoRefused(401, "the identity provider sent no ID token")
    raw_groups = claims.get(sso.groups_claim) or []
    groups = [raw_groups] if isinstance(raw_groups, str) else list(raw_groups)
    groups = [g for g in groups if isinstance(g, str)]
    granted = sso.grant(groups)
    subject = str(claims["sub"])
    name = str(claims.get(sso.name_claim) or subject)
    if not IDENTITY_NAME.fullmatch(name):
        name = subject
    if granted is None:
        log.info("single sign-on refused: no group grants a role", subject=subject)
        raise SsoRefused(
            403,
            f"none of your groups ({sso.groups_claim}) grants a c2c role; ask for one",
            field=sso.groups_claim,
        )
    role, entities = granted
    log.info("single sign-on", subject=subject, role=role.value)
    return SignedIn(subject, name, sso.mapped(groups), role, entities), str(flow.get("next") or "/")


def continue_page(to: str, text: str) -> HTMLResponse:
    """A page that moves on to ``to`` by itself.

    After a sign-in the browser arrives from the provider's site, and a browser does not send
    a ``SameSite=Strict`` cookie on that navigation or its redirects; a page of ours that moves
    on makes the next request a same-site one, which carries the new session cookie.
    """
    safe = escape(to, quote=True)
    body = (
        '<!doctype html><html><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="0;url={safe}"><title>Signed in · c2c</title>'
        f'</head><body><p>{escape(text)} <a href="{safe}">Continue</a></p></body></html>'
    )
    return HTMLResponse(body)
