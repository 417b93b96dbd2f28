"""Metrics of every c2c component, named once.

The worker serves Prometheus on one port (``C2C_WORKER_METRICS_ADDRESS``): the Temporal SDK's
own ``temporal_*`` metrics and c2c's business metrics, which activities emit through the SDK's
metric meter so both come out of the same exporter. The API's own metrics (its requests,
webhooks and the ledger's gauges, served at ``GET /metrics``) are in ``starter.api.metrics``.

The ``record_*`` functions are the one way code reports a business event: inside an activity
they use ``activity.metric_meter()`` (so the worker's port shows them, labelled with the
activity and task queue by the SDK); anywhere else they use the process's
``prometheus_client`` registry (which the API serves).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

from prometheus_client import Counter, Gauge, Histogram
from temporalio import activity
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from c2c.logs import get_logger
from c2c.settings import Settings
from c2c.tracing import configure_tracing

log = get_logger("c2c.telemetry")

INVOICES_ISSUED = "c2c_invoices_issued_total"
INVOICED_AMOUNT = "c2c_invoiced_amount"
EXCEPTIONS_OPENED = "c2c_exceptions_opened_total"
EXCEPTIONS_RESOLVED = "c2c_exceptions_resolved_total"
CONNECTOR_CALLS = "c2c_connector_calls_total"
CONNECTOR_LATENCY = "c2c_connector_latency_seconds"
VENDOR_API_REMAINING = "c2c_vendor_api_remaining"
VENDOR_API_MAX = "c2c_vendor_api_max"
CALL_SLOT_WAIT = "c2c_vendor_call_slot_wait_seconds"

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
                        CALL_SLOT_WAIT: LATENCY_BUCKETS,
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


class _BusinessGauge:
    """A gauge of the SDK's meter inside an activity, of ``prometheus_client`` elsewhere."""

    def __init__(self, name: str, documentation: str, labels: Sequence[str]) -> None:
        self.name, self.documentation = name, documentation
        self.fallback = Gauge(name, documentation, labels)

    def set(self, labels: Mapping[str, str], value: int) -> None:
        if activity.in_activity():
            gauge = activity.metric_meter().create_gauge(self.name, self.documentation)
            gauge.set(value, dict(labels))
        else:
            self.fallback.labels(**labels).set(value)


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
_slot_wait = _BusinessHistogram(
    CALL_SLOT_WAIT,
    "Time a call waited for a slot under its vendor's call limits (C2C_CALL_LIMITS)",
    ["system"],
    LATENCY_BUCKETS,
)


_api_remaining = _BusinessGauge(
    VENDOR_API_REMAINING, "API requests a vendor still allows today, as last seen", ["vendor"]
)
_api_max = _BusinessGauge(VENDOR_API_MAX, "API requests a vendor allows per day", ["vendor"])


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


def record_api_budget(*, vendor: str, remaining: int, maximum: int) -> None:
    """A vendor's daily API budget as last seen (``Sforce-Limit-Info``, a limits resource)."""
    _api_remaining.set({"vendor": vendor}, remaining)
    _api_max.set({"vendor": vendor}, maximum)


def record_call_slot_wait(*, system: str, seconds: float) -> None:
    """How long one call to ``system`` (a vendor, as ``C2C_CALL_LIMITS`` names it) waited for
    a slot under its limits before it was sent."""
    _slot_wait.observe({"system": system}, seconds)
