"""The HTTP API (``c2c api``): webhooks in, contract operations and the exception queue out.

``create_app`` takes an injected Temporal client so tests and embedders can share one;
without it the app connects at startup (and again on first use if Temporal was not up yet).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse
from temporalio.client import Client

from c2c.logs import configure_logging, get_logger
from c2c.loops import resolve as event_loop_named
from c2c.secret_box import secret_box
from c2c.settings import Settings, get_settings
from c2c.temporal import converter_for
from c2c.tracing import configure_tracing, fastapi_telemetry
from ledger import get_ledger
from starter.api import (
    books,
    codec,
    docusign_webhook,
    invoice_documents,
    invoices,
    ironclad_webhook,
    kpis,
    outbound,
    routes,
    stripe_webhook,
    webhooks,
)
from starter.api.auth import TokenTable
from starter.api.context import ApiContext, api_context
from starter.api.errors import install_error_handlers
from starter.api.metrics import instrument_api
from starter.api.middleware import MAX_BODY_BYTES, BodySizeLimit, RequestLog
from starter.dashboard import pages as dashboard
from starter.ops.event_queue import EventQueue
from starter.ops.outbound import OutboundDispatcher

log = get_logger("c2c.api")


def create_app(
    settings: Settings | None = None,
    *,
    client: Client | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    listen_host: str | None = None,
) -> FastAPI:
    """Build the API.

    Args:
        settings: The configuration; read from the environment if not given.
        client: A connected Temporal client; the app connects itself if not given.
        max_body_bytes: Larger request bodies are refused with ``413``.
        listen_host: The interface the server listens on. Without ``C2C_API_TOKENS`` the
            codec server decrypts only for an API that listens on loopback alone; when the
            interface is not known, it is taken as reachable from elsewhere.

    Raises:
        ValueError: ``C2C_API_TOKENS``, ``C2C_ENCRYPTION_KEY`` or ``C2C_SECRETS_KEY`` is
            malformed.
    """
    settings = settings or get_settings()
    # The key that seals subscription secrets: a bad one fails here, a missing one is made.
    secret_box(settings)
    context = ApiContext(settings, client)
    if settings.webhook_queue:
        context.event_queue = EventQueue(
            context,
            webhooks.PROCESSORS,
            webhooks.QUEUED_TYPES,
            concurrency=settings.webhook_queue_concurrency,
        )
    dispatcher = OutboundDispatcher(context) if settings.outbound_events else None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if not settings.webhook_secrets():
            log.warning("C2C_WEBHOOK_SECRET is not set: every webhook will be refused")
        if not await context.temporal_ready():
            log.warning("Temporal not reachable yet", address=settings.temporal_address)
        if context.event_queue is not None:
            context.event_queue.start()
        if dispatcher is not None:
            dispatcher.start()
        yield
        if dispatcher is not None:
            await dispatcher.stop()
        if context.event_queue is not None:
            await context.event_queue.stop()

    app = FastAPI(
        title="c2c",
        summary="Contract-to-cash orchestration on Temporal",
        version="1",
        lifespan=lifespan,
        telemetry=fastapi_telemetry(settings),
    )
    app.state.context = context
    app.state.outbound = dispatcher
    app.state.tokens = TokenTable.from_settings(settings)
    # The same codec as every Temporal client of this configuration; a bad key fails here.
    app.state.codec = converter_for(settings).payload_codec
    app.state.codec_refusal = codec.refusal(app.state.codec, app.state.tokens, listen_host)
    if app.state.codec_refusal is not None:
        log.warning(app.state.codec_refusal)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    # Outside the error handlers, so a refused codec request still carries its CORS headers.
    app.add_middleware(codec.CodecCors, origins=settings.codec_cors_origins)
    # Added last, so outermost: its log line covers every answer, a 413 included.
    app.add_middleware(RequestLog)
    app.include_router(webhooks.router)
    docusign_webhook.install(app, settings)
    stripe_webhook.install(app)
    ironclad_webhook.install(app, settings)
    app.include_router(routes.router)
    app.include_router(kpis.router)
    app.include_router(books.router)
    app.include_router(outbound.router)
    app.include_router(invoices.router)
    app.include_router(invoice_documents.router)
    app.include_router(codec.router)
    app.add_api_route("/healthz", healthz, methods=["GET"], tags=["health"])
    instrument_api(app)
    app.add_api_route("/readyz", readyz, methods=["GET"], tags=["health"])
    dashboard.install(app, settings, app.state.tokens)
    return app


async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


async def readyz(context: ApiContext = Depends(api_context)) -> JSONResponse:
    """Readiness: Temporal is reachable (``200``), or not (``503``)."""
    if await context.temporal_ready():
        return JSONResponse({"status": "ok", "temporal": "reachable"})
    return JSONResponse({"status": "unavailable", "temporal": "unreachable"}, status_code=503)


def run(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the API until interrupted (``c2c api``)."""
    configure_logging("api")
    settings = get_settings()
    get_ledger(settings.ledger_url)  # a ledger on an older schema refuses to start (LedgerError)
    configure_tracing("api", settings)
    uvicorn.run(
        create_app(settings, listen_host=host),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        loop=event_loop_named(settings.event_loop),
    )
