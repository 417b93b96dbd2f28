"""The AES-256-GCM payload codec: round trip, key rotation, tampering, unknown keys, and
``C2C_ENCRYPTION_KEY`` parsing that names problems without ever showing a key."""

from __future__ import annotations

import base64
import os
from decimal import Decimal

import pytest
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter

from c2c.codec import (
    ENCODING,
    KEY_ID_METADATA,
    EncryptionCodec,
    EncryptionKeyError,
    Keyring,
    PayloadDecryptionError,
    codec_from_spec,
)
from c2c.settings import Settings
from c2c.temporal import converter_for
from domain.models import ContractApproved
from tests.support import approval_payload


def codec(spec: str) -> EncryptionCodec:
    found = codec_from_spec(spec)
    assert found is not None
    return found


def plain_payload(text: str = "Acme Corp, tax id US-12-3456789") -> Payload:
    return pydantic_data_converter.payload_converter.to_payloads([{"customer": text}])[0]


async def test_a_payload_is_sealed_and_opened_again() -> None:
    sealer = codec(Keyring.new_entry("k1"))
    original = plain_payload()
    [sealed] = await sealer.encode([original])
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID_METADATA] == b"k1"
    # Neither the value nor its original encoding is visible.
    assert b"Acme" not in sealed.SerializeToString()
    assert b"json/plain" not in sealed.SerializeToString()
    [opened] = await sealer.decode([sealed])
    assert opened == original


async def test_every_payload_gets_its_own_nonce() -> None:
    sealer = codec(Keyring.new_entry("k1"))
    first, second = await sealer.encode([plain_payload(), plain_payload()])
    assert first.data[:12] != second.data[:12]
    assert first.data != second.data


async def test_a_whole_contract_survives_the_data_converter() -> None:
    settings = Settings(_env_file=None, encryption_key=SecretStr(Keyring.new_entry("k1")))  # type: ignore[call-arg]
    converter = converter_for(settings)
    event = ContractApproved.model_validate(approval_payload())
    payloads = await converter.encode([event])
    assert all(p.metadata["encoding"] == ENCODING for p in payloads)
    [back] = await converter.decode(payloads, [ContractApproved])
    assert back == event
    assert back.rate_card[0].hourly_rate == Decimal("200.00")


async def test_after_rotation_the_new_key_seals_and_the_old_key_still_opens() -> None:
    old, new = Keyring.new_entry("k-old"), Keyring.new_entry("k-new")
    before = codec(old)
    [sealed_before] = await before.encode([plain_payload("before")])

    rotated = codec(f"{new},{old}")
    [sealed_after] = await rotated.encode([plain_payload("after")])
    assert sealed_after.metadata[KEY_ID_METADATA] == b"k-new"
    assert rotated.key_ids == ["k-new", "k-old"]
    opened = await rotated.decode([sealed_before, sealed_after])
    assert opened == [plain_payload("before"), plain_payload("after")]


async def test_a_retired_key_is_named_when_a_payload_still_needs_it() -> None:
    [sealed] = await codec(Keyring.new_entry("k-old")).encode([plain_payload()])
    with pytest.raises(PayloadDecryptionError, match=r"key id 'k-old'.*holds 'k-new'"):
        await codec(Keyring.new_entry("k-new")).decode([sealed])


@pytest.mark.parametrize("where", ["nonce", "ciphertext", "tag"])
async def test_altered_ciphertext_is_refused(where: str) -> None:
    sealer = codec(Keyring.new_entry("k1"))
    [sealed] = await sealer.encode([plain_payload()])
    data = bytearray(sealed.data)
    index = {"nonce": 0, "ciphertext": 20, "tag": len(data) - 1}[where]
    data[index] ^= 0x01
    altered = Payload(metadata=dict(sealed.metadata), data=bytes(data))
    with pytest.raises(PayloadDecryptionError, match="failed authentication"):
        await sealer.decode([altered])


async def test_a_payload_relabelled_with_another_key_id_is_refused() -> None:
    # Same key bytes under two ids: the id is authenticated, so relabelling is detected.
    secret = base64.b64encode(os.urandom(32)).decode()
    sealer = codec(f"a:{secret},b:{secret}")
    [sealed] = await sealer.encode([plain_payload()])
    relabelled = Payload(metadata={"encoding": ENCODING, KEY_ID_METADATA: b"b"}, data=sealed.data)
    with pytest.raises(PayloadDecryptionError, match="failed authentication"):
        await sealer.decode([relabelled])


async def test_a_payload_sealed_with_a_different_key_of_the_same_id_is_refused() -> None:
    [sealed] = await codec(Keyring.new_entry("k1")).encode([plain_payload()])
    with pytest.raises(PayloadDecryptionError, match="failed authentication"):
        await codec(Keyring.new_entry("k1")).decode([sealed])


async def test_payloads_written_before_encryption_was_on_stay_readable() -> None:
    original = plain_payload()
    assert await codec(Keyring.new_entry("k1")).decode([original]) == [original]


def test_no_key_means_no_codec() -> None:
    assert codec_from_spec(None) is None
    assert codec_from_spec("  ") is None
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert converter_for(settings) is pydantic_data_converter


SHORT_KEY = base64.b64encode(b"sixteen byte key").decode()


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        (f"k1:{SHORT_KEY}", "key 'k1' is 16 bytes; AES-256 needs 32"),
        ("k1:not base64!!", "key 'k1' is not valid base64"),
        (base64.b64encode(os.urandom(32)).decode(), "entry 1 must be kid:base64key"),
        (f"bad id:{base64.b64encode(os.urandom(32)).decode()}", "entry 1 must be kid:base64key"),
        (",", "holds no key"),
    ],
)
def test_a_malformed_keyring_is_named_and_its_key_is_not_shown(spec: str, problem: str) -> None:
    with pytest.raises(EncryptionKeyError) as caught:
        Keyring.parse(spec)
    message = str(caught.value)
    assert problem in message
    assert "C2C_ENCRYPTION_KEY" in message
    secret = spec.rpartition(":")[2]
    if len(secret) > 8:
        assert secret not in message


def test_a_key_id_used_twice_is_refused() -> None:
    with pytest.raises(EncryptionKeyError, match="'k1' appears twice"):
        Keyring.parse(f"{Keyring.new_entry('k1')},{Keyring.new_entry('k1')}")


def test_url_safe_base64_keys_are_accepted() -> None:
    raw = bytes(range(200, 232))  # encodes with '-' and '_' in the URL-safe alphabet
    spec = f"k1:{base64.urlsafe_b64encode(raw).decode()}"
    assert Keyring.parse(spec).keys["k1"] == raw


def test_the_keyring_never_shows_its_keys() -> None:
    spec = Keyring.new_entry("k1")
    ring = Keyring.parse(spec)
    assert spec.partition(":")[2] not in repr(ring)
    assert "k1" in repr(ring)
