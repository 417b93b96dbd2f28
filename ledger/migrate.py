"""The ledger's schema revisions: which one a database is at, and upgrading it to the head.

The revisions are Alembic's, in ``ledger/migrations/versions``; no ``alembic.ini`` is needed.
Every process that opens the ledger (``Ledger.create_all``, through ``get_ledger``) checks
its revision first:

- an empty database is created at the head revision;
- a database at the head revision is used as it is;
- an older one is upgraded only when asked (``c2c ledger upgrade``, or
  ``C2C_LEDGER_AUTO_UPGRADE=true`` at start); otherwise the process refuses to start with
  ``SchemaNotCurrent``, naming the command to run;
- a ledger made before revisions existed (c2c 0.8.0 and earlier: its tables, no
  ``alembic_version``) counts as older: an upgrade first checks its tables against 0.8.0's
  (``ledger.migrations.release_0_8_0``), adds what 0.8.0 itself added at start to a ledger
  made by an earlier version (missing tables, nullable columns and indexes), and stamps it
  at the first revision;
- a revision this c2c does not know (a newer c2c made it) is refused, changing nothing.

Each check and upgrade runs in one transaction, holding a lock (``BEGIN IMMEDIATE`` on
SQLite, an advisory lock on PostgreSQL), so the worker and the API starting together do not
both create or upgrade the same ledger; a failed upgrade leaves the database as it was.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, inspect, text
from sqlalchemy.exc import OperationalError

from c2c.schema import create_missing
from ledger.engine import make_engine
from ledger.errors import LedgerError
from ledger.migrations import release_0_8_0
from ledger.urls import normalise_url

#: Where ``env.py`` and ``versions/`` are: inside the package, so an installed c2c has them.
MIGRATIONS = Path(__file__).with_name("migrations")
#: The first revision: the schema of c2c 0.8.0.
BASELINE = "0001"
#: Alembic's table holding the revision a database is at.
VERSION_TABLE = "alembic_version"
UPGRADE_COMMAND = "c2c ledger upgrade"
AUTO_UPGRADE_SETTING = "C2C_LEDGER_AUTO_UPGRADE"


class SchemaNotCurrent(LedgerError):
    """The ledger's schema is older than this c2c's and was not upgraded."""


class SchemaUnrecognised(LedgerError):
    """The ledger's schema is not one this c2c can upgrade: a revision it does not know, or
    (made before revisions existed) tables that differ from c2c 0.8.0's."""


@dataclass(frozen=True)
class SchemaState:
    """Where a ledger's schema stands."""

    #: The database, without its password.
    database: str
    #: The revision it is at; ``None`` when it has none (empty, or made before revisions).
    current: str | None
    #: The revision this c2c needs.
    head: str
    #: Whether any of the ledger's tables exist.
    has_tables: bool
    #: Whether ``current`` is a revision this c2c knows (``True`` when there is none).
    known: bool

    @property
    def empty(self) -> bool:
        """No ledger here yet: starting creates it at the head revision."""
        return self.current is None and not self.has_tables

    @property
    def before_revisions(self) -> bool:
        """Made by c2c 0.8.0 or earlier, before the schema had revisions."""
        return self.current is None and self.has_tables

    @property
    def at_head(self) -> bool:
        return self.current == self.head

    @property
    def needs_upgrade(self) -> bool:
        return self.known and not self.empty and not self.at_head

    def describe(self) -> str:
        """Lines for ``c2c ledger version``."""
        if self.empty:
            current = "none (no ledger yet: it is created at the head revision on first use)"
        elif self.before_revisions:
            current = "none (made before schema revisions: c2c 0.8.0 or earlier)"
        else:
            current = str(self.current)
        if not self.known:
            verdict = "unknown to this c2c (made by a newer version?)"
        elif self.needs_upgrade:
            verdict = f"needs an upgrade: {UPGRADE_COMMAND}"
        else:
            verdict = "up to date"
        return f"ledger:  {self.database}\ncurrent: {current}\nhead:    {self.head}\n{verdict}"

    def refusal(self) -> str:
        """Why a process does not start on this ledger, and what to do."""
        if not self.known:
            return (
                f"the ledger at {self.database} is at schema revision {self.current}, which "
                f"this c2c does not know (its newest is {self.head}): run the c2c that "
                "upgraded it, or restore the backup taken before"
            )
        have = (
            "was made before schema revisions (c2c 0.8.0 or earlier)"
            if self.before_revisions
            else f"is at schema revision {self.current}"
        )
        return (
            f"the ledger at {self.database} {have} and this c2c needs revision {self.head}: "
            f"back it up, then run `{UPGRADE_COMMAND}` with the same C2C_DATABASE_URL or "
            f"C2C_STATE_DIR (or set {AUTO_UPGRADE_SETTING}=true to upgrade when c2c starts)"
        )


