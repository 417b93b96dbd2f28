"""One trace from the CLM webhook to the systems' calls: FastAPI's server span, the SDK's
StartWorkflow, RunWorkflow, StartActivity and RunActivity spans, and each connector call."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from temporalio.client import Client

import c2c.tracing
from c2c.settings import Settings
from c2c.signing import sign
from c2c.tracing import client_interceptors, configure_tracing
from domain.names import SIGNATURE_HEADER
from starter.api.app import create_app
from tests.support import WEBHOOK_SECRET, approval_payload
from tests.workflows.helpers import wait_stage
from worker import contract_worker


@pytest.fixture
def spans(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """Tracing on, into memory, for this test only."""
    monkeypatch.setattr(c2c.tracing, "_tracer", None)
    exporter = InMemorySpanExporter()
    assert configure_tracing("test", settings, exporter=exporter)
    yield exporter
    exporter.shutdown()


def parent_of(span: ReadableSpan, spans: list[ReadableSpan]) -> ReadableSpan:
    [parent] = [s for s in spans if span.parent and s.context.span_id == span.parent.span_id]
    return parent


async def test_one_trace_runs_from_the_webhook_to_each_system_call(
    spans: InMemorySpanExporter, temporal_client: Client, settings: Settings
) -> None:
    # A client as c2c.temporal.connect makes it while tracing is on; its worker inherits it.
    client = Client(**{**temporal_client.config(), "interceptors": client_interceptors()})
    own = settings.model_copy(update={"task_queue": f"c2c-traced-{uuid.uuid4().hex[:8]}"})
    data = approval_payload()
    body = json.dumps({"id": f"evt-{uuid.uuid4().hex}", "type": "contract.approved", "data": data})
    headers = {SIGNATURE_HEADER: sign(body.encode(), WEBHOOK_SECRET)}
    transport = httpx.ASGITransport(app=create_app(own, client=client))
    async with (
        contract_worker(client, own),
        httpx.AsyncClient(transport=transport, base_url="http://api") as api,
    ):
        response = await api.post("/webhooks/clm", content=body, headers=headers)
        assert response.status_code == 202, response.text
        await wait_stage(client, data["contract_id"], "active")

    finished = list(spans.get_finished_spans())
    [webhook] = [s for s in finished if s.name == "POST /webhooks/clm"]
    assert webhook.kind is SpanKind.SERVER and webhook.parent is None
    assert webhook.attributes is not None
    assert webhook.attributes["http.route"] == "/webhooks/clm"
    assert webhook.attributes["http.response.status_code"] == 202
    trace = [s for s in finished if s.context.trace_id == webhook.context.trace_id]

    [call] = [s for s in trace if s.name == "crm GET /accounts/{id}"]
    assert call.kind is SpanKind.CLIENT
    assert call.attributes is not None
    assert (call.attributes["c2c.system"], call.attributes["c2c.outcome"]) == ("crm", "ok")
    assert call.attributes["http.response.status_code"] == 200
    chain = [call]
    while chain[-1] is not webhook:
        chain.append(parent_of(chain[-1], trace))
    assert [s.name for s in chain] == [
        "crm GET /accounts/{id}",
        "RunActivity:validate_contract",
        "StartActivity:validate_contract",
        "StartWorkflow:ContractToCash",
        "fastapi.endpoint",
        "POST /webhooks/clm",
    ]
    # The SDK parents workflow-side spans on the client's StartWorkflow span.
    [run] = [s for s in trace if s.name == "RunWorkflow:ContractToCash"]
    assert parent_of(run, trace).name == "StartWorkflow:ContractToCash"
    # Every step up to the PSA's activation is in the same trace.
    systems = {s.attributes.get("c2c.system") for s in trace if s.attributes}
    assert systems >= {"crm", "erp", "psa", "tax"}


def test_tracing_is_off_unless_asked_for_and_names_the_missing_extra(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(c2c.tracing, "_tracer", None)
    assert configure_tracing("api", settings) is False
    assert client_interceptors() == []
    wanted = settings.model_copy(update={"otel_enabled": True})
    try:
        import opentelemetry.exporter.otlp.proto.http  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeError, match=r"c2c\[otel\]"):
            configure_tracing("api", wanted)
    else:  # the otel extra is installed: tracing comes on
        assert configure_tracing("api", wanted) is True
        assert client_interceptors()
