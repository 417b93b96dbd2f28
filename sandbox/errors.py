"""The sandbox error format: ``{"error": {"code", "message", "field"}}``, for every failure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from c2c.logs import get_logger

log = get_logger(__name__)


def error_payload(
    code: str, message: str, field: str | None = None, **extra: Any
) -> dict[str, Any]:
    """The body of an error answer; ``extra`` keys sit beside ``error`` (``existing_id``)."""
    return {"error": {"code": code, "message": message, "field": field}, **extra}


def status_code_name(status: int) -> str:
    """The error code of an HTTP status that has no more specific one (``bad_gateway``)."""
    named = {404: "not_found", 429: "rate_limited", 503: "unavailable", 500: "internal_error"}
    if status in named:
        return named[status]
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


class ApiError(Exception):
    """A refusal, answered in the sandbox error format."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.extra = dict(extra or {})

    def payload(self) -> dict[str, Any]:
        return error_payload(self.code, self.message, self.field, **self.extra)


def invalid(code: str, message: str, field: str | None = None) -> ApiError:
    """A ``422``: a validation or business rule refused the request."""
    return ApiError(422, code, message, field=field)


def not_found(kind: str, ident: str) -> ApiError:
    """A ``404`` for the record ``kind`` with id ``ident``."""
    return ApiError(404, "not_found", f"{kind} {ident!r} does not exist")


def duplicate(message: str, existing_id: str) -> ApiError:
    """A ``409``: a record with the same natural key exists already."""
    return ApiError(409, "duplicate", message, extra={"existing_id": existing_id})


def dotted(loc: Sequence[str | int]) -> str | None:
    """``("body", "lines", 2, "amount")`` → ``"lines.2.amount"``; ``None`` for the body itself."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(str(p) for p in parts) or None


def _validation_error(exc: RequestValidationError) -> ApiError:
    errors = list(exc.errors())
    if not errors:
        return invalid("validation_error", "the request is not valid")
    first = errors[0]
    if first.get("type") == "json_invalid":
        return invalid("invalid_json", "the request body is not valid JSON")
    field = dotted(first.get("loc", ()))
    message = str(first.get("msg", "is not valid")).removeprefix("Value error, ")
    if field is None and first.get("type") == "missing":
        message = "a JSON request body is required"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return invalid("validation_error", message, field)


def _respond(exc: ApiError, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(exc.payload(), status_code=exc.status, headers=dict(headers or {}))


async def _on_api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return _respond(exc)


async def _on_validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return _respond(_validation_error(exc))


async def _on_http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    error = ApiError(exc.status_code, status_code_name(exc.status_code), str(exc.detail))
    return _respond(error, exc.headers)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("sandbox request failed", path=request.url.path, exc_info=exc)
    return _respond(ApiError(500, "internal_error", "the sandbox failed to answer"))


def install_error_handlers(app: FastAPI) -> None:
    """Answer every failure of ``app`` in the sandbox error format."""
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
