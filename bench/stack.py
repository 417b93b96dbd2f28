"""A private c2c stack for one benchmark run, started as ``c2c up`` starts it.

Every component is its own process (a client and a worker in one process may crash at exit,
temporalio/sdk-python#300): the Temporal dev server from the venv's ``temporal`` binary on free
loopback ports with a temporary SQLite file in WAL mode and c2c's search attributes, the sandbox
on a temporary SQLite file, ``c2c worker``, ``c2c api`` with a webhook secret, a second
``c2c api`` with the event queue on (``queued_api``, ``C2C_WEBHOOK_QUEUE``) for the webhook
benchmark, the baseline worker (``bench.baseline_worker``) and the reference's worker
(``bench.reference_worker``) on the same server. Their output
goes to ``stack.log`` in the run's directory, so a failed run can be read afterwards.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import sys
import time
from collections.abc import Callable, Collection
from pathlib import Path
from types import TracebackType
from typing import TextIO

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from bench.baseline_worker import BASELINE_TASK_QUEUE
from bench.reference import REFERENCE_TASK_QUEUE
from c2c.ports import free_port
from c2c.settings import Settings
from c2c.temporal import connect
from domain.names import DEFAULT_TASK_QUEUE
from starter.stack.components import (
    HOST,
    StartupFailed,
    UpOptions,
    child_env,
    component_argv,
    http_ready,
    temporal_argv,
    temporal_ready,
)
from starter.stack.supervisor import Child, Supervisor

#: The components a stack can run beside the Temporal server.
COMPONENTS = ("sandbox", "worker", "api", "queued_api", "baseline", "reference", "bare")
STARTUP_TIMEOUT_S = 120.0
#: Long enough for a profiled worker to write its profile after SIGTERM.
STOP_GRACE_S = 60.0


class BenchStack:
    """The processes of one benchmark run; a context manager that stops them all on exit.

    Args:
        workdir: Where the Temporal database, the sandbox's and ledger's SQLite files and
            ``stack.log`` go (a fresh directory per run).
        components: Which of ``COMPONENTS`` to run beside the Temporal server.
        env: Extra environment for every component (e.g. ``C2C_LOG_LEVEL``).
        base_port: Listen on this port and the next ones (Temporal, its UI, the sandbox, the
            API, the queued API, the bare endpoint, the worker's metrics) instead of free
            ports picked at random: a long run keeps out of the range tests pick from.
        api_queue: Run ``api`` with the event queue on, as c2c runs by default (else it
            processes each webhook while its sender waits).
    """

    def __init__(
        self,
        workdir: Path,
        *,
        components: Collection[str] = ("sandbox", "worker", "api", "baseline"),
        env: dict[str, str] | None = None,
        base_port: int | None = None,
        api_queue: bool = False,
    ) -> None:
        unknown = set(components) - set(COMPONENTS)
        if unknown:
            raise ValueError(f"unknown components {sorted(unknown)}; known: {COMPONENTS}")
        self.workdir = workdir.resolve()
        self.components = tuple(c for c in COMPONENTS if c in components)
        ports = iter(_ports(base_port))
        self.options = UpOptions(
            state_dir=self.workdir,
            temporal_port=next(ports),
            ui_port=next(ports),
            sandbox_port=next(ports),
            api_port=next(ports),
            ui=False,
        )
        self.queued_api_port = next(ports)
        self.bare_port = next(ports)
        metrics_port = next(ports)
        self.api_queue = api_queue
        self.webhook_secret = secrets.token_hex(24)
        self.env = {
            **child_env(self.options, self.workdir, self.webhook_secret),
            "C2C_TASK_QUEUE": DEFAULT_TASK_QUEUE,
            # The worker's own metrics port: stacks running side by side do not compete for
            # the default one (the one that loses runs without metrics).
            "C2C_WORKER_METRICS_ADDRESS": f"{HOST}:{metrics_port}",
            **(env or {}),
        }
        self._log: TextIO | None = None
        self.supervisor: Supervisor | None = None
        self.children: dict[str, Child] = {}

    # ------------------------------------------------------------------ addresses

    @property
    def temporal_address(self) -> str:
        return self.options.temporal_address

    @property
    def sandbox_url(self) -> str:
        return self.options.sandbox_url

    @property
    def api_url(self) -> str:
        return self.options.api_url

    @property
    def queued_api_url(self) -> str:
        return f"http://{HOST}:{self.queued_api_port}"

    @property
    def bare_url(self) -> str:
        return f"http://{HOST}:{self.bare_port}"

    def settings(self) -> Settings:
        """Settings pointing at this stack, for the benchmark's own clients."""
        return Settings(
            _env_file=None,
            temporal_address=self.temporal_address,
            sandbox_url=self.sandbox_url,
            api_url=self.api_url,
            state_dir=self.workdir,
            webhook_secret=self.webhook_secret,
        )

    async def client(self) -> Client:
        """A Temporal client (pydantic data converter, as every c2c component uses)."""
        return await connect(self.settings())

    async def ready_client(self) -> Client:
        """A client, once the workers that this stack runs poll their task queues."""
        client = await self.client()
        await self.wait_for_pollers(client)
        return client

    def pid(self, component: str) -> int:
        """The process id of a component (``temporal`` for the dev server)."""
        return self.children[component].pid

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> BenchStack:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log = (self.workdir / "stack.log").open("w", encoding="utf-8")
        self.supervisor = Supervisor(out=self._log)
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop every component, the last started first."""
        if self.supervisor is not None:
            self.supervisor.stop_all(grace_s=STOP_GRACE_S)
            self.supervisor = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def _start(self) -> None:
        sup = self.supervisor
        assert sup is not None
        self.children["temporal"] = sup.start(
            "temporal", temporal_argv(self.options, self.workdir), self.env
        )
        self._wait("Temporal", lambda: temporal_ready(self.options))
        listen = ("--host", HOST, "--port")
        argv = {
            "sandbox": component_argv("sandbox", *listen, str(self.options.sandbox_port)),
            "worker": component_argv("worker"),
            "api": component_argv("api", *listen, str(self.options.api_port)),
            "queued_api": component_argv("api", *listen, str(self.queued_api_port)),
            "baseline": [sys.executable, "-m", "bench.baseline_worker"],
            "reference": [sys.executable, "-m", "bench.reference_worker"],
            "bare": [sys.executable, "-m", "bench.bare_endpoint", "--port", str(self.bare_port)],
        }
        envs = {
            # The inline API processes each webhook while its sender waits, as it did before
            # the queue became the default: the two are compared in the same rounds.
            "api": {**self.env, "C2C_WEBHOOK_QUEUE": "true" if self.api_queue else "false"},
            "queued_api": {**self.env, "C2C_WEBHOOK_QUEUE": "true"},
        }
        for name in self.components:
            self.children[name] = sup.start(name, argv[name], envs.get(name, self.env))
        ready = {
            "sandbox": http_ready(f"{self.sandbox_url}/_admin/stats"),
            "api": http_ready(f"{self.api_url}/healthz"),
            "queued_api": http_ready(f"{self.queued_api_url}/healthz"),
            "bare": http_ready(f"{self.bare_url}/healthz"),
        }
        for name, check in ready.items():
            if name in self.components:
                self._wait(name, check)

    def _wait(self, what: str, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not ready():
            assert self.supervisor is not None
            dead = self.supervisor.first_exited()
            if dead is not None:
                raise StartupFailed(
                    f"{dead.name} exited with code {dead.exit_code()} while waiting for {what}; "
                    f"see {self.workdir / 'stack.log'}"
                )
            if time.monotonic() > deadline:
                raise StartupFailed(f"{what} did not answer within {STARTUP_TIMEOUT_S:.0f} s")
            time.sleep(0.2)

    def check_alive(self) -> None:
        """Raise if a component has died (a benchmark must not measure a broken stack)."""
        assert self.supervisor is not None
        dead = self.supervisor.first_exited()
        if dead is not None:
            raise StartupFailed(
                f"{dead.name} exited with code {dead.exit_code()}; see {self.workdir / 'stack.log'}"
            )

    async def wait_for_pollers(self, client: Client) -> None:
        """Wait until the c2c worker and the baseline worker (those running) poll their queues.

        Otherwise the first measured workflow would also time the worker's start.
        """
        queues = [
            queue
            for component, queue in (
                ("worker", DEFAULT_TASK_QUEUE),
                ("baseline", BASELINE_TASK_QUEUE),
                ("reference", REFERENCE_TASK_QUEUE),
            )
            if component in self.components
        ]
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        for queue in queues:
            while True:
                self.check_alive()
                described = await client.workflow_service.describe_task_queue(
                    DescribeTaskQueueRequest(
                        namespace=client.namespace,
                        task_queue=TaskQueue(name=queue),
                        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
                    )
                )
                if described.pollers:
                    break
                if time.monotonic() > deadline:
                    raise StartupFailed(f"no worker polls task queue {queue}")
                await asyncio.sleep(0.2)


#: How many ports a stack listens on (``BenchStack``'s ``base_port`` and the next ones).
PORTS = 7


def _ports(base_port: int | None) -> list[int]:
    """The stack's ports: free ones, or ``base_port`` and the next ones, each checked free."""
    if base_port is None:
        return [free_port(HOST) for _ in range(PORTS)]
    ports = list(range(base_port, base_port + PORTS))
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            # As the servers bind: connections of a stack that just stopped do not count.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((HOST, port))
            except OSError as exc:
                raise StartupFailed(f"port {port} is in use; choose another base port") from exc
    return ports
