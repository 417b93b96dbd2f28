"""Secrets kept at rest in the ledger, sealed with Fernet (``C2C_SECRETS_KEY``).

The subscriptions' signing secrets must be read back to sign each delivery, so they are
encrypted, not hashed. ``C2C_SECRETS_KEY`` is a comma list of Fernet keys (32 bytes,
URL-safe base64, as ``c2c ops subscriptions new-key`` prints): a value sealed with any of them
is opened, and new values are sealed with the first. To rotate, put the new key first, run
``c2c ops subscriptions reencrypt``, then drop the old key.

With no key configured (the embedded ``c2c up``), one is generated on first use in the state
directory, ``<C2C_STATE_DIR>/secrets.key``, readable by its owner only (``0600``). A ledger
shared by several hosts needs the same ``C2C_SECRETS_KEY`` on each of them instead.

A stored value that does not start with ``fernet:`` is a secret written in clear by c2c 0.10;
it is opened as it is, and sealed by ``reencrypt`` or the first time it is read for a delivery.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from c2c.logs import get_logger
from c2c.settings import Settings
from c2c.state_files import read_or_create_secret_file

log = get_logger("c2c.secrets")

#: What a sealed value starts with; anything else is a secret stored in clear.
SEALED_PREFIX = "fernet:"
#: The generated key's file in the state directory, when ``C2C_SECRETS_KEY`` is unset.
KEY_FILE = "secrets.key"
SETTING = "C2C_SECRETS_KEY"


class SecretsKeyError(ValueError):
    """``C2C_SECRETS_KEY`` (or the key file) holds something that is not a Fernet key."""


class SecretUnreadable(Exception):
    """A sealed value that none of the configured keys opens."""


class SecretBox:
    """Seals and opens secrets with a list of Fernet keys: the first seals, any opens.

    Args:
        keys: Fernet keys, the current one first.
        source: Where the keys came from, named in errors.

    Raises:
        SecretsKeyError: No key, or one that is not a Fernet key.
    """

    def __init__(self, keys: Sequence[str], source: str = SETTING) -> None:
        if not keys:
            raise SecretsKeyError(f"{source}: no key given")
        fernets = []
        for number, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.encode()))
            except ValueError:
                raise SecretsKeyError(
                    f"{source}: key {number} is not a Fernet key (32 bytes in URL-safe "
                    "base64, 44 characters; `c2c ops subscriptions new-key` prints one)"
                ) from None
        self._current = fernets[0]
        self._all = MultiFernet(fernets)

    def seal(self, clear: str) -> str:
        """``clear`` encrypted with the current key."""
        return SEALED_PREFIX + self._current.encrypt(clear.encode()).decode()

    def open(self, stored: str) -> str:
        """The secret a stored value holds (a clear-text one as it is).

        Raises:
            SecretUnreadable: It was sealed with a key that is not configured.
        """
        if not is_sealed(stored):
            return stored
        try:
            return self._all.decrypt(stored.removeprefix(SEALED_PREFIX).encode()).decode()
        except InvalidToken:
            raise SecretUnreadable(
                f"sealed with a key that is not in {SETTING} (or the state directory's {KEY_FILE})"
            ) from None

    def is_current(self, stored: str) -> bool:
        """Whether ``stored`` is sealed with the current key (nothing to re-encrypt)."""
        if not is_sealed(stored):
            return False
        try:
            self._current.decrypt(stored.removeprefix(SEALED_PREFIX).encode())
        except InvalidToken:
            return False
        return True

    def reseal(self, stored: str) -> str:
        """``stored`` sealed with the current key (a clear-text one encrypted).

        Raises:
            SecretUnreadable: It was sealed with a key that is not configured.
        """
        return self.seal(self.open(stored))


def is_sealed(stored: str) -> bool:
    """Whether a stored value is encrypted (else it is a clear-text secret from before)."""
    return stored.startswith(SEALED_PREFIX)


def new_key() -> str:
    """A new random Fernet key."""
    return Fernet.generate_key().decode()


def secret_box(settings: Settings) -> SecretBox:
    """The box of the configured keys, or of the state directory's key file (made, ``0600``,
    on first use) when ``C2C_SECRETS_KEY`` is unset.

    Raises:
        SecretsKeyError: A configured key is not a Fernet key.
    """
    given = settings.secrets_key.get_secret_value() if settings.secrets_key else ""
    keys = tuple(k.strip() for k in given.split(",") if k.strip())
    if keys:
        return _box(keys, SETTING)
    path = key_file(settings.state_dir)
    return _box((path.read_text().strip(),), str(path))


@lru_cache(maxsize=8)
def _box(keys: tuple[str, ...], source: str) -> SecretBox:
    return SecretBox(keys, source)


def key_file(state_dir: Path) -> Path:
    """The state directory's key file, written with a new key (owner-only) if it is missing."""
    path = state_dir / KEY_FILE
    _, made = read_or_create_secret_file(path, new_key)
    if made:
        log.info(
            "generated the key that seals subscription secrets",
            path=str(path),
            hint=f"set {SETTING} where several hosts share one ledger",
        )
    return path
