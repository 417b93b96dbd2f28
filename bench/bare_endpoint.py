"""The webhook-ingress baseline: an endpoint that only checks the signature.

It serves ``POST /webhooks/clm`` with the API's own signature check (``c2c.signing.verify``,
the same secret from ``C2C_WEBHOOK_SECRET``) on FastAPI and uvicorn configured as ``c2c api``
is, and answers ``202`` without parsing, recording or starting anything. Whatever c2c's ingress
costs beyond this is c2c's own work: parsing, validation, the inbound-event ledger, starting
the workflow. Run as ``python -m bench.bare_endpoint --port N`` (the stack does).
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from c2c.loops import resolve as event_loop_named
from c2c.settings import get_settings
from c2c.signing import SignatureError, verify
from c2c.tracing import fastapi_telemetry
from domain.names import SIGNATURE_HEADER
from starter.stack.components import HOST


def create_app(secrets: list[str]) -> FastAPI:
    """The bare endpoint, accepting ``secrets``."""
    # FastAPI's telemetry as c2c's API has it when tracing is off, as in every benchmark.
    app = FastAPI(title="bench bare webhook endpoint", telemetry=fastapi_telemetry(None))

    @app.post("/webhooks/clm")
    async def clm(request: Request) -> JSONResponse:
        body = await request.body()
        try:
            verify(request.headers.get(SIGNATURE_HEADER), body, secrets)
        except SignatureError as exc:
            return JSONResponse({"error": {"code": "invalid_signature", "message": str(exc)}}, 401)
        return JSONResponse({"accepted": True}, 202)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    settings = get_settings()
    app = create_app(settings.webhook_secrets())
    # Served exactly as c2c's API is: the same event loop and HTTP parser.
    loop = event_loop_named(settings.event_loop)
    uvicorn.run(app, host=HOST, port=args.port, log_config=None, access_log=False, loop=loop)


if __name__ == "__main__":
    main()
