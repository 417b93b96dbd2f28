"""Database URLs as users write them, turned into what SQLAlchemy should be given."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL, make_url

SUPPORTED_BACKENDS = ("sqlite", "postgresql")

_BARE_POSTGRES = ("postgres", "postgresql")


def normalise_url(url: str | URL) -> str:
    """Give a PostgreSQL URL without a driver the psycopg (v3) driver that c2c installs.

    ``postgres://`` and ``postgresql://`` become ``postgresql+psycopg://``; any other URL,
    including one naming its driver, is returned unchanged.

    Args:
        url: A SQLAlchemy database URL.

    Returns:
        The URL as a string, passwords included.
    """
    parsed = make_url(url)
    if parsed.drivername in _BARE_POSTGRES:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def sqlite_file(url: str | URL) -> Path | None:
    """The file behind a SQLite URL, or ``None`` for in-memory and non-SQLite databases."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        # A URI filename: mode=memory or a path we should not second-guess.
        return None
    return Path(database)
