"""The worker's metrics port after real contracts: the SDK's ``temporal_*`` metrics and c2c's
business metrics, with the values the contracts produced."""

from __future__ import annotations

import socket
import uuid

import httpx
import pytest

from c2c.ports import free_port
from c2c.telemetry import (
    CONNECTOR_CALLS,
    CONNECTOR_LATENCY,
    EXCEPTIONS_OPENED,
    EXCEPTIONS_RESOLVED,
    INVOICED_AMOUNT,
    INVOICES_ISSUED,
    install_worker_metrics,
    metrics_runtime,
)
from domain.models import ClosePeriod, ResolveException
from starter.api.contracts import close_period_for, resolve_exception, start_contract
from tests.telemetry.conftest import MeteredWorker
from tests.workflows.helpers import add_time, approval, wait_for, wait_stage


async def test_an_issued_invoice_shows_on_the_worker_port_with_sdk_metrics(
    metered_worker: MeteredWorker, sandbox: httpx.AsyncClient
) -> None:
    client, queue = metered_worker.client, metered_worker.settings.task_queue
    before = await metered_worker.scrape()
    event = approval()
    cid = event.contract_id
    await start_contract(client, event, task_queue=queue)
    status = await wait_stage(client, cid, "active")
    psa = status.refs["psa_project_id"]
    await add_time(sandbox, psa, "Senior Consultant", "2026-10-05", "8")
    await add_time(sandbox, psa, "Analyst", "2026-10-06", "6")
    await close_period_for(client, cid, ClosePeriod(period="2026-10"))
    status = await wait_for(client, cid, lambda s: bool(s.invoices), what="an invoice")
    # 8 h x 200.00 + 6 h x 120.00 = 2320.00, plus California's 7.25 %: 168.20.
    assert str(status.invoices[0].total) == "2488.20"

    after = await metered_worker.scrape()
    # With no limit on the ERP, billing runs on the workflows' queue (dispatched eagerly),
    # so its metrics carry that queue.
    mine = {"task_queue": queue}

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **mine, **labels) - before.value(name, **mine, **labels)

    # The SDK's own metrics, served by the same exporter.
    assert {"temporal_workflow_task_execution_latency_count", "temporal_request_total"} <= (
        after.names()
    )
    assert delta("temporal_activity_execution_latency_count", activity_type="bill_period") >= 1
    # One invoice issued, its value, labelled by currency and legal entity.
    assert delta(INVOICES_ISSUED, currency="USD", legal_entity="US01") == 1
    assert delta(f"{INVOICED_AMOUNT}_count", currency="USD") == 1
    assert delta(f"{INVOICED_AMOUNT}_sum", currency="USD") == pytest.approx(2488.20)
    # Connector calls by system, route template and outcome, with their latency.
    issue = "POST /invoices/{id}/issue"
    assert delta(CONNECTOR_CALLS, system="erp", operation=issue, outcome="ok") == 1
    assert delta(f"{CONNECTOR_LATENCY}_count", system="erp", operation=issue) == 1
    assert delta(f"{CONNECTOR_LATENCY}_bucket", system="erp", operation=issue, le="+Inf") == 1
    assert delta(CONNECTOR_CALLS, system="psa", outcome="ok") >= 3
    create = "POST /transactions/createoradjust"
    assert delta(CONNECTOR_CALLS, system="tax", operation=create, outcome="ok") == 1
    # Every label is a template: no contract or record id became a series.
    operations = {labels.get("operation", "") for _, labels, _ in after.samples}
    assert not any(cid in op or psa in op for op in operations)


async def test_exceptions_opened_and_resolved_are_counted_by_queue(
    metered_worker: MeteredWorker, sandbox: httpx.AsyncClient
) -> None:
    client, queue = metered_worker.client, metered_worker.settings.task_queue
    before = await metered_worker.scrape()
    entity = f"Z{uuid.uuid4().hex[:6].upper()}"
    event = approval(legal_entity=entity)
    await start_contract(client, event, task_queue=queue)
    held = await wait_stage(client, event.contract_id, "on_hold")
    [exception] = held.open_exceptions
    abort = ResolveException(exception_id=exception.exception_id, action="abort", operator="ops@x")
    await resolve_exception(client, event.contract_id, abort)
    await wait_stage(client, event.contract_id, "cancelled")

    after = await metered_worker.scrape()
    opened = {"queue": "legal", "system": "erp", "code": "unknown_legal_entity"}
    assert after.value(EXCEPTIONS_OPENED, **opened) - before.value(EXCEPTIONS_OPENED, **opened) == 1
    resolved = {"queue": "legal", "action": "abort"}
    assert (
        after.value(EXCEPTIONS_RESOLVED, **resolved) - before.value(EXCEPTIONS_RESOLVED, **resolved)
        == 1
    )
    # The rejection itself is a connector call with a business outcome.
    assert after.value(CONNECTOR_CALLS, system="erp", outcome="business_error") > before.value(
        CONNECTOR_CALLS, system="erp", outcome="business_error"
    )


def test_the_metrics_port_is_one_runtime_per_address_and_can_be_turned_off() -> None:
    address = f"127.0.0.1:{free_port()}"
    assert metrics_runtime(address) is metrics_runtime(address)
    assert install_worker_metrics("") is None
    assert install_worker_metrics(None) is None
    with pytest.raises(ValueError, match="host:port"):
        metrics_runtime("9464")


def test_a_port_in_use_leaves_the_worker_running_without_metrics() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        host, port = holder.getsockname()
        assert install_worker_metrics(f"{host}:{port}") is None
