"""Container health check for the c2c image: exit 0 when healthy, 1 when not.

    python /opt/c2c/healthcheck.py http://127.0.0.1:8000/healthz   # API or sandbox
    python /opt/c2c/healthcheck.py --worker                        # c2c worker

A URL is healthy when it answers 2xx within the timeout. ``--worker`` is healthy when this
container's worker (identity ``<pid>@<hostname>``, the SDK's default) has polled its workflow
task queue (``C2C_TASK_QUEUE``) recently, as Temporal itself reports: the worker process runs
and reaches Temporal with its own address, namespace and credentials. The slim image has no
curl, so this script stands in for it; it prints one line saying what it found.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import urllib.error
import urllib.request
from datetime import timedelta

#: Seconds one probe may take; the container's health check timeout should be larger.
TIMEOUT_S = 4.0


def check_url(url: str, *, timeout: float = TIMEOUT_S) -> tuple[bool, str]:
    """Whether ``url`` answers a GET with 2xx, and what was seen."""
    # No proxy: the probe targets this container, whatever HTTP(S)_PROXY says.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            return 200 <= response.status < 300, f"{url}: {response.status}"
    except urllib.error.HTTPError as exc:
        return False, f"{url}: {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return False, f"{url}: {exc}"


async def check_worker(*, hostname: str, timeout: float = TIMEOUT_S) -> tuple[bool, str]:
    """Whether a worker on ``hostname`` polls the configured workflow task queue."""
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    from c2c.settings import get_settings
    from c2c.temporal import connect

    settings = get_settings()
    try:
        client = await asyncio.wait_for(connect(settings), timeout)
        described = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=settings.temporal_namespace,
                task_queue=TaskQueue(name=settings.task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            ),
            timeout=timedelta(seconds=timeout),
        )
    except Exception as exc:
        return False, f"temporal {settings.temporal_address}: {exc}"
    ours = [p.identity for p in described.pollers if p.identity.endswith(f"@{hostname}")]
    if ours:
        return True, f"worker {ours[0]} polls task queue {settings.task_queue}"
    return False, f"no worker on {hostname} polls task queue {settings.task_queue}"


def main(argv: list[str] | None = None) -> int:
    """Run the check named on the command line; the exit code is the verdict."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("url", nargs="?", help="an HTTP liveness URL")
    target.add_argument("--worker", action="store_true", help="this container's c2c worker")
    args = parser.parse_args(argv)
    if args.worker:
        healthy, seen = asyncio.run(check_worker(hostname=socket.gethostname()))
    else:
        healthy, seen = check_url(args.url)
    print(("healthy: " if healthy else "unhealthy: ") + seen)
    return 0 if healthy else 1


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    # Skip the interpreter's teardown: the Temporal SDK's native runtime can crash in it
    # (temporalio/sdk-python#300), which would turn a verdict into 134 or 139.
    os._exit(code)
