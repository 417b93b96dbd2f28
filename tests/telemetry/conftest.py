"""A worker whose Temporal runtime serves Prometheus on its own port, and a scraper for it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client

from c2c.ports import free_port
from c2c.settings import Settings
from c2c.telemetry import metrics_runtime
from worker import contract_worker


@dataclass(frozen=True)
class Samples:
    """One scrape: every sample by name, with its labels."""

    samples: list[tuple[str, dict[str, str], float]]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples of ``name`` whose labels include ``labels`` (0 if none)."""
        return sum(
            value
            for sample, found, value in self.samples
            if sample == name and labels.items() <= found.items()
        )

    def names(self) -> set[str]:
        return {name for name, _, _ in self.samples}


def parse(text: str) -> Samples:
    """Parse a Prometheus text exposition."""
    return Samples(
        [
            (sample.name, dict(sample.labels), sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        ]
    )


@dataclass(frozen=True)
class MeteredWorker:
    """A running worker with its metrics URL, client and settings."""

    client: Client
    settings: Settings
    metrics_url: str

    async def scrape(self) -> Samples:
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.get(self.metrics_url)
        assert response.status_code == 200, response.text
        return parse(response.text)


@pytest_asyncio.fixture(scope="session")
async def metered_worker(
    temporal_client: Client, settings: Settings
) -> AsyncIterator[MeteredWorker]:
    """A worker on its own task queue whose client runs on a Prometheus-exporting runtime."""
    address = f"127.0.0.1:{free_port()}"
    client = await Client.connect(
        temporal_client.service_client.config.target_host,
        namespace=temporal_client.namespace,
        data_converter=temporal_client.data_converter,
        runtime=metrics_runtime(address),
    )
    own = settings.model_copy(update={"task_queue": f"c2c-metrics-{uuid.uuid4().hex[:8]}"})
    async with contract_worker(client, own):
        yield MeteredWorker(client, own, f"http://{address}/metrics")
