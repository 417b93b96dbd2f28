"""``c2c up``: the whole stack on one machine, embedded, until Ctrl-C.

Starts a Temporal dev server (state in the state directory, search attributes registered),
then the sandbox, the worker and the API as child processes of this one, waits until each
answers, makes sure the nightly reconciliation with the ERP is scheduled, and prints where to
find them. Ctrl-C or SIGTERM stops them all, the last started
first; so does a child that dies, after saying which one.

Secrets (the webhook secret, API tokens, the encryption key, Temporal credentials) reach the
children only through their environment, never on a command line that ``ps`` shows. With
``C2C_ENCRYPTION_KEY`` set, the Temporal UI is pointed at the API's codec server, so it shows
decrypted payloads while the server stores only ciphertext.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType

from c2c.codec import EncryptionCodec
from c2c.settings import Settings, get_settings
from c2c.temporal import converter_for
from ledger.errors import LedgerError
from starter.api.codec import CODEC_PATH
from starter.api.state import read_or_create_webhook_secret
from starter.stack.components import (
    HOST,
    StartupFailed,
    UpOptions,
    banner,
    child_env,
    component_argv,
    http_ready,
    temporal_argv,
    temporal_ready,
)
from starter.stack.supervisor import Supervisor

#: How long the Temporal server, and then each other component, may take to start.
STARTUP_TIMEOUT_S = 90.0
_POLL_S = 0.25
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(Exception):
    """Ctrl-C or SIGTERM while starting."""


class Stack:
    """The processes of one ``c2c up``."""

    def __init__(
        self,
        options: UpOptions,
        supervisor: Supervisor | None = None,
        *,
        settings: Settings | None = None,
    ) -> None:
        self.options = options
        #: The configuration ``c2c up`` was started with (its environment and ``.env``).
        self.settings = settings or get_settings()
        self.state_dir = options.state_dir.resolve()
        self.supervisor = supervisor or Supervisor()
        self.stop_requested = threading.Event()
        #: What ``c2c up`` says about payload encryption once everything answers, if it is on.
        self.encryption_note = ""

    def run(self) -> int:
        """Start everything, wait for Ctrl-C, stop everything; the process's exit code."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in _STOP_SIGNALS}
        try:
            self._start()
            metrics = self.worker_metrics
            self.supervisor.say(
                banner(
                    self.options,
                    self.state_dir,
                    worker_metrics=metrics,
                    serving=not metrics or self._answers(f"http://{metrics}/metrics"),
                )
            )
            if self.encryption_note:
                self.supervisor.say(self.encryption_note)
            return self._watch()
        except Interrupted:
            return 0
        except StartupFailed as exc:
            self.supervisor.say(f"c2c up: {exc}")
            return 1
        finally:
            self.supervisor.stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.supervisor.say("c2c stopped.")

    def _on_signal(self, signum: int, _: FrameType | None) -> None:
        if not self.stop_requested.is_set():
            self.supervisor.say(f"{signal.Signals(signum).name} received: stopping c2c")
        self.stop_requested.set()

    def _start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._prepare_ledger()
        secret = os.environ.get("C2C_WEBHOOK_SECRET") or read_or_create_webhook_secret(
            self.state_dir
        )
        env = child_env(self.options, self.state_dir, secret, worker_metrics=self.worker_metrics)
        opts, sup = self.options, self.supervisor
        sup.start("temporal", self.temporal_command(env), env)
        self._wait("Temporal", lambda: temporal_ready(opts))
        listen = ("--host", HOST, "--port")
        sup.start("sandbox", component_argv("sandbox", *listen, str(opts.sandbox_port)), env)
        sup.start("worker", component_argv("worker"), env)
        sup.start("api", component_argv("api", *listen, str(opts.api_port)), env)
        self._wait("the sandbox", http_ready(f"{opts.sandbox_url}/_admin/stats"))
        self._wait("the API", http_ready(f"{opts.api_url}/healthz"))
        self._schedule_reconciliation()

    def _schedule_reconciliation(self) -> None:
        """The nightly reconciliation of the ledger with the ERP, as a Temporal Schedule (kept
        as it is when it exists: an operator may have paused or changed it), and each legal
        entity's billing run on its billing day (``C2C_BILLING_SCHEDULES``)."""
        from c2c.temporal import connect
        from starter.stack.schedules import ensure_billing_schedules, ensure_nightly_schedule

        settings = self.settings.model_copy(
            update={
                "temporal_address": self.options.temporal_address,
                "temporal_namespace": self.options.namespace,
            }
        )

        async def ensure() -> None:
            client = await connect(settings)
            await ensure_nightly_schedule(client, task_queue=settings.task_queue)
            await ensure_billing_schedules(client, settings, task_queue=settings.task_queue)

        asyncio.run(ensure())

    @property
    def worker_metrics(self) -> str:
        """The worker's metrics ``host:port`` in this stack; ``""`` when they are off."""
        return self.options.worker_metrics_address(self.settings.worker_metrics_address)

    def _answers(self, url: str) -> bool:
        """Whether ``url`` answers within a few seconds (the worker starts its metrics server
        moments after it starts)."""
        check = http_ready(url)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if check():
                return True
            time.sleep(0.25)
        return False

    def _prepare_ledger(self) -> None:
        """Before anything starts: create the ledger, or find it current (or upgrade it when
        ``C2C_LEDGER_AUTO_UPGRADE`` is on), so the worker and the API find it ready."""
        from ledger.migrate import prepare_url

        ledger_url = self.settings.model_copy(update={"state_dir": self.state_dir}).ledger_url
        try:
            prepare_url(ledger_url, auto_upgrade=self.settings.ledger_auto_upgrade)
        except LedgerError as exc:
            raise StartupFailed(str(exc)) from None

    def temporal_command(self, env: dict[str, str]) -> list[str]:
        """The dev server's command line; with encryption on, its UI decodes through the API.

        Also lets the UI's origin call the codec (added to ``env`` for the API), since the
        UI's port may not be the default one.

        Raises:
            StartupFailed: ``C2C_ENCRYPTION_KEY`` is malformed (checked before anything starts).
        """
        argv = temporal_argv(self.options, self.state_dir)
        settings = self.settings
        try:
            codec = converter_for(settings).payload_codec
        except ValueError as exc:
            raise StartupFailed(str(exc)) from None
        if not isinstance(codec, EncryptionCodec):
            return argv
        self.encryption_note = f"Payloads are encrypted in Temporal (key id {codec.key_ids[0]})."
        if self.options.ui:
            # Only a URL: the UI holds no key; it asks the API, which checks the caller.
            endpoint = f"{self.options.api_url}{CODEC_PATH}"
            argv += ["--ui-codec-endpoint", endpoint]
            self.encryption_note += f" The Temporal UI decrypts them through {endpoint}."
            origins = dict.fromkeys([*settings.codec_cors_origins, *_ui_origins(self.options)])
            env["C2C_CODEC_CORS_ORIGINS"] = ",".join(origins)
        return argv

    def _wait(self, what: str, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not ready():
            self._check_children(f"while waiting for {what}")
            if time.monotonic() > deadline:
                raise StartupFailed(f"{what} did not answer within {STARTUP_TIMEOUT_S:.0f} s")
            if self.stop_requested.wait(_POLL_S):
                raise Interrupted

    def _check_children(self, when: str) -> None:
        dead = self.supervisor.first_exited()
        if dead is not None:
            raise StartupFailed(f"{dead.name} exited with code {dead.exit_code()} {when}")

    def _watch(self) -> int:
        while not self.stop_requested.wait(_POLL_S):
            try:
                self._check_children("unexpectedly; stopping the rest")
            except StartupFailed as exc:
                self.supervisor.say(f"c2c up: {exc}")
                return 1
        return 0


def _ui_origins(options: UpOptions) -> list[str]:
    """The origins a browser on this machine may load the Temporal UI from."""
    return [f"http://localhost:{options.ui_port}", f"http://{HOST}:{options.ui_port}"]


def run_up(options: UpOptions) -> int:
    """Run the stack until interrupted; returns the exit code (0 after Ctrl-C)."""
    return Stack(options).run()
