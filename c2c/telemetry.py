"""Metrics of every c2c component, named once.

The worker serves Prometheus on one port (``C2C_WORKER_METRICS_ADDRESS``): the Temporal SDK's
own ``temporal_*`` metrics and c2c's business metrics, which activities emit through the SDK's
metric meter so both come out of the same exporter. The API serves ``GET /metrics`` from a
``prometheus_client`` registry: its HTTP requests and webhooks, the connector calls it makes
itself, and gauges read from the ledger at scrape time.

The ``record_*`` functions are the one way code reports a business event: inside an activity
they use ``activity.metric_meter()`` (so the worker's port shows them, labelled with the
activity and task queue by the SDK); anywhere else they use the process's
``prometheus_client`` registry (which the API serves).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import Scope
from temporalio import activity
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from c2c.logs import get_logger
from c2c.settings import Settings
from c2c.tracing import configure_tracing
from domain.names import ExceptionQueue, Stage

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ledger import Ledger

log = get_logger("c2c.telemetry")

INVOICES_ISSUED = "c2c_invoices_issued_total"
INVOICED_AMOUNT = "c2c_invoiced_amount"
EXCEPTIONS_OPENED = "c2c_exceptions_opened_total"
EXCEPTIONS_RESOLVED = "c2c_exceptions_resolved_total"
CONNECTOR_CALLS = "c2c_connector_calls_total"
CONNECTOR_LATENCY = "c2c_connector_latency_seconds"

#: Outcomes of a connector call, as ``HttpConnector`` classifies the answer.
CONNECTOR_OUTCOMES = ("ok", "business_error", "transient", "timeout")

#: Seconds: a sandbox answers in milliseconds, a real ERP in up to seconds.
LATENCY_BUCKETS: Sequence[float] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
#: Invoice totals in the invoice's currency (major units).
AMOUNT_BUCKETS: Sequence[float] = (
    100,
    500,
    1_000,
    5_000,
    10_000,
    50_000,
    100_000,
    500_000,
    1_000_000,
)


# --- The worker: one Temporal runtime whose Prometheus exporter serves everything ---------

_runtimes: dict[str, Runtime] = {}


def metrics_runtime(bind_address: str) -> Runtime:
    """A Temporal runtime serving Prometheus metrics on ``bind_address`` (``host:port``).

    The exporter binds its port when the runtime is made, so one runtime is made per address
    and process; asking again returns the same one.

    Raises:
        ValueError: ``bind_address`` is not ``host:port``.
        RuntimeError: The port cannot be bound (the SDK's error, naming the cause).
    """
    host, sep, port = bind_address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"metrics address {bind_address!r} is not host:port")
    if bind_address not in _runtimes:
        _runtimes[bind_address] = Runtime(
            telemetry=TelemetryConfig(
                metrics=PrometheusConfig(
                    bind_address=bind_address,
                    histogram_bucket_overrides={
                        CONNECTOR_LATENCY: LATENCY_BUCKETS,
                        INVOICED_AMOUNT: AMOUNT_BUCKETS,
                    },
                )
            )
        )
    return _runtimes[bind_address]


def install_worker_metrics(bind_address: str | None) -> str | None:
    """Make the process's default Temporal runtime export Prometheus on ``bind_address``.

    Call before the worker's client connects: a client keeps the runtime it was made with,
    and the worker's SDK metrics are its client's runtime's.

    Args:
        bind_address: ``host:port``; ``None`` or empty leaves metrics off.

    Returns:
        The address served, or ``None`` when metrics are off.
    """
    if not bind_address:
        return None
    try:
        runtime = metrics_runtime(bind_address)
    except (ValueError, RuntimeError) as exc:
        # Contracts matter more than their metrics: run on, and say why the port is silent.
        log.error("worker metrics off", address=bind_address, error=str(exc))
        return None
    Runtime.set_default(runtime, error_if_already_set=False)
    log.info("worker metrics", url=f"http://{bind_address}/metrics")
    return bind_address


def instrument_worker(settings: Settings) -> None:
    """Metrics port and tracing for the worker process; call before it connects to Temporal."""
    install_worker_metrics(settings.worker_metrics_address)
    configure_tracing("worker", settings)


# --- Business metrics: through the SDK inside an activity, prometheus_client elsewhere ----


class _BusinessCounter:
    """A counter of the SDK's meter inside an activity, of ``prometheus_client`` elsewhere."""

    def __init__(self, name: str, documentation: str, labels: Sequence[str]) -> None:
        self.name, self.documentation = name, documentation
        self.fallback = Counter(name, documentation, labels)

    def add(self, labels: Mapping[str, str], amount: int = 1) -> None:
        if activity.in_activity():
            counter = activity.metric_meter().create_counter(self.name, self.documentation)
            counter.add(amount, dict(labels))
        else:
            self.fallback.labels(**labels).inc(amount)


class _BusinessHistogram:
    """A float histogram of the SDK's meter inside an activity, of ``prometheus_client`` elsewhere.

    The SDK's buckets for it are set by ``metrics_runtime``; these are the same.
    """

    def __init__(
        self, name: str, documentation: str, labels: Sequence[str], buckets: Sequence[float]
    ) -> None:
        self.name, self.documentation = name, documentation
        self.fallback = Histogram(name, documentation, labels, buckets=buckets)

    def observe(self, labels: Mapping[str, str], value: float) -> None:
        if activity.in_activity():
            meter = activity.metric_meter()
            meter.create_histogram_float(self.name, self.documentation).record(value, dict(labels))
        else:
            self.fallback.labels(**labels).observe(value)


_invoices = _BusinessCounter(
    INVOICES_ISSUED, "Invoices issued in the ERP", ["currency", "legal_entity"]
)
_amount = _BusinessHistogram(
    INVOICED_AMOUNT,
    "Totals of invoices issued, in the invoice currency; _sum is the value invoiced",
    ["currency"],
    AMOUNT_BUCKETS,
)
_opened = _BusinessCounter(
    EXCEPTIONS_OPENED, "Exceptions opened in the exception queue", ["queue", "system", "code"]
)
_resolved = _BusinessCounter(
    EXCEPTIONS_RESOLVED, "Exceptions resolved by an operator", ["queue", "action"]
)
_calls = _BusinessCounter(
    CONNECTOR_CALLS, "HTTP calls to systems of record", ["system", "operation", "outcome"]
)
_latency = _BusinessHistogram(
    CONNECTOR_LATENCY,
    "Duration of HTTP calls to systems of record",
    ["system", "operation"],
    LATENCY_BUCKETS,
)


def record_invoice_issued(*, currency: str, legal_entity: str, total: Decimal) -> None:
    """An invoice was issued (counted once: when c2c moves it from draft to issued).

    The amount is a float here because metrics are approximate by nature; the ledger and the
    ERP keep money as exact decimals.
    """
    _invoices.add({"currency": currency, "legal_entity": legal_entity})
    _amount.observe({"currency": currency}, float(total))


def record_exception_opened(*, queue: str, system: str, code: str) -> None:
    """An exception entered the queue that owns the fix."""
    _opened.add({"queue": queue, "system": system, "code": code})


def record_exception_resolved(*, queue: str, action: str) -> None:
    """An operator retried, skipped or aborted an exception."""
    _resolved.add({"queue": queue, "action": action})


def record_connector_call(*, system: str, operation: str, outcome: str, seconds: float) -> None:
    """One HTTP call to a system: its outcome and how long it took.

    Args:
        system: ``crm``, ``erp``, ``psa``, ``tax`` or ``payments``.
        operation: Method and route template, e.g. ``POST /invoices/{id}/issue``.
        outcome: One of ``CONNECTOR_OUTCOMES``.
        seconds: Wall time from request to answer (or failure).
    """
    _calls.add({"system": system, "operation": operation, "outcome": outcome})
    _latency.observe({"system": system, "operation": operation}, seconds)


# --- The API: HTTP and webhook counters, ledger gauges, GET /metrics ---------------------

HTTP_REQUESTS = Counter(
    "c2c_http_requests_total",
    "HTTP requests answered by the API",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "c2c_http_request_duration_seconds",
    "Time the API took to answer, by route template",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
WEBHOOKS = Counter(
    "c2c_webhooks_received_total",
    "Webhooks received, by source and what became of them",
    ["source", "outcome"],
)

#: What became of a webhook: processed, queued (answered, and left to the event queue),
#: answered as a repeat, refused before it was read, kept as a dead letter (its payload was
#: refused), or left for the sender's retry.
WEBHOOK_OUTCOMES = (
    "accepted",
    "queued",
    "duplicate",
    "rejected_signature",
    "dead_letter",
    "failed",
)


def record_webhook(source: str, outcome: str) -> None:
    """Count one webhook delivery of ``source`` (``clm``, ``psa``, ``payments``)."""
    WEBHOOKS.labels(source=source, outcome=outcome).inc()


QUEUED_EVENTS = Counter(
    "c2c_queued_events_total",
    "Attempts at webhook events answered before they were processed (C2C_WEBHOOK_QUEUE), "
    "by source and outcome",
    ["source", "outcome"],
)

#: What an attempt at a queued event ended in: processed, kept as a dead letter, or left
#: waiting for a later attempt after a transient failure.
QUEUED_OUTCOMES = ("processed", "dead_letter", "retry")


def record_queued_event(source: str, outcome: str) -> None:
    """Count one attempt of the event queue at an event of ``source``."""
    QUEUED_EVENTS.labels(source=source, outcome=outcome).inc()


#: Requests that matched no route share one label, so scanners cannot grow the series.
UNMATCHED_ROUTE = "unmatched"


def record_request(scope: Scope, status: int, seconds: float) -> None:
    """Count one answered request by route template, method and status, and its duration.

    The route template (``/api/contracts/{contract_id}``), never the raw path, is the label:
    a label per contract id would grow without bound.
    """
    # The router writes the matched route into the request's scope.
    route = getattr(scope.get("route"), "path", None) or UNMATCHED_ROUTE
    method = scope["method"]
    HTTP_REQUESTS.labels(method=method, route=route, status=str(status)).inc()
    HTTP_DURATION.labels(method=method, route=route).observe(seconds)


class LedgerGauges(Collector):
    """Gauges read from the ledger at scrape time: contracts by stage, open exceptions by queue,
    webhook events waiting by source.

    Three ``GROUP BY`` queries per scrape; every stage and queue is reported, zero included, so
    a series does not vanish when its last contract moves on.
    """

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def collect(self) -> Iterator[Metric]:
        from sqlalchemy import func
        from sqlmodel import Session, col, select

        from ledger.models import ContractRecord, ExceptionRecord, ExceptionStatus, InboundSource

        with Session(self.ledger.engine) as session:
            stages = dict(
                session.exec(
                    select(ContractRecord.stage, func.count()).group_by(col(ContractRecord.stage))
                ).all()
            )
            queues = dict(
                session.exec(
                    select(ExceptionRecord.queue, func.count())
                    .where(col(ExceptionRecord.status) == ExceptionStatus.OPEN.value)
                    .group_by(col(ExceptionRecord.queue))
                ).all()
            )
        waiting = self.ledger.count_waiting_events()
        yield _gauge("c2c_contracts", "Contracts by stage (ledger)", "stage", Stage, stages)
        yield _gauge(
            "c2c_inbound_events_waiting",
            "Webhook events received and not yet processed, by source (ledger): the event "
            "queue's backlog, and events left for the sender's retry",
            "source",
            InboundSource,
            waiting,
        )
        yield _gauge(
            "c2c_open_exceptions",
            "Open exceptions by queue (ledger)",
            "queue",
            ExceptionQueue,
            queues,
        )


def _gauge(
    name: str, doc: str, label: str, known: Iterable[Any], counts: Mapping[str, int]
) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(name, doc, labels=[label])
    values = {str(getattr(item, "value", item)): 0 for item in known} | dict(counts)
    for key, value in sorted(values.items()):
        gauge.add_metric([key], value)
    return gauge


class _Scrape(Collector):
    """The process's registry plus one ledger's gauges, for one app's ``/metrics``."""

    def __init__(self, ledger: Ledger) -> None:
        self.gauges = LedgerGauges(ledger)

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()
        try:
            yield from self.gauges.collect()
        except Exception as exc:
            # A scrape must answer even when the database does not: the counters still count.
            log.warning("ledger gauges unavailable", error=str(exc))


def exposition(ledger: Ledger) -> tuple[bytes, str]:
    """The body and content type of ``GET /metrics`` for an API whose ledger is ``ledger``."""
    return generate_latest(_Scrape(ledger)), CONTENT_TYPE_LATEST


def instrument_api(app: FastAPI) -> None:
    """Serve ``GET /metrics`` from ``app``.

    Unauthenticated like ``/healthz``: it carries counts, never records.
    """
    from fastapi import Depends, Response

    from ledger import get_ledger
    from starter.api.context import ApiContext, api_context

    def metrics(context: ApiContext = Depends(api_context)) -> Response:
        """Prometheus metrics of this API process and the ledger's gauges."""
        # A plain function: FastAPI runs it in a thread, off the loop, for the ledger queries.
        body, content_type = exposition(get_ledger(context.settings.ledger_url))
        return Response(body, media_type=content_type)

    # The return annotation is a string here (postponed annotations) naming a local import,
    # which FastAPI cannot resolve for the OpenAPI document: state the answer instead.
    app.add_api_route(
        "/metrics",
        metrics,
        methods=["GET"],
        tags=["health"],
        response_model=None,
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
    )
