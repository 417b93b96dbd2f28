"""``c2c ledger``: the ledger's schema revision, and upgrading it (``ledger.migrate``).

Both commands open the ledger that ``C2C_DATABASE_URL`` names, or ``ledger.db`` in
``C2C_STATE_DIR``, as every other c2c command does.
"""

from __future__ import annotations

from typing import NoReturn

import typer

ledger_app = typer.Typer(
    help="The ledger's schema: its revision, and upgrading it to this c2c's.",
    no_args_is_help=True,
)


@ledger_app.command()
def version() -> None:
    """Show the ledger's schema revision and the one this c2c needs (head); changes nothing."""
    from ledger.migrate import engine_for, schema_state

    engine = engine_for(_ledger_url("version"))
    try:
        typer.echo(schema_state(engine).describe())
    finally:
        engine.dispose()


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
    from ledger.errors import LedgerError
    from ledger.migrate import engine_for, schema_state
    from ledger.migrate import upgrade as upgrade_schema

    engine = engine_for(_ledger_url("upgrade"))
    try:
        if check:
            state = schema_state(engine)
            typer.echo(state.describe())
            if not state.known or state.needs_upgrade:
                raise typer.Exit(1)
            return
        before, after = upgrade_schema(engine)
    except LedgerError as exc:
        _fail("upgrade", str(exc))
    finally:
        engine.dispose()
    if before.at_head:
        typer.echo(f"The ledger at {after.database} is already at revision {after.head}.")
    elif before.empty:
        typer.echo(f"Created the ledger at {after.database} at revision {after.current}.")
    else:
        was = "none" if before.current is None else before.current
        typer.echo(f"Upgraded the ledger at {after.database}: revision {was} -> {after.current}.")


def _ledger_url(command: str) -> str:
    from c2c.settings import get_settings

    try:
        return get_settings().ledger_url
    except ValueError as exc:  # a malformed setting
        _fail(command, str(exc))


def _fail(command: str, message: str) -> NoReturn:
    typer.echo(f"c2c ledger {command}: {message}", err=True)
    raise typer.Exit(1)
