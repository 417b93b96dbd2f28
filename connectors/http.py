"""Transport concerns shared by every HTTP connector, written once.

Timeouts, the ``Idempotency-Key`` header, paging, and the mapping of answers to c2c's two error
classes: ``429``, ``5xx``, timeouts and connection failures are ``TransientError`` (with the
system's ``Retry-After``), other ``4xx`` are ``BusinessError`` carrying the system's code,
message and field. Logs name the system, route, status and duration, never bodies or secrets.

Every request goes through a ``GovernedClient``, which holds a slot of the vendor's call
limits (``c2c.call_limits``) from before it is sent until its answer has been read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from datetime import date
from decimal import Decimal
from typing import Any, TypeVar

import httpx
import structlog
from pydantic import BaseModel

from c2c.call_limits import call_slot
from c2c.logs import get_logger
from c2c.telemetry import record_connector_call
from c2c.tracing import client_span, end_client_span
from domain.errors import BusinessError, NotFound, Rejection, TransientError

log = get_logger("c2c.connectors")

R = TypeVar("R", bound=BaseModel)

PAGE_SIZE = 500


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


#: A Retry-After longer than this is left to Temporal's retry policy.
QUICK_WAIT_S = 1.0


class Duplicate(BusinessError):
    """A ``409 duplicate``: a record with the same natural key exists already.

    Attributes:
        existing_id: The id of that record, when the system names it.
    """

    def __init__(self, rejection: Rejection, existing_id: str | None) -> None:
        super().__init__(rejection)
        self.existing_id = existing_id


def _rejection(system: str, response: httpx.Response) -> tuple[Rejection, str | None]:
    """What the system said, and the ``existing_id`` a ``409 duplicate`` carries."""
    code, message, field = f"http_{response.status_code}", response.reason_phrase, None
    existing_id: str | None = None
    try:
        payload = response.json()
        error = payload.get("error") or {}
        code = str(error.get("code") or code)
        message = str(error.get("message") or message)
        field = error.get("field")
        existing_id = payload.get("existing_id")
    except (ValueError, AttributeError):
        pass
    rejection = Rejection(
        system=system, code=code, message=message, field=field, status=response.status_code
    )
    return rejection, existing_id if isinstance(existing_id, str) else None


class GovernedClient(httpx.AsyncClient):
    """An ``httpx.AsyncClient`` whose every request holds a slot of ``vendor``'s call limits.

    ``send`` is the one path of every request (``request``, ``get``, ``stream`` all end in
    it): the slot is taken before the request leaves and given back once its answer has been
    read, so the vendor never has more of c2c's requests at once, or in one second, than its
    limits allow. A streamed answer gives its slot back when its headers arrive.
    """

    def __init__(self, vendor: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.vendor = vendor

    async def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        async with call_slot(self.vendor):
            return await super().send(request, **kwargs)


class HttpConnector:
    """Base of the httpx connectors: one ``AsyncClient`` per connector, reused across calls.

    ``vendor`` names the system's API for its call limits (``C2C_CALL_LIMITS``): the sandbox's
    systems by their own name, a vendor's connector by the vendor's.
    """

    system: str = "unknown"
    vendor: str | None = None

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 10.0,
        quick_retries: int = 0,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.quick_retries = quick_retries
        self._client = GovernedClient(
            self.vendor or self.system,
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout_s),
            headers={"User-Agent": "c2c", **(headers or {})},
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """Send a request and return its JSON body, or raise the error class it maps to.

        A request that is safe to repeat (a read, a PUT, or a write with an idempotency key)
        is tried again at once (``quick_retries`` times) after a transient failure with no long
        Retry-After:
        a step made of ten calls to a flaky system then fails for a real outage, not for one
        dropped answer. Longer waits are Temporal's retry policy's to schedule.
        """
        repeatable = method in ("GET", "PUT", "DELETE") or idempotency_key is not None
        for attempt in range(self.quick_retries + 1):
            try:
                return await self._send(
                    method, path, json=json, params=params, idempotency_key=idempotency_key
                )
            except TransientError as exc:
                long_wait = exc.retry_after_s is not None and exc.retry_after_s > QUICK_WAIT_S
                if not repeatable or long_wait or attempt == self.quick_retries:
                    raise
                await asyncio.sleep(exc.retry_after_s or 0.05 * 2**attempt)
        raise AssertionError("unreachable")

    async def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """Send one request and return its JSON body, or raise the error class it maps to."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        route = route_template(path)
        started = time.perf_counter()
        # Every line logged during the call names the system, whoever writes it.
        with (
            structlog.contextvars.bound_contextvars(system=self.system),
            client_span(self.system, method, route, headers) as span,
        ):
            try:
                response = await self._client.request(
                    method, path, json=to_wire(json), params=_clean(params), headers=headers
                )
            except httpx.TimeoutException as exc:
                self._observe(span, method, route, None, started, "timeout")
                raise TransientError(self.system, f"{method} {path} timed out") from exc
            except httpx.TransportError as exc:
                self._observe(span, method, route, None, started, "transient")
                raise TransientError(self.system, f"{method} {path}: {type(exc).__name__}") from exc
            status = response.status_code
            self._observe(span, method, route, status, started, _outcome(status))
        if status < 400:
            return response.json() if response.content else None
        if status == 429 or status >= 500:
            raise TransientError(
                self.system,
                f"{method} {path} answered {status}",
                status=status,
                retry_after_s=_retry_after(response),
            )
        rejection, existing_id = _rejection(self.system, response)
        if status == 404:
            raise NotFound(rejection)
        if status == 409 and rejection.code == "duplicate":
            raise Duplicate(rejection, existing_id)
        raise BusinessError(rejection)

    async def send(
        self,
        model: type[R],
        method: str,
        path: str,
        *,
        json: Any = None,
        idempotency_key: str | None = None,
    ) -> R:
        """A request whose answer is one record of ``model``."""
        body = await self.request(method, path, json=json, idempotency_key=idempotency_key)
        return model.model_validate(body)

    async def collect(
        self, model: type[R], path: str, params: Mapping[str, Any] | None = None
    ) -> list[R]:
        """Every item of a list as records of ``model``: for lists one contract bounds."""
        records: list[R] = []
        async for page in self.pages(path, params):
            records.extend(model.model_validate(item) for item in page)
        return records

    async def get_or_none(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        try:
            return await self.request("GET", path, params=params)
        except NotFound:
            return None

    async def first(self, path: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """The first item of a filtered list, or ``None``."""
        page = await self.request("GET", path, params={**params, "limit": 1})
        items = page.get("items") or []
        return items[0] if items else None

    async def find_or_create(
        self,
        model: type[R],
        path: str,
        key: Mapping[str, Any],
        body: dict[str, Any],
        *,
        idempotency_key: str,
        look_first: bool = True,
    ) -> R:
        """The record of ``path`` whose canonical ``key`` matches, created from ``body`` if none.

        A refused create is answered by the record if it exists after all: a ``409 duplicate``
        (created meanwhile, concurrently or under another key), the key reused with another
        body (an amendment, then a reset that runs the step again), or a rule the existing
        record predates. Only when none exists is the refusal the answer.

        Args:
            look_first: Look the record up before creating it. ``False`` for records that are
                almost always new (those one contract owns: its project, its contract): the
                create goes first, and a new record costs one call instead of two. The outcome
                is the same either way; a record that exists costs one call more.
        """
        if look_first and (existing := await self.first(path, key)) is not None:
            return model.model_validate(existing)
        try:
            created = await self.request("POST", path, json=body, idempotency_key=idempotency_key)
        except BusinessError:
            if (existing := await self.first(path, key)) is None:
                raise
            return model.model_validate(existing)
        return model.model_validate(created)

    async def pages(
        self, path: str, params: Mapping[str, Any] | None = None, *, page_size: int = PAGE_SIZE
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Every page of a list, one request at a time, so memory stays at one page."""
        cursor: str | None = None
        while True:
            query = {**(params or {}), "limit": page_size}
            if cursor:
                query["cursor"] = cursor
            page = await self.request("GET", path, params=query)
            yield page.get("items") or []
            cursor = page.get("next")
            if not cursor:
                return

    def _observe(
        self,
        span: Any,
        method: str,
        route: str,
        status: int | None,
        started: float,
        outcome: str,
    ) -> None:
        """Log, count and time one call, and close its span's record."""
        seconds = time.perf_counter() - started
        log.debug(
            "connector call",
            system=self.system,
            method=method,
            route=route,
            status=status,
            outcome=outcome,
            duration_ms=round(seconds * 1000, 1),
        )
        record_connector_call(
            system=self.system, operation=f"{method} {route}", outcome=outcome, seconds=seconds
        )
        end_client_span(span, status, outcome)


def _outcome(status: int) -> str:
    """The metric outcome of an answer: the error class it maps to."""
    if status < 400:
        return "ok"
    if status == 429 or status >= 500:
        return "transient"
    return "business_error"


#: Path segments in an id's position that are actions, not ids (``/addresses/validate``).
ACTION_SEGMENTS = frozenset({"validate", "createoradjust"})


def route_template(path: str) -> str:
    """``path`` with its ids as ``{id}``: ``/invoices/INV-7/issue`` → ``/invoices/{id}/issue``.

    The systems' paths alternate collection and id (``/projects/{id}/billing-batches/{id}``),
    so every second segment is an id unless it is a known action. Metrics and spans are
    labelled with the template: a label per record would grow without bound.
    """
    segments = path.strip("/").split("/")
    return "/" + "/".join(
        segment if index % 2 == 0 or segment in ACTION_SEGMENTS else "{id}"
        for index, segment in enumerate(segments)
    ).rstrip("/")


def to_wire(value: Any) -> Any:
    """``value`` with every ``Decimal`` as a decimal string and every date in ISO 8601.

    Callers may build request bodies from domain values; money must travel as ``"1250.00"``,
    never through a float.
    """
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {key: to_wire(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_wire(item) for item in value]
    return value


def _clean(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if params is None:
        return None
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        out[key] = str(value).lower() if isinstance(value, bool) else to_wire(value)
    return out
