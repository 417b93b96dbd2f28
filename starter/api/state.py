"""Files ``c2c up`` keeps in its state directory beside the databases."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

#: The webhook secret ``c2c up`` made, readable by its owner only.
WEBHOOK_SECRET_FILE = "webhook-secret"


def read_webhook_secret(state_dir: Path) -> str | None:
    """The webhook secret kept in ``state_dir``, if there is one."""
    try:
        secret = (state_dir / WEBHOOK_SECRET_FILE).read_text().strip()
    except FileNotFoundError:
        return None
    return secret or None


def read_or_create_webhook_secret(state_dir: Path) -> str:
    """The webhook secret kept in ``state_dir``, made (mode 0600) on first use.

    The same secret across restarts keeps webhooks that the sandbox is still retrying valid.
    """
    existing = read_webhook_secret(state_dir)
    if existing:
        return existing
    state_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    # O_EXCL: if two processes race, one writes and the other reads what it wrote.
    try:
        fd = os.open(state_dir / WEBHOOK_SECRET_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_webhook_secret(state_dir) or secret
    with os.fdopen(fd, "w") as file:
        file.write(secret + "\n")
    return secret