def head_revision() -> str:
    """The revision this c2c's models are at."""
    head = _scripts().get_current_head()
    assert head is not None, "the ledger's migrations have no revision"
    return head


def schema_state(engine: Engine) -> SchemaState:
    """Where the ledger on ``engine`` stands; reads only."""
    with engine.connect() as connection:
        return _state(connection)


def prepare(engine: Engine, *, auto_upgrade: bool | None = None) -> SchemaState:
    """Make the ledger on ``engine`` ready for this c2c, as a process does when it starts.

    An empty database is created at the head revision; an older one is upgraded when
    ``auto_upgrade`` (by default ``C2C_LEDGER_AUTO_UPGRADE``) is on.

    Returns:
        Where the schema stood before.

    Raises:
        SchemaNotCurrent: The schema is older and ``auto_upgrade`` is off; nothing changed.
        SchemaUnrecognised: The schema cannot be upgraded by this c2c; nothing changed.
    """
    for attempt in range(_LOCKED_ATTEMPTS):
        try:
            return _prepare(engine, auto_upgrade)
        except OperationalError as exc:
            # SQLite answers "database is locked" at once, without waiting out its busy
            # timeout, to some of several processes opening a new file together (switching it
            # to WAL): the lock holder is done within moments, so look again.
            locked = engine.dialect.name == "sqlite" and "database is locked" in str(exc)
            if not locked or attempt == _LOCKED_ATTEMPTS - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


#: How often a process opening a SQLite ledger another process holds looks again.
_LOCKED_ATTEMPTS = 8


def _prepare(engine: Engine, auto_upgrade: bool | None) -> SchemaState:
    with _locked(engine) as connection:
        state = _state(connection)
        if state.at_head:
            return state
        if not state.known:
            raise SchemaUnrecognised(state.refusal())
        if not state.empty:
            if auto_upgrade is None:
                from c2c.settings import get_settings

                auto_upgrade = get_settings().ledger_auto_upgrade
            if not auto_upgrade:
                raise SchemaNotCurrent(state.refusal())
        _upgrade(connection, state)
        return state


def upgrade(engine: Engine) -> tuple[SchemaState, SchemaState]:
    """Upgrade the ledger on ``engine`` to the head revision (``c2c ledger upgrade``); a new
    database is created there.

    Returns:
        Where the schema stood before, and after.

    Raises:
        SchemaUnrecognised: The schema cannot be upgraded by this c2c; nothing changed.
    """
    with _locked(engine) as connection:
        before = _state(connection)
        if not before.known:
            raise SchemaUnrecognised(before.refusal())
        if not before.at_head:
            _upgrade(connection, before)
        after = _state(connection)
    return before, after


def engine_for(url: str) -> Engine:
    """An engine for the ledger at ``url``, for one check or upgrade; dispose of it after."""
    return make_engine(normalise_url(url))


