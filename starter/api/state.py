"""Files ``c2c up`` keeps in its state directory beside the databases."""

from __future__ import annotations

import secrets
from pathlib import Path

from c2c.state_files import read_or_create_secret_file, read_secret_file

#: The webhook secret ``c2c up`` made, readable by its owner only.
WEBHOOK_SECRET_FILE = "webhook-secret"


def read_webhook_secret(state_dir: Path) -> str | None:
    """The webhook secret kept in ``state_dir``, if there is one."""
    return read_secret_file(state_dir / WEBHOOK_SECRET_FILE)


def read_or_create_webhook_secret(state_dir: Path) -> str:
    """The webhook secret kept in ``state_dir``, made (mode 0600) on first use.

    The same secret across restarts keeps webhooks that the sandbox is still retrying valid.
    """
    secret, _ = read_or_create_secret_file(
        state_dir / WEBHOOK_SECRET_FILE, lambda: secrets.token_urlsafe(32)
    )
    return secret
