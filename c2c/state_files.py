"""Secrets kept in files of the state directory, made on first use and readable by their owner
only: what ``c2c up`` needs when the environment sets none."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def read_secret_file(path: Path) -> str | None:
    """The secret kept in ``path``, if there is one."""
    try:
        secret = path.read_text().strip()
    except FileNotFoundError:
        return None
    return secret or None


def read_or_create_secret_file(path: Path, make: Callable[[], str]) -> tuple[str, bool]:
    """The secret kept in ``path``, written (mode 0600) with ``make()`` if it is missing;
    and whether it was made now."""
    existing = read_secret_file(path)
    if existing:
        return existing, False
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = make()
    # O_EXCL: if two processes race, one writes and the other reads what it wrote.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_secret_file(path) or secret, False
    with os.fdopen(fd, "w") as file:
        file.write(secret + "\n")
    return secret, True
