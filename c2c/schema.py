"""Bringing a database's schema up to its models' tables and indexes, for c2c's ledger and the
sandbox alike."""

from __future__ import annotations

from sqlalchemy import Engine, MetaData


def create_missing(metadata: MetaData, engine: Engine) -> None:
    """Create the tables and the indexes of ``metadata`` that the database lacks.

    ``create_all`` alone adds no index to a table that exists, so a database made by an earlier
    version would never get the indexes added since.
    """
    metadata.create_all(engine)
    for table in metadata.sorted_tables:
        for index in table.indexes:
            index.create(engine, checkfirst=True)
