"""Bringing a database's schema up to its models' tables, columns and indexes, for c2c's
ledger and the sandbox alike."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Column, Connection, Engine, MetaData, inspect
from sqlalchemy.schema import CreateColumn


def create_missing(metadata: MetaData, engine: Engine | Connection) -> None:
    """Create the tables, the columns and the indexes of ``metadata`` that the database lacks.

    ``create_all`` alone adds no index, and no column, to a table that exists, so a database
    made by an earlier version would never get those added since. A column added since must
    be nullable with no default: rows written before it have none, and say so with ``NULL``.

    Raises:
        ValueError: A missing column is not nullable (it cannot be added to existing rows).
    """
    metadata.create_all(engine)
    add_missing_columns(metadata, engine)
    for table in metadata.sorted_tables:
        for index in table.indexes:
            index.create(engine, checkfirst=True)


def add_missing_columns(metadata: MetaData, engine: Engine | Connection) -> list[str]:
    """Add to each existing table the nullable columns its model has and it lacks.

    A missing column that is not nullable is left alone: existing rows have no value for
    it, so it needs a migration of its own, and the model's code fails on it as before.

    Returns:
        The columns added, as ``table.column``.
    """
    existing = inspect(engine)
    added: list[str] = []
    with _transaction(engine) as connection:
        for table in metadata.sorted_tables:
            have = {column["name"] for column in existing.get_columns(table.name)}
            if not have:
                continue  # just created by ``create_all``, or not visible: nothing to add
            name = engine.dialect.identifier_preparer.format_table(table)
            for column in table.columns:
                if column.name in have or not _addable(column):
                    continue
                ddl = CreateColumn(column).compile(dialect=engine.dialect)
                connection.exec_driver_sql(f"ALTER TABLE {name} ADD COLUMN {ddl}")
                added.append(f"{table.name}.{column.name}")
    return added


@contextmanager
def _transaction(bind: Engine | Connection) -> Iterator[Connection]:
    """A transaction of the engine's, or the connection's own (its caller's to commit)."""
    if isinstance(bind, Connection):
        yield bind
        return
    with bind.begin() as connection:
        yield connection


def _addable(column: Column[object]) -> bool:
    return bool(column.nullable) and not column.primary_key and column.server_default is None
