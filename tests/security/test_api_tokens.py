"""API tokens stored as SHA-256 digests: parsing, constant-time lookup, the API over real
HTTP with only digests configured, and ``c2c ops hash-token`` / ``c2c ops new-key``."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from c2c.codec import Keyring
from c2c.settings import Settings
from starter.api.auth import Role, TokenTable, hashed_entry, token_digest
from tests.support import serve

C2C = str(Path(sys.executable).parent / "c2c")
VIEWER = "v1ewer-3b1f0c2e9d8a7f6e5d4c"
OPERATOR = "0perator-9a8b7c6d5e4f3a2b1c0d"


def test_plain_and_hashed_entries_are_both_held_as_digests() -> None:
    table = TokenTable.parse(f"{VIEWER}:viewer, {hashed_entry(OPERATOR, Role.OPERATOR)}")
    assert [(e.digest, e.role) for e in table.entries] == [
        (token_digest(VIEWER), Role.VIEWER),
        (hashlib.sha256(OPERATOR.encode()).digest(), Role.OPERATOR),
    ]
    assert table.role_of(VIEWER) is Role.VIEWER
    assert table.role_of(OPERATOR) is Role.OPERATOR
    assert table.role_of("someone-else") is None
    # The configured digest is not itself a token.
    assert table.role_of(token_digest(OPERATOR).hex()) is None
    assert OPERATOR not in repr(table) and VIEWER not in repr(table)


def test_only_a_plain_token_can_be_handed_to_local_tools() -> None:
    hashed_only = TokenTable.parse(hashed_entry(OPERATOR, Role.OPERATOR))
    assert hashed_only.enabled
    assert hashed_only.first_with(Role.OPERATOR) is None
    mixed = TokenTable.parse(f"{hashed_entry(VIEWER, Role.OPERATOR)},{OPERATOR}:operator")
    assert mixed.first_with(Role.OPERATOR) == OPERATOR
    assert mixed.first_with(Role.VIEWER) is None
    assert not TokenTable.parse(None).enabled


def test_tokens_may_contain_colons() -> None:
    assert TokenTable.parse("a:b:c:operator").role_of("a:b:c") is Role.OPERATOR


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("sha256:abc:viewer", "entry 1: a sha256 digest is 64 hex digits"),
        (f"{VIEWER}:viewer,sha256:{'z' * 64}:operator", "entry 2: a sha256 digest"),
        (f"{VIEWER}:admin", "unknown role 'admin' in C2C_API_TOKENS entry 1"),
        ("justatoken", "entry 1 must be token:role"),
    ],
)
def test_malformed_entries_are_named_without_the_token(spec: str, problem: str) -> None:
    with pytest.raises(ValueError) as caught:
        TokenTable.parse(spec)
    assert problem in str(caught.value)
    assert VIEWER not in str(caught.value)


@pytest.fixture(scope="module")
def hashed_api_url(settings: Settings) -> Iterator[str]:
    tokens = f"{hashed_entry(VIEWER, Role.VIEWER)},{hashed_entry(OPERATOR, Role.OPERATOR)}"
    with serve(settings.model_copy(update={"api_tokens": SecretStr(tokens)})) as url:
        yield url


async def test_the_api_accepts_tokens_configured_only_as_digests(hashed_api_url: str) -> None:
    async with httpx.AsyncClient(base_url=hashed_api_url, timeout=30) as http:
        viewer = {"Authorization": f"Bearer {VIEWER}"}
        operator = {"Authorization": f"Bearer {OPERATOR}"}
        assert (await http.get("/api/exceptions", headers=viewer)).status_code == 200
        close = "/api/billing/close-period"
        refused = await http.post(close, json={"period": "2026-01"}, headers=viewer)
        assert refused.status_code == 403
        # An invalid period shows the operator's token was accepted, without signalling.
        accepted = await http.post(close, json={"period": "x"}, headers=operator)
        assert accepted.status_code == 422
        assert accepted.json()["error"]["field"] == "period"
        digest = {"Authorization": f"Bearer sha256:{token_digest(OPERATOR).hex()}"}
        assert (await http.get("/api/exceptions", headers=digest)).status_code == 401


def c2c(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [C2C, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def test_hash_token_reads_the_token_from_stdin() -> None:
    done = c2c("ops", "hash-token", "--role", "operator", stdin=f"{OPERATOR}\n")
    assert done.returncode == 0, done.stderr
    entry = done.stdout.strip()
    assert entry == f"sha256:{hashlib.sha256(OPERATOR.encode()).hexdigest()}:operator"
    assert OPERATOR not in done.stdout + done.stderr
    assert TokenTable.parse(entry).role_of(OPERATOR) is Role.OPERATOR


@pytest.mark.parametrize(
    ("stdin", "problem"),
    [("", "no token on stdin"), ("short\n", "at least 20"), ("has a space in it ok\n", "space")],
)
def test_hash_token_refuses_what_cannot_be_a_safe_token(stdin: str, problem: str) -> None:
    done = c2c("ops", "hash-token", "--role", "viewer", stdin=stdin)
    assert done.returncode == 2
    assert problem in done.stderr.replace("whitespace", "space")
    assert done.stdout == ""


def test_hash_token_takes_no_token_argument() -> None:
    done = c2c("ops", "hash-token", "--role", "viewer", OPERATOR)
    assert done.returncode == 2
    assert "unexpected extra argument" in done.stderr.lower()


def test_new_key_prints_a_usable_keyring_entry() -> None:
    first = c2c("ops", "new-key", "--key-id", "k2027").stdout.strip()
    second = c2c("ops", "new-key", "--key-id", "k2027").stdout.strip()
    assert first.startswith("k2027:") and first != second
    ring = Keyring.parse(f"{first}")
    assert ring.primary == "k2027" and len(ring.keys["k2027"]) == 32
    assert c2c("ops", "new-key").stdout.startswith("k20")
