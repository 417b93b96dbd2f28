"""The sandbox app: one router per system, the admin routes, and the request layers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import uvicorn
from fastapi import APIRouter, FastAPI
from sqlalchemy.engine import make_url

from c2c.logs import configure_logging, get_logger
from c2c.loops import resolve as event_loop_named
from c2c.settings import get_settings
from c2c.tracing import fastapi_telemetry
from sandbox import (
    admin,
    avatax,
    business_central,
    crm,
    demo_data,
    docusign,
    erp,
    erp_billing,
    erp_contracts,
    erp_credit,
    erp_revenue,
    erp_write_offs,
    ironclad,
    netsuite,
    payments,
    psa,
    psa_work,
    salesforce,
    stripe,
    tax,
    tax_documents,
)
from sandbox.db import Database, sqlite_file
from sandbox.errors import install_error_handlers
from sandbox.faults import FaultMiddleware, FaultRules
from sandbox.http import SYSTEM_ROOTS, RequestContextMiddleware, RouteTable
from sandbox.idempotency import IdempotencyMiddleware, IdempotencyStore
from sandbox.stats import Stats, StatsMiddleware
from sandbox.webhooks import WebhookDispatcher

log = get_logger(__name__)

#: The routers of each system, mounted at its root (``SYSTEM_ROOTS``).
SYSTEM_ROUTERS: dict[str, tuple[APIRouter, ...]] = {
    "crm": (crm.router,),
    "erp": (
        erp.router,
        erp_contracts.router,
        erp_billing.router,
        erp_credit.router,
        erp_revenue.router,
        erp_write_offs.router,
    ),
    "psa": (psa.router, psa_work.router),
    "tax": (tax.router, tax_documents.router),
    "payments": (payments.router,),
}


def create_app(
    database_url: str,
    *,
    webhook_target: str,
    webhook_secrets: Sequence[str],
    load_demo: bool = True,
    docusign_connect_keys: Sequence[str] = (),
    docusign_token: str | None = None,
    stripe_webhook_secrets: Sequence[str] = (),
    ironclad_token: str | None = None,
) -> FastAPI:
    """Build the sandbox.

    Args:
        database_url: SQLAlchemy URL of its database (SQLite; the tables are created if missing).
        webhook_target: Base URL that webhooks are posted to (``{target}/webhooks/psa``).
        webhook_secrets: Accepted webhook secrets; the first signs. Empty: webhooks are
            recorded but not sent.
        load_demo: Load the demo data into a new database and on ``POST /_admin/reset``.
        docusign_connect_keys: HMAC keys that sign DocuSign Connect messages (one header each).
        docusign_token: The bearer token DocuSign's REST paths require; none: any caller.
        stripe_webhook_secrets: Stripe endpoint secrets; the first signs the events sent to
            ``/webhooks/stripe``. Empty: events are kept, not sent.
        ironclad_token: The bearer token Ironclad's API paths require; none: any caller.
    """
    db = Database(database_url)
    if db.create_tables() and load_demo:
        with db.write() as session:
            demo_data.load(session)
    stats = Stats()
    faults = FaultRules()
    webhooks = WebhookDispatcher(db, target=webhook_target, secrets=webhook_secrets)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await webhooks.start()
        try:
            yield
        finally:
            await webhooks.stop()
            db.dispose()

    app = FastAPI(
        title="c2c sandbox",
        summary="Local stand-ins for CRM, ERP, PSA, tax engine and payment gateway",
        lifespan=lifespan,
        # The stand-ins trace nothing: FastAPI need not look for telemetry on each request.
        telemetry=fastapi_telemetry(None),
    )
    app.state.db = db
    app.state.stats = stats
    app.state.faults = faults
    app.state.webhooks = webhooks
    app.state.load_demo = load_demo
    app.state.docusign = docusign.ConnectConfig(
        f"{webhook_target.rstrip('/')}/webhooks/docusign",
        list(docusign_connect_keys),
        docusign_token,
    )
    app.state.ironclad = ironclad.WebhookConfig(
        f"{webhook_target.rstrip('/')}/webhooks/ironclad", ironclad_token
    )
    install_error_handlers(app)
    for system, routers in SYSTEM_ROUTERS.items():
        for router in routers:
            app.include_router(router, prefix=SYSTEM_ROOTS[system])
    app.include_router(salesforce.router, prefix="/vendors/salesforce")
    app.include_router(admin.router, prefix="/_admin")
    app.include_router(docusign.router, prefix="/vendors/docusign")
    app.include_router(docusign.admin_router, prefix="/_admin/docusign")
    app.include_router(ironclad.router, prefix="/vendors/ironclad")
    app.include_router(ironclad.admin_router, prefix="/_admin/ironclad")
    app.include_router(netsuite.router, prefix="/vendors/netsuite")
    app.include_router(netsuite.admin_router, prefix="/_admin/netsuite")
    app.include_router(business_central.router, prefix="/vendors/bc")
    app.include_router(business_central.admin_router, prefix="/_admin/bc")
    app.include_router(avatax.router, prefix="/vendors/avatax")
    app.include_router(stripe.router, prefix="/vendors/stripe")
    app.include_router(stripe.admin_router, prefix="/_admin/stripe")
    app.state.stripe = stripe.StripeConfig(
        f"{webhook_target.rstrip('/')}/webhooks/stripe", list(stripe_webhook_secrets)
    )
    app.add_api_route("/healthz", healthz, methods=["GET"], tags=["health"])
    # Added innermost first: context → stats → faults → idempotency → routes. Faults sit above
    # idempotency so that a "phase: after" fault loses an answer that was already kept.
    app.add_middleware(IdempotencyMiddleware, store=IdempotencyStore(db))
    app.add_middleware(FaultMiddleware, rules=faults, stats=stats)
    app.add_middleware(StatsMiddleware, stats=stats)
    app.add_middleware(RequestContextMiddleware, routes=RouteTable(SYSTEM_ROUTERS))
    return app


async def healthz() -> dict[str, str]:
    """Liveness: the process answers (container health checks probe it)."""
    return {"status": "ok"}


def run(host: str, port: int) -> None:
    """Serve the sandbox as configured by the environment (``c2c sandbox``)."""
    settings = get_settings()
    configure_logging("sandbox")
    url = settings.sandbox_db_url
    path = sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    token = settings.docusign_access_token
    ironclad_token = settings.ironclad_access_token
    app = create_app(
        url,
        webhook_target=settings.webhook_target,
        webhook_secrets=settings.webhook_secrets(),
        docusign_connect_keys=settings.docusign_keys(),
        docusign_token=token.get_secret_value() if token else None,
        stripe_webhook_secrets=settings.stripe_webhook_secrets(),
        ironclad_token=ironclad_token.get_secret_value() if ironclad_token else None,
    )
    database = make_url(url).render_as_string(hide_password=True)
    log.info("sandbox starting", url=f"http://{host}:{port}", database=database)
    uvicorn.run(
        app, host=host, port=port, log_config=None, loop=event_loop_named(settings.event_loop)
    )
