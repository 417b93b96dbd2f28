"""Every error the API answers, in one JSON shape, and never with a stack trace.

``{"error": {"code", "message", "field"}, "errors": [{"field", "message"}, ...]}``: ``error``
is the first (or only) problem, ``errors`` lists every invalid field of a ``422``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.exceptions import HTTPException
from temporalio.client import RPCTimeoutOrCancelledError, WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from c2c.logs import get_logger
from starter.api.contracts import is_finished_error
from starter.api.fields import FieldProblem, problems, problems_from

log = get_logger("c2c.api")

#: The response header that names the request in the API's log lines.
REQUEST_ID_HEADER = "X-Request-ID"

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
}


#: What each error status means, as the OpenAPI document describes it.
ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "the body is not valid JSON, or the request is malformed",
    401: "missing or unknown credentials (a bearer token, or a webhook's signature)",
    403: "the token's role may not do this",
    404: "no such contract, exception or event",
    409: "refused by the current state of what it names",
    413: "the body is over the size limit",
    422: "invalid input: `error.field` and `errors` name every invalid field",
    500: "an unexpected error: quote `request_id` to the operators; nothing is in the answer",
    502: "Temporal refused the request, or the workflow could not answer",
    503: "Temporal or a system did not answer; nothing was lost, try again",
}


class ErrorDetail(BaseModel):
    """The first (or only) problem of an error answer."""

    code: str
    message: str
    field: str | None = None


class FieldError(BaseModel):
    """One invalid field of a ``422``."""

    field: str | None
    message: str


class ErrorBody(BaseModel):
    """Every error the API answers (some carry more members, e.g. a rejected amendment's
    ``result`` or a dead letter's ``event_id``)."""

    model_config = ConfigDict(extra="allow")

    error: ErrorDetail
    errors: list[FieldError] = []
    request_id: str | None = None


def error_responses(*statuses: int, **described: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for error statuses, each with the ``ErrorBody`` model.

    Args:
        statuses: The statuses, described as in ``ERROR_DESCRIPTIONS``.
        described: More statuses with their own description, keyed ``s409="..."``.
    """
    wanted = {status: ERROR_DESCRIPTIONS[status] for status in statuses}
    wanted.update({int(key.removeprefix("s")): text for key, text in described.items()})
    return {
        status: {"model": ErrorBody, "description": text} for status, text in sorted(wanted.items())
    }


class ApiError(Exception):
    """An answer other than success, raised anywhere in a request and rendered as JSON.

    Args:
        status: HTTP status code.
        code: Stable, machine-readable error code.
        message: What went wrong, safe to show to the caller.
        field: Dotted path of the field at fault, if one is.
        errors: Every invalid field, for a validation error.
        extra: More top-level members of the body (e.g. a rejected amendment's result).
        headers: Response headers (e.g. ``WWW-Authenticate``).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        errors: Sequence[FieldProblem] = (),
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.errors = list(errors)
        self.extra = extra or {}
        self.headers = headers

    def body(self) -> dict[str, Any]:
        """The JSON body of the answer."""
        return {
            "error": {"code": self.code, "message": self.message, "field": self.field},
            "errors": [e.as_dict() for e in self.errors],
            **self.extra,
        }

    def response(self) -> JSONResponse:
        """The answer as a response."""
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def invalid(found: Sequence[FieldProblem]) -> ApiError:
    """A ``422`` naming every invalid field; ``error`` names the first."""
    first = found[0] if found else FieldProblem(None, "invalid request")
    return ApiError(422, "validation_error", str(first), field=first.field, errors=found)


def invalid_field(field: str | None, message: str) -> ApiError:
    """A ``422`` for one invalid field."""
    return invalid([FieldProblem(field, message)])


def from_validation(exc: ValidationError, prefix: Sequence[str | int] = ()) -> ApiError:
    """A ``422`` for a pydantic ``ValidationError``, its paths under ``prefix``."""
    return invalid(problems(exc, prefix))


def _rpc_error(exc: RPCError) -> ApiError:
    if is_finished_error(exc):
        return ApiError(409, "contract_closed", "the contract's workflow has finished")
    if exc.status == RPCStatusCode.NOT_FOUND:
        return ApiError(404, "contract_not_found", "no such contract")
    if exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
        return ApiError(503, "temporal_unavailable", "Temporal did not answer; try again")
    return ApiError(502, "temporal_error", f"Temporal refused the request ({exc.status.name})")


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _request_validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return ApiError(400, "invalid_json", "the body is not valid JSON").response()
    return invalid(problems_from(errors)).response()


async def _http_exception(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    headers = dict(exc.headers) if exc.headers else None
    error = ApiError(exc.status_code, code, str(exc.detail), headers=headers)
    return error.response()


async def _rpc(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RPCError)
    error = _rpc_error(exc)
    log.info("temporal refused", path=request.url.path, status=exc.status.name, answer=error.code)
    return error.response()


async def _query_failed(request: Request, exc: Exception) -> JSONResponse:
    # The workflow could not answer (e.g. its worker fails the task): a server-side fault.
    log.warning("status query failed", path=request.url.path, error=str(exc))
    return ApiError(502, "query_failed", "the contract's workflow could not answer").response()


async def _rpc_timeout(_: Request, __: Exception) -> JSONResponse:
    return ApiError(503, "temporal_unavailable", "Temporal did not answer; try again").response()


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The caller gets the request id to quote; the traceback goes to the log line that
    # carries the same id, never into the answer (it may name code, data or a secret).
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    log.error("unhandled error", path=request.url.path, exc_info=exc)
    error = ApiError(
        500,
        "internal_error",
        "internal error; quote the request id to the API's operators",
        extra={"request_id": request_id},
        headers={REQUEST_ID_HEADER: request_id} if request_id else None,
    )
    return error.response()


def install_error_handlers(app: FastAPI) -> None:
    """Render every error of ``app`` in the API's JSON shape."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(HTTPException, _http_exception)
    app.add_exception_handler(RPCError, _rpc)
    app.add_exception_handler(WorkflowQueryFailedError, _query_failed)
    app.add_exception_handler(RPCTimeoutOrCancelledError, _rpc_timeout)
    app.add_exception_handler(Exception, _unexpected)


def _query_names(dependant: Dependant) -> frozenset[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return frozenset(names)


async def known_query_only(request: Request) -> None:
    """Dependency: refuse query parameters the operation does not have, or given twice.

    Ignoring them would answer a typo (``?stag=on_hold``) with every contract, which a
    script would take for the filtered list; and of a parameter given twice only the last
    would count.

    Raises:
        ApiError: ``422`` naming each unknown or repeated parameter.
    """
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known = _query_names(route.dependant)
    unknown = sorted(set(request.query_params) - known)
    names = [name for name, _ in request.query_params.multi_items()]
    repeated = sorted({name for name in names if names.count(name) > 1} - set(unknown))
    if repeated:
        raise invalid([FieldProblem(name, "given more than once") for name in repeated])
    if unknown:
        expected = ", ".join(sorted(known)) or "none"
        raise invalid(
            [
                FieldProblem(
                    name or "(empty name)", f"unknown query parameter; expected {expected}"
                )
                for name in unknown
            ]
        )
