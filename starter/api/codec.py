"""The codec server (``/codec/encode``, ``/codec/decode``): the Temporal UI's way to read
encrypted payloads.

The UI (or ``temporal --codec-endpoint``) posts the payloads it shows as protobuf JSON,
``{"payloads": [{"metadata": {key: base64}, "data": base64}]}``, and gets them back in the same
shape, decrypted (or encrypted). Decrypting shows customer data, so it takes an operator token
whenever ``C2C_API_TOKENS`` is set, and one of every legal entity: a payload does not say
whose contract it belongs to, so a token limited to some entities is refused (``403``). The
UI calls from its own origin in the operator's browser, so these routes, and only these,
answer CORS for the origins of ``C2C_CODEC_CORS_ORIGINS``.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Sequence

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field, field_validator
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.api.common.v1 import Payload

from c2c.codec import EncryptionCodec, PayloadDecryptionError
from c2c.logs import get_logger
from starter.api.auth import Identity, Role, TokenTable, require
from starter.api.errors import ApiError, error_responses, invalid_field
from starter.dashboard.session import request_session

log = get_logger("c2c.codec")

#: Where the codec server is mounted; ``c2c up`` gives the UI ``<api url>/codec``.
CODEC_PATH = "/codec"
#: Headers the Temporal UI sends with a codec request.
_UI_HEADERS = ["Authorization", "Content-Type", "X-Namespace"]


def dashboard_identity(request: Request, tokens: TokenTable) -> Identity | None:
    """The identity of the dashboard session the request's cookie names, if it is valid."""
    session = request_session(request, tokens)
    return session.identity if session is not None else None


_operator = require(Role.OPERATOR, session=dashboard_identity)


async def unscoped_operator(identity: Identity = Depends(_operator)) -> Identity:
    """An operator of every legal entity: a payload does not say which contract it belongs
    to, so the codec cannot keep a scoped operator to their entities and refuses them.

    Raises:
        ApiError: ``403`` for an identity limited to some legal entities.
    """
    if identity.scoped:
        raise ApiError(
            403,
            "forbidden",
            "the codec serves operators of every legal entity only: a payload does not say "
            "whose contract it belongs to",
        )
    return identity


router = APIRouter(
    prefix=CODEC_PATH,
    tags=["codec"],
    # A bearer token (the CLI: TEMPORAL_CODEC_AUTH), or the dashboard's login cookie, which
    # the Temporal UI sends when told to include credentials (same site, another port).
    dependencies=[Depends(unscoped_operator)],
    responses=error_responses(
        400, 401, 403, 413, 422, 500, s404="payload encryption is off (no C2C_ENCRYPTION_KEY)"
    ),
)


