"""``c2c worker`` as operators run it: its metrics port comes from
``C2C_WORKER_METRICS_ADDRESS`` and serves the SDK's metrics of its own client and pollers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
from temporalio.client import Client

from c2c.ports import free_port
from c2c.settings import Settings
from tests.telemetry.conftest import parse

C2C = str(Path(sys.executable).parent / "c2c")


def test_c2c_worker_serves_its_metrics_where_configured(
    temporal_client: Client, settings: Settings, tmp_path: Path
) -> None:
    address = f"127.0.0.1:{free_port()}"
    queue = f"c2c-process-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": temporal_client.service_client.config.target_host,
        "C2C_TASK_QUEUE": queue,
        "C2C_STATE_DIR": str(tmp_path),
        "C2C_DATABASE_URL": settings.ledger_url,
        "C2C_SANDBOX_URL": settings.sandbox_url,
        "C2C_WORKER_METRICS_ADDRESS": address,
        "C2C_LOG_FORMAT": "json",
    }
    # Its own directory, so no .env of the checkout applies; its log lines go to standard error.
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT}
    worker = subprocess.Popen([C2C, "worker"], env=env, cwd=tmp_path, text=True, **pipes)
    try:
        samples = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and worker.poll() is None:
            try:
                samples = parse(httpx.get(f"http://{address}/metrics", timeout=2).text)
            except httpx.HTTPError:
                samples = None
            if samples and samples.value("temporal_num_pollers", task_queue=queue) > 0:
                break
            time.sleep(0.2)
        assert samples is not None, "the worker never served its metrics port"
        assert samples.value("temporal_num_pollers", task_queue=queue) > 0
        assert samples.value("temporal_worker_start_total", task_queue=queue) == 1
    finally:
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=60)
    assert f'"url": "http://{address}/metrics"' in output, output
