"""``c2c ledger``: the ledger's schema revision, and upgrading it (``ledger.migrate``).

Both commands open the ledger that ``C2C_DATABASE_URL`` names, or ``ledger.db`` in
``C2C_STATE_DIR``, as every other c2c command does.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NoReturn

import typer

if TYPE_CHECKING:
    from sqlalchemy import Engine

ledger_app = typer.Typer(
    help="The ledger's schema: its revision, and upgrading it to this c2c's.",
    no_args_is_help=True,
)


@ledger_app.command()
def version() -> None:
    """Show the ledger's schema revision and the one this c2c needs (head); changes nothing."""
    from ledger.migrate import schema_state

    with _ledger("version") as engine:
        typer.echo(schema_state(engine).describe())


@ledger_app.command()
def upgrade(
    check: bool = typer.Option(
        False,
        "--check",
        help="only say where the schema stands: exit 1 if it needs an upgrade; changes nothing",
    ),
) -> None:
    """Upgrade the ledger's schema to this c2c's (a new ledger is created there). Back the
    database up first; the upgrade runs in one transaction and changes nothing if it fails."""
    from ledger.migrate import schema_state
    from ledger.migrate import upgrade as upgrade_schema

    with _ledger("upgrade") as engine:
        if check:
            state = schema_state(engine)
            typer.echo(state.describe())
            if not state.known or state.needs_upgrade:
                raise typer.Exit(1)
            return
        before, after = upgrade_schema(engine)
    if before.at_head:
        typer.echo(f"The ledger at {after.database} is already at revision {after.head}.")
    elif before.empty:
        typer.echo(f"Created the ledger at {after.database} at revision {after.current}.")
    else:
        was = "none" if before.current is None else before.current
        typer.echo(f"Upgraded the ledger at {after.database}: revision {was} -> {after.current}.")


@contextmanager
def _ledger(command: str) -> Iterator[Engine]:
    """An engine for the configured ledger, disposed of after; what goes wrong is one line
    naming the problem (a malformed setting, an unreachable database, a schema refused)."""
    from sqlalchemy.exc import SQLAlchemyError

    from c2c.settings import get_settings
    from ledger.errors import LedgerError
    from ledger.migrate import engine_for

    try:
        engine = engine_for(get_settings().ledger_url)
    except ValueError as exc:  # a malformed setting, or a database other than the two
        _fail(command, str(exc))
    try:
        yield engine
    except LedgerError as exc:
        _fail(command, str(exc))
    except SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        _fail(command, f"the ledger's database answered {type(exc).__name__}: {cause}")
    finally:
        engine.dispose()


def _fail(command: str, message: str) -> NoReturn:
    typer.echo(f"c2c ledger {command}: {message}", err=True)
    raise typer.Exit(1)