def _b64(value: str) -> bytes:
    # Protobuf JSON accepts standard or URL-safe base64, padded or not.
    padded = value + "=" * (-len(value) % 4)
    try:
        return base64.b64decode(padded, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("is not base64") from None


#: Base64 as protobuf JSON writes it and ``_b64`` reads it: standard or URL-safe alphabet, in
#: groups of four, the last one padded or not.
BASE64_PATTERN = r"^([A-Za-z0-9+/_-]{4})*([A-Za-z0-9+/_-]{2}(==?)?|[A-Za-z0-9+/_-]{3}=?)?$"


class WirePayload(BaseModel):
    """One Temporal payload in protobuf JSON: metadata values and data are base64."""

    # The patterns are the schema's account of ``_b64``, which checks each value and names
    # the one that is not base64.
    metadata: dict[str, str] = Field(
        default_factory=dict,
        json_schema_extra={"additionalProperties": {"type": "string", "pattern": BASE64_PATTERN}},
    )
    data: str = Field(default="", json_schema_extra={"pattern": BASE64_PATTERN})

    @field_validator("metadata")
    @classmethod
    def _metadata_base64(cls, value: dict[str, str]) -> dict[str, str]:
        for key, item in value.items():
            try:
                _b64(item)
            except ValueError:
                raise ValueError(f"metadata {key!r} is not base64") from None
        return value

    @field_validator("data")
    @classmethod
    def _data_base64(cls, value: str) -> str:
        _b64(value)
        return value

    def to_proto(self) -> Payload:
        """The payload as the SDK's protobuf message."""
        return Payload(
            metadata={key: _b64(item) for key, item in self.metadata.items()},
            data=_b64(self.data),
        )

    @classmethod
    def from_proto(cls, payload: Payload) -> WirePayload:
        """A protobuf payload in its JSON form."""
        return cls(
            metadata={k: base64.b64encode(v).decode() for k, v in payload.metadata.items()},
            data=base64.b64encode(payload.data).decode(),
        )


class WirePayloads(BaseModel):
    """The body of a codec request and of its answer."""

    # The UI and the CLI send one event's payloads at a time; a longer list is refused by its
    # length (422) well before the API's 1 MB body limit would refuse it by size.
    payloads: list[WirePayload] = Field(default_factory=list, max_length=1_000)


def is_loopback(host: str | None) -> bool:
    """Whether an API listening on ``host`` can be reached from this machine only."""
    if host is None:
        return False
    name = host.strip().strip("[]")
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to any interface


def refusal(
    codec: EncryptionCodec | None, tokens: TokenTable, listen_host: str | None
) -> str | None:
    """Why the codec server refuses to decrypt, or ``None`` when it serves.

    Decrypting shows customer data. Without tokens nobody can be asked for an operator's,
    so the codec serves only an API that nobody off this machine can reach.
    """
    if codec is None or tokens.enabled or is_loopback(listen_host):
        return None
    return (
        "the codec server is off: C2C_ENCRYPTION_KEY is set but C2C_API_TOKENS is not, and "
        f"the API listens on {listen_host or 'an interface not known to be loopback'}; set "
        "C2C_API_TOKENS (operators decrypt with their token) or listen on 127.0.0.1"
    )


async def codec_of(request: Request) -> EncryptionCodec:
    """The API's encryption codec.

    Raises:
        ApiError: ``404`` when encryption is off (``C2C_ENCRYPTION_KEY`` unset); ``403`` when
            no tokens are configured and the API is reachable from other machines.
    """
    codec: EncryptionCodec | None = request.app.state.codec
    if codec is None:
        raise ApiError(
            404,
            "encryption_off",
            "payload encryption is off: C2C_ENCRYPTION_KEY is not set for the API",
        )
    reason: str | None = getattr(request.app.state, "codec_refusal", None)
    if reason is not None:
        raise ApiError(403, "codec_needs_tokens", reason)
    return codec


@router.post("/encode", response_model=WirePayloads)
async def encode(body: WirePayloads, codec: EncryptionCodec = Depends(codec_of)) -> WirePayloads:
    """Encrypt payloads with the current key (the UI does this for input it sends)."""
    sealed = await codec.encode([p.to_proto() for p in body.payloads])
    return WirePayloads(payloads=[WirePayload.from_proto(p) for p in sealed])


@router.post("/decode", response_model=WirePayloads)
async def decode(
    body: WirePayloads, request: Request, codec: EncryptionCodec = Depends(codec_of)
) -> WirePayloads:
    """Decrypt payloads; ones that are not encrypted come back unchanged.

    Raises:
        ApiError: ``422`` naming the payload that has an unknown key id or was altered.
    """
    opened: list[WirePayload] = []
    for index, payload in enumerate(body.payloads):
        try:
            [plain] = await codec.decode([payload.to_proto()])
        except PayloadDecryptionError as exc:
            log.warning(
                "codec refused a payload",
                namespace=request.headers.get("x-namespace"),
                payload=index,
                error=str(exc),
            )
            raise invalid_field(f"payloads.{index}", str(exc)) from None
        opened.append(WirePayload.from_proto(plain))
    return WirePayloads(payloads=opened)


class CodecCors:
    """CORS for the codec routes only, so a UI origin gains no browser access to ``/api``.

    Preflight ``OPTIONS`` requests are answered here, before authentication: a browser sends
    them without the ``Authorization`` header it is asking permission for.

    Args:
        app: The rest of the application.
        origins: Browser origins allowed to call the codec (the Temporal UI's).
    """

    def __init__(self, app: ASGIApp, *, origins: Sequence[str]) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=list(origins),
            allow_methods=["POST"],
            allow_headers=_UI_HEADERS,
            # The UI may send the dashboard's session cookie (TEMPORAL_CODEC_INCLUDE_CREDENTIALS);
            # the origins are exact, never a wildcard, so only the UI's pages can read answers.
            allow_credentials=True,
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] == "http" and (path == CODEC_PATH or path.startswith(f"{CODEC_PATH}/")):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
