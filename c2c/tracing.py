"""Optional OpenTelemetry tracing, from the webhook that starts a contract to each system call.

Off unless ``C2C_OTEL_ENABLED=1`` or ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (install the
``otel`` extra). When on, a component's process gets one tracer provider exporting OTLP over
HTTP (the exporter reads the standard ``OTEL_EXPORTER_OTLP_*`` variables); its Temporal clients
carry the SDK's ``TracingInterceptor`` (which the worker inherits from its client), FastAPI's
built-in instrumentation opens a server span per request (it traces through the global
provider set here, honouring a caller's ``traceparent``), and ``HttpConnector`` a client span
per call. One trace then reads: webhook → StartWorkflow → RunWorkflow → StartActivity →
RunActivity → system calls.

OpenTelemetry is imported only when tracing is on, so c2c runs without it installed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

from fastapi.telemetry import TelemetryConfig

from c2c.logs import get_logger
from c2c.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer
    from temporalio.client import Interceptor

log = get_logger("c2c.tracing")

#: The instrumentation scope of c2c's own spans.
TRACER_NAME = "c2c"

_tracer: Tracer | None = None


def tracing_enabled(settings: Settings) -> bool:
    """Whether the configuration asks for traces."""
    return settings.otel_enabled or bool(settings.otel_exporter_otlp_endpoint)


def fastapi_telemetry(settings: Settings | None) -> TelemetryConfig:
    """FastAPI's own telemetry for a c2c app: its request spans when c2c traces (or whoever
    embeds the app installed a tracer provider before building it), nothing else: c2c's
    metrics are Prometheus counters, its logs structlog. What is off FastAPI does not look for
    on each request (lookups of OpenTelemetry's global providers, each reading the
    environment: about 3 % of the API's CPU per webhook)."""
    tracing = settings is not None and (tracing_enabled(settings) or _tracer_provider_set())
    return TelemetryConfig(tracing=tracing, metrics=False, logs=False)


def _tracer_provider_set() -> bool:
    """Whether a global OpenTelemetry tracer provider is installed (not the API's default)."""
    try:
        from opentelemetry import trace
    except ImportError:
        return False
    return not isinstance(
        trace.get_tracer_provider(), (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
    )


def configure_tracing(
    component: str, settings: Settings, *, exporter: SpanExporter | None = None
) -> bool:
    """Set up this process's tracer provider, if tracing is asked for.

    Call before the component connects to Temporal, so its client gets the interceptor.

    Args:
        component: ``api`` or ``worker``: the service name is ``c2c-<component>`` unless
            ``OTEL_SERVICE_NAME`` gives one.
        settings: The configuration.
        exporter: Where spans go, exported as they end (tests pass an in-memory one); the
            OTLP/HTTP exporter, batched, when not given.

    Returns:
        Whether tracing is on.

    Raises:
        RuntimeError: Tracing is asked for but the ``otel`` extra is not installed.
    """
    global _tracer
    if exporter is None and not tracing_enabled(settings):
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        # OTEL_SERVICE_NAME, when set, names the service (Resource.create reads it).
        own = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": f"c2c-{component}"}
        provider = TracerProvider(resource=Resource.create(own))
        if exporter is not None:
            provider.add_span_processor(SimpleSpanProcessor(exporter))
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    except ImportError as exc:
        raise RuntimeError(
            f"tracing is enabled but OpenTelemetry is not installed ({exc.name}): "
            "pip install 'c2c[otel]'"
        ) from exc
    # The global provider too: FastAPI's server spans are made through it.
    trace.set_tracer_provider(provider)
    _tracer = provider.get_tracer(TRACER_NAME)
    log.info("tracing on", service=f"c2c-{component}")
    return True


def client_interceptors() -> list[Interceptor]:
    """The Temporal client interceptors tracing needs: none while it is off."""
    if _tracer is None:
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor(_tracer)]


@contextmanager
def client_span(
    system: str, method: str, route: str, headers: MutableMapping[str, str]
) -> Iterator[Span | None]:
    """A client span around one call to a system, its context injected into ``headers``.

    Yields ``None`` while tracing is off, at the cost of one comparison.
    """
    if _tracer is None:
        yield None
        return
    from opentelemetry import propagate
    from opentelemetry.trace import SpanKind

    with _tracer.start_as_current_span(
        f"{system} {method} {route}",
        kind=SpanKind.CLIENT,
        attributes={"c2c.system": system, "http.request.method": method, "http.route": route},
    ) as span:
        propagate.inject(headers)
        yield span


def end_client_span(span: Span | None, status: int | None, outcome: str) -> None:
    """Record a call's answer on its span (no-op without one)."""
    if span is None:
        return
    from opentelemetry.trace import StatusCode

    if status is not None:
        span.set_attribute("http.response.status_code", status)
    span.set_attribute("c2c.outcome", outcome)
    if outcome != "ok":
        span.set_status(StatusCode.ERROR, outcome)