def prepare_url(url: str, *, auto_upgrade: bool | None = None) -> SchemaState:
    """``prepare`` the ledger at ``url`` with an engine of its own, disposed of after (for a
    process that starts others on the ledger, such as ``c2c up``)."""
    engine = engine_for(url)
    try:
        return prepare(engine, auto_upgrade=auto_upgrade)
    finally:
        engine.dispose()


def differences(connection: Connection, metadata: MetaData) -> list[str]:
    """How the ledger's tables in the database differ from ``metadata`` (Alembic's
    autogenerate comparison), one readable line each; empty when they match."""
    return [_describe(diff) for diff in _diffs(connection, metadata)]


def new_revision(message: str, *, directory: Path | None = None) -> Path:
    """Write the next revision: what the models have that the head revision lacks, found by
    Alembic's autogenerate against a scratch SQLite ledger at the head. Review it before
    committing it (``docs/development.md``, "The ledger's schema").

    Args:
        message: What the revision changes, its docstring and file name.
        directory: Where to write it; ``ledger/migrations/versions`` by default.

    Returns:
        The file written.
    """
    # After the highest id, not the count: ids kept for revisions elsewhere are never reused.
    number = max(int(script.revision) for script in _scripts().walk_revisions()) + 1
    with tempfile.TemporaryDirectory() as scratch:
        engine = engine_for(f"sqlite:///{Path(scratch) / 'ledger.db'}")
        try:
            upgrade(engine)
            with engine.begin() as connection:
                config = _config(connection)
                for option, value in _RUFF_HOOKS.items():
                    config.set_section_option("post_write_hooks", option, value)
                if directory is not None:
                    versions = os.pathsep.join([str(MIGRATIONS / "versions"), str(directory)])
                    config.set_main_option("version_locations", versions)
                script = command.revision(
                    config,
                    message,
                    autogenerate=True,
                    rev_id=f"{number:04d}",
                    version_path=None if directory is None else str(directory),
                )
        finally:
            engine.dispose()
    assert script is not None and not isinstance(script, list)
    return Path(script.path)


#: A new revision is written as ruff would have it (``ruff`` is in the dev extra).
_RUFF_HOOKS = {
    "hooks": "fix, format",
    "fix.type": "module",
    "fix.module": "ruff",
    "fix.options": "check --fix --quiet REVISION_SCRIPT_FILENAME",
    "format.type": "module",
    "format.module": "ruff",
    "format.options": "format --quiet REVISION_SCRIPT_FILENAME",
}


def _upgrade(connection: Connection, state: SchemaState) -> None:
    config = _config(connection)
    if state.before_revisions:
        _adopt(connection)
        command.stamp(config, BASELINE)
    command.upgrade(config, "head")


def _adopt(connection: Connection) -> None:
    """Bring a ledger made before revisions to c2c 0.8.0's schema, as 0.8.0 did at start.

    Raises:
        SchemaUnrecognised: Its tables differ from 0.8.0's in a way 0.8.0 did not repair.
    """
    metadata = release_0_8_0.metadata
    diffs = _diffs(connection, metadata)
    blocking = [diff for diff in diffs if not _repairable(diff)]
    if blocking:
        raise SchemaUnrecognised(_mismatch(connection, blocking))
    if diffs:
        create_missing(metadata, connection)
        left = _diffs(connection, metadata)
        if left:
            raise SchemaUnrecognised(_mismatch(connection, left))


def _mismatch(connection: Connection, diffs: Sequence[Any]) -> str:
    where = _display(connection.engine.url.render_as_string(hide_password=True))
    lines = "; ".join(_describe(diff) for diff in diffs)
    return (
        f"the ledger at {where} has no schema revision and its tables are not those of "
        f"c2c 0.8.0, so it cannot be upgraded (nothing was changed): {lines}"
    )


