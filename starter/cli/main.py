"""``c2c``: one command for every component and operation (also ``python -m starter.cli``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import typer

from c2c.logs import configure_logging
from c2c.loops import EventLoop, EventLoopUnavailable, loop_factory
from c2c.settings import get_settings
from ledger.cli import ledger_app

# docusign_webhook and stripe_webhook register their processors, which `c2c ops replay
# docusign` and `c2c ops replay stripe` run.
from starter.api import documents, docusign_webhook, invoice_documents, stripe_webhook  # noqa: F401
from starter.cli.books import books_app, reconcile
from starter.cli.customer_billing import customer, customers
from starter.cli.events import events_app, subscriptions_app
from starter.cli.kpis import kpis
from starter.cli.ops import billing_app, contracts_app, fail, ops_app
from starter.cli.schedules import schedule_app
from starter.stack.components import HOST, UpOptions
from starter.stack.demo_setup import DEFAULT_UI_URL

app = typer.Typer(
    help="c2c: contract-to-cash orchestration on Temporal.",
    no_args_is_help=True,
    add_completion=False,
    # Locals in a traceback could include secrets from the settings.
    pretty_exceptions_show_locals=False,
)
contracts_app.command("document")(documents.document)
contracts_app.command("invoice-pdf")(invoice_documents.invoice_pdf)
contracts_app.command("invoice-einvoice")(invoice_documents.invoice_einvoice_command)
ops_app.command("reconcile")(reconcile)
ops_app.add_typer(subscriptions_app, name="subscriptions")
ops_app.add_typer(events_app, name="events")
app.add_typer(contracts_app, name="contracts")
app.add_typer(billing_app, name="billing")
billing_app.add_typer(schedule_app, name="schedule")
billing_app.command("customers")(customers)
billing_app.command("customer")(customer)
app.add_typer(ops_app, name="ops")
app.add_typer(ledger_app, name="ledger")
app.add_typer(books_app, name="books")
app.command()(kpis)

#: The defaults of ``c2c up``.
_UP = UpOptions()


@app.command()
def up(
    state_dir: Path = typer.Option(
        _UP.state_dir,
        envvar="C2C_STATE_DIR",
        help="where Temporal, the ledger and the sandbox keep state",
    ),
    temporal_port: int = typer.Option(
        _UP.temporal_port, envvar="C2C_TEMPORAL_PORT", help="Temporal gRPC port"
    ),
    ui_port: int = typer.Option(
        _UP.ui_port, envvar="C2C_TEMPORAL_UI_PORT", help="Temporal UI port"
    ),
    sandbox_port: int = typer.Option(
        _UP.sandbox_port, envvar="C2C_SANDBOX_PORT", help="sandbox port"
    ),
    api_port: int = typer.Option(_UP.api_port, envvar="C2C_API_PORT", help="API port"),
    worker_metrics_port: int | None = typer.Option(
        None,
        envvar="C2C_WORKER_METRICS_PORT",
        help="the worker's Prometheus port (default: C2C_WORKER_METRICS_ADDRESS, 9464); 0: off",
    ),
    port_offset: int = typer.Option(
        0,
        envvar="C2C_PORT_OFFSET",
        help="add this to every port, for a second stack beside the first (e.g. 10000)",
    ),
    no_ui: bool = typer.Option(False, "--no-ui", help="do not serve the Temporal UI"),
) -> None:
    """Run everything on this machine: Temporal, sandbox, worker, API. Ctrl-C stops it all."""
    from starter.stack.up import run_up

    configure_logging("up")
    options = UpOptions(
        state_dir=state_dir,
        temporal_port=temporal_port,
        ui_port=ui_port,
        sandbox_port=sandbox_port,
        api_port=api_port,
        worker_metrics_port=worker_metrics_port,
        ui=not no_ui,
    ).shifted(port_offset)
    raise typer.Exit(run_up(options))


def run_until_signalled(main: Coroutine[Any, Any, None], *, loop: EventLoop = "auto") -> None:
    """Run ``main`` on the event loop ``loop`` names until it ends or SIGINT/SIGTERM cancels it
    (a graceful shutdown)."""

    async def supervised() -> None:
        task = asyncio.ensure_future(main)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    try:
        factory = loop_factory(loop)
    except EventLoopUnavailable:
        main.close()
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(supervised())


@app.command()
def worker(
    queues: str = typer.Option(
        "",
        help="only these queues, comma-separated: workflows and/or erp, psa, crm "
        "(default: all, or C2C_WORKER_QUEUES)",
    ),
) -> None:
    """Run the worker: polls the task queues and runs contract workflows and activities."""
    import worker as worker_module
    from c2c.settings import parse_queues

    configure_logging("worker")
    try:
        loop = get_settings().event_loop
        run_until_signalled(worker_module.run_worker(queues=parse_queues(queues)), loop=loop)
    except Exception as exc:
        fail(f"c2c worker: {exc}")


@app.command()
def api(
    host: str = typer.Option(HOST, help="interface to listen on"),
    port: int = typer.Option(_UP.api_port, help="port to listen on"),
) -> None:
    """Run the HTTP API (webhooks, contracts, billing, exception queue)."""
    from ledger import LedgerError
    from starter.api.app import run

    try:
        run(host, port)
    except (ValueError, LedgerError) as exc:  # a malformed setting, a ledger to upgrade
        fail(f"c2c api: {exc}")


@app.command()
def sandbox(
    host: str = typer.Option(HOST, help="interface to listen on"),
    port: int = typer.Option(_UP.sandbox_port, help="port to listen on"),
) -> None:
    """Run the sandbox: local stand-ins for the CRM, ERP, PSA, tax engine and gateway."""
    from sandbox.app import run

    try:
        run(host, port)
    except ValueError as exc:  # a malformed setting, e.g. C2C_EVENT_LOOP
        fail(f"c2c sandbox: {exc}")


@app.command()
def demo(
    timeout: float = typer.Option(60.0, help="seconds to wait for each step"),
    temporal_ui_url: str = typer.Option(
        DEFAULT_UI_URL, envvar="C2C_TEMPORAL_UI_URL", help="for links to the workflow"
    ),
) -> None:
    """Against a running stack: approve a contract, enter time, close the period, pay."""
    from starter.stack.demo import run_demo
    from starter.stack.demo_setup import DemoConfig, DemoFailed

    configure_logging("demo")
    try:
        config = DemoConfig.from_settings(get_settings(), ui_url=temporal_ui_url, timeout_s=timeout)
    except DemoFailed as exc:
        fail(f"c2c demo: {exc}")
    raise typer.Exit(run_demo(config))


def main(args: list[str] | None = None) -> None:
    """The ``c2c`` console script; ``args`` instead of the command line when given."""
    try:
        app(args=args)
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc)
    sys.stdout.flush()
    sys.stderr.flush()
    # Every command has finished its own cleanup by now. Skipping the interpreter's teardown
    # matters: the Temporal SDK's native runtime can crash in it (temporalio/sdk-python#300),
    # which would turn a clean exit into 134 or 139.
    os._exit(code)


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None or isinstance(exc.code, int):
        return exc.code or 0
    print(exc.code, file=sys.stderr)
    return 1


if __name__ == "__main__":
    main()
