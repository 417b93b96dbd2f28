"""The API's metrics, served at ``GET /metrics``: its HTTP requests, webhooks and queued
events (counters of the process's ``prometheus_client`` registry), and gauges read from the
ledger at scrape time. The business metrics it shares with the worker are in ``c2c.telemetry``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from fastapi import Depends, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import Scope

from c2c.logs import get_logger
from c2c.telemetry import LATENCY_BUCKETS
from domain.names import ExceptionQueue, Stage
from ledger import Ledger, get_ledger
from starter.api.context import ApiContext, api_context

log = get_logger("c2c.telemetry")

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


OUTBOUND_DELIVERIES = Counter(
    "c2c_outbound_deliveries_total",
    "Attempts at delivering outbound events to subscribers, by event type and outcome",
    ["event_type", "outcome"],
)
OUTBOUND_DELIVERY_DURATION = Histogram(
    "c2c_outbound_delivery_duration_seconds",
    "Time a subscriber took to answer one delivery (or to time out), by event type",
    ["event_type"],
    buckets=LATENCY_BUCKETS,
)

#: What an attempt at a delivery ended in: delivered (2xx), retried (a transient failure,
#: tried again later), failed (refused at once) or given up (transient failures until the
#: attempts or the age ran out).
DELIVERY_OUTCOMES = ("delivered", "retried", "failed", "given_up")


def record_delivery(event_type: str, outcome: str) -> None:
    """Count one settled attempt at delivering an event of ``event_type``."""
    OUTBOUND_DELIVERIES.labels(event_type=event_type, outcome=outcome).inc()


def observe_delivery_latency(event_type: str, seconds: float) -> None:
    """Record how long a subscriber took to answer one delivery."""
    OUTBOUND_DELIVERY_DURATION.labels(event_type=event_type).observe(seconds)


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
    webhook events waiting by source, the outbound deliveries not yet made.

    Three ``GROUP BY`` queries and one count per scrape; every stage and queue is reported,
    zero included, so a series does not vanish when its last contract moves on.
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
        backlog = self.ledger.outbound_backlog()
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
        yield GaugeMetricFamily(
            "c2c_outbound_deliveries_pending",
            "Outbound event deliveries not yet made (ledger): due, waiting to be retried, or "
            "held by a paused subscription",
            value=backlog.pending,
        )
        yield GaugeMetricFamily(
            "c2c_outbound_oldest_pending_age_seconds",
            "How long the oldest delivery not yet made has waited since it began (ledger); "
            "0 when none is pending",
            value=backlog.oldest_age_s,
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