def _repairable(diff: Any) -> bool:
    """What c2c 0.8.0's ``create_missing`` added at start: tables, nullable columns, indexes."""
    if isinstance(diff, list) or not diff:
        return False
    kind = diff[0]
    if kind in ("add_table", "add_index"):
        return True
    return kind == "add_column" and bool(diff[3].nullable)


def _diffs(connection: Connection, metadata: MetaData) -> list[Any]:
    names = set(metadata.tables)
    context = MigrationContext.configure(
        connection,
        opts={
            "compare_type": True,
            "include_name": lambda name, kind, _parent: kind != "table" or name in names,
        },
    )
    return list(compare_metadata(context, metadata))


def _describe(diff: Any) -> str:
    if isinstance(diff, list):
        return "; ".join(_describe(part) for part in diff)
    kind = diff[0]
    if kind in ("add_table", "remove_table"):
        return f"{_verb(kind)} table {diff[1].name}"
    if kind in ("add_column", "remove_column"):
        return f"{_verb(kind)} column {diff[2]}.{diff[3].name}"
    if kind in ("add_index", "remove_index", "add_constraint", "remove_constraint"):
        item = diff[1]
        what = "index" if kind.endswith("index") else "constraint"
        columns = ", ".join(column.name for column in item.columns)
        return f"{_verb(kind)} {what} {item.name or ''} on {item.table.name} ({columns})"
    if kind.startswith("modify_"):
        _, _schema, table, column, _info, old, new = diff
        return f"column {table}.{column}: {kind[7:]} is {old!r} in the database, {new!r} wanted"
    return str(diff)


def _verb(kind: str) -> str:
    return "missing" if kind.startswith("add_") else "unexpected"


def _state(connection: Connection) -> SchemaState:
    current = MigrationContext.configure(connection).get_current_revision()
    present = set(inspect(connection).get_table_names())
    scripts = _scripts()
    known = current is None or current in {script.revision for script in scripts.walk_revisions()}
    return SchemaState(
        database=_display(connection.engine.url.render_as_string(hide_password=True)),
        current=current,
        head=head_revision(),
        has_tables=bool(present & set(release_0_8_0.metadata.tables)),
        known=known,
    )


def _display(url: str) -> str:
    return url.replace("sqlite+pysqlite:", "sqlite:").replace("postgresql+psycopg:", "postgresql:")


@contextmanager
def _locked(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that holds the ledger's migration lock; committed when
    the block succeeds, rolled back when it raises.

    SQLite: ``BEGIN IMMEDIATE`` takes the write lock at once (another writer waits for it),
    and the driver is told to leave transactions to us, so DDL is inside the transaction too.
    PostgreSQL: a transaction-scoped advisory lock per schema, and its DDL is transactional.
    """
    with engine.connect() as connection:
        if connection.dialect.name != "sqlite":
            with connection.begin():
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(connection)}
                )
                yield connection
            return
        driver = connection.connection.driver_connection
        assert driver is not None
        previous = driver.isolation_level
        driver.isolation_level = None
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.rollback()
                raise
            connection.commit()
        finally:
            driver.isolation_level = previous


def _lock_key(connection: Connection) -> int:
    schema = connection.execute(text("SELECT current_schema()")).scalar_one()
    return zlib.crc32(f"c2c-ledger-migrations:{schema}".encode())


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = connection
    return config


@lru_cache(maxsize=1)
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def main(args: Sequence[str] | None = None) -> None:
    """``python -m ledger.migrate revision MESSAGE``: write the next revision (for c2c's
    developers; users run ``c2c ledger upgrade``)."""
    parser = argparse.ArgumentParser(prog="python -m ledger.migrate")
    commands = parser.add_subparsers(dest="command", required=True)
    revision = commands.add_parser("revision", help="write the next revision, autogenerated")
    revision.add_argument("message", help="what the revision changes")
    options = parser.parse_args(args)
    if options.command == "revision":
        print(new_revision(options.message))


if __name__ == "__main__":
    main()
