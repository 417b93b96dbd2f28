"""The key that seals subscription secrets at rest (``C2C_SECRETS_KEY``): any listed key
opens, the first seals; with none configured one is made in the state directory, readable by
its owner only, once; a malformed key is refused naming the setting and the key."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from c2c.secret_box import (
    KEY_FILE,
    SEALED_PREFIX,
    SecretBox,
    SecretsKeyError,
    SecretUnreadable,
    is_sealed,
    new_key,
    secret_box,
)
from c2c.settings import Settings


def settings(state_dir: Path, key: str | None = None) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        state_dir=state_dir,
        secrets_key=SecretStr(key) if key is not None else None,
    )


def test_any_key_opens_the_first_seals_and_clear_text_from_before_passes() -> None:
    old, new = new_key(), new_key()
    sealed_old = SecretBox([old]).seal("whsec_a")
    rotated = SecretBox([new, old])

    assert is_sealed(sealed_old) and "whsec_a" not in sealed_old
    assert rotated.open(sealed_old) == "whsec_a"
    assert not rotated.is_current(sealed_old)
    resealed = rotated.reseal(sealed_old)
    assert rotated.is_current(resealed) and SecretBox([new]).open(resealed) == "whsec_a"
    assert rotated.open("whsec_clear") == "whsec_clear" and not rotated.is_current("whsec_clear")
    with pytest.raises(SecretUnreadable, match="C2C_SECRETS_KEY"):
        SecretBox([new]).open(sealed_old)
    # A sealed secret fits the column (200 characters).
    assert len(rotated.seal("whsec_" + "x" * 43)) <= 200


def test_without_a_key_one_is_made_in_the_state_directory_for_its_owner_only(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    box = secret_box(settings(state))
    path = state / KEY_FILE

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = path.read_text()
    sealed = box.seal("whsec_b")
    again = secret_box(settings(state))  # the next start reads the same key
    assert path.read_text() == first and again.open(sealed) == "whsec_b"
    assert sealed.startswith(SEALED_PREFIX)


def test_a_configured_key_is_used_and_a_malformed_one_refused_naming_it(tmp_path: Path) -> None:
    key = new_key()
    box = secret_box(settings(tmp_path, f" {key} , {new_key()}"))
    assert SecretBox([key]).open(box.seal("whsec_c")) == "whsec_c"
    assert not (tmp_path / KEY_FILE).exists()
    with pytest.raises(SecretsKeyError, match=r"C2C_SECRETS_KEY: key 2 is not a Fernet key"):
        secret_box(settings(tmp_path, f"{key},not-a-key"))
