"""Encryption of every payload c2c hands to Temporal (``C2C_ENCRYPTION_KEY``).

With a key set, each workflow and activity payload (inputs, results, signals, updates,
queries, summaries, failure messages) is sealed with AES-256-GCM before it leaves the process,
so the Temporal server, its database and its backups hold only ciphertext. The worker, the
API and the CLI decrypt with the same keyring; the Temporal UI decrypts through the codec
server on the API (``/codec``).

The keyring is ``kid:base64key[,kid:base64key...]``: the first key encrypts, every key
decrypts. Rotating is therefore: put a new key first, keep the old one after it until no
open workflow's history needs it.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

#: The environment variable that holds the keyring (named in every error about it).
KEY_VARIABLE = "C2C_ENCRYPTION_KEY"
#: ``encoding`` metadata of an encrypted payload (what a client without the key sees).
ENCODING = b"binary/encrypted"
#: Metadata naming the key that sealed a payload, so old keys keep decrypting after rotation.
KEY_ID_METADATA = "encryption-key-id"
#: AES-256 needs exactly this many key bytes.
KEY_BYTES = 32
#: 96-bit nonces, the size GCM is designed for; drawn at random for every payload.
NONCE_BYTES = 12

_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class EncryptionKeyError(ValueError):
    """``C2C_ENCRYPTION_KEY`` is malformed. The message never contains key material."""


class PayloadDecryptionError(ValueError):
    """A payload cannot be decrypted: unknown key id, or it was altered (or is not ours)."""


@dataclass(frozen=True)
class Keyring:
    """The keys that may decrypt, by id, and the id of the one that encrypts.

    Args:
        primary: Id of the key that encrypts new payloads.
        keys: Every known key by id (the primary included), 32 bytes each.
    """

    primary: str
    keys: Mapping[str, bytes] = dataclasses.field(repr=False)

    def __post_init__(self) -> None:
        if self.primary not in self.keys:
            raise EncryptionKeyError(f"{KEY_VARIABLE}: key id {self.primary!r} has no key")
        for kid, key in self.keys.items():
            if len(key) != KEY_BYTES:
                raise EncryptionKeyError(
                    f"{KEY_VARIABLE}: key {kid!r} is {len(key)} bytes; AES-256 needs "
                    f"{KEY_BYTES} (make one with `c2c ops new-key`)"
                )

    @classmethod
    def parse(cls, spec: str) -> Keyring:
        """Parse ``kid:base64key[,kid:base64key...]`` (standard or URL-safe base64).

        Raises:
            EncryptionKeyError: naming the entry's position or key id and the problem.
        """
        keys: dict[str, bytes] = {}
        order: list[str] = []
        for position, entry in enumerate(spec.split(","), start=1):
            entry = entry.strip()
            if not entry:
                continue
            kid, sep, encoded = entry.partition(":")
            kid = kid.strip()
            if not sep or not _KEY_ID.match(kid):
                raise EncryptionKeyError(
                    f"{KEY_VARIABLE}: entry {position} must be kid:base64key, the key id "
                    "1-64 letters, digits, '.', '_' or '-'"
                )
            if kid in keys:
                raise EncryptionKeyError(f"{KEY_VARIABLE}: key id {kid!r} appears twice")
            try:
                key = base64.b64decode(encoded.strip(), altchars=b"-_", validate=True)
            except (binascii.Error, ValueError):
                raise EncryptionKeyError(
                    f"{KEY_VARIABLE}: key {kid!r} is not valid base64"
                ) from None
            keys[kid] = key
            order.append(kid)
        if not order:
            raise EncryptionKeyError(f"{KEY_VARIABLE} is set but holds no key")
        return cls(order[0], keys)

    @staticmethod
    def new_entry(kid: str) -> str:
        """A fresh random key as a ``kid:base64key`` entry.

        Raises:
            EncryptionKeyError: ``kid`` is not a valid key id.
        """
        if not _KEY_ID.match(kid):
            raise EncryptionKeyError("a key id is 1-64 letters, digits, '.', '_' or '-'")
        return f"{kid}:{base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()}"


class EncryptionCodec(PayloadCodec):
    """Seals payloads with AES-256-GCM under the keyring's primary key.

    The sealed payload's data is ``nonce || ciphertext || tag`` of the whole original payload
    (metadata included, so even the encoding of a value is hidden); the key id is also the
    associated data, so a payload cannot be passed off under another key's id.
    """

    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring
        self._ciphers = {kid: AESGCM(key) for kid, key in keyring.keys.items()}

    @property
    def key_ids(self) -> list[str]:
        """The ids of every key that decrypts, the encrypting one first."""
        return [self._keyring.primary, *(k for k in self._ciphers if k != self._keyring.primary)]

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Encrypt each payload with the primary key."""
        kid = self._keyring.primary
        cipher = self._ciphers[kid]
        sealed = []
        for payload in payloads:
            nonce = os.urandom(NONCE_BYTES)
            data = cipher.encrypt(nonce, payload.SerializeToString(), kid.encode())
            sealed.append(
                Payload(
                    metadata={"encoding": ENCODING, KEY_ID_METADATA: kid.encode()},
                    data=nonce + data,
                )
            )
        return sealed

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Decrypt each encrypted payload; others pass unchanged.

        Payloads written before encryption was turned on stay readable, so a running
        deployment can switch it on without losing its open workflows.

        Raises:
            PayloadDecryptionError: an unknown key id, or a payload that fails authentication.
        """
        return [self._open(payload) for payload in payloads]

    def _open(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        kid = payload.metadata.get(KEY_ID_METADATA, b"").decode(errors="replace")
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise PayloadDecryptionError(
                f"payload encrypted with key id {kid!r}, which {KEY_VARIABLE} does not hold "
                f"(it holds {', '.join(repr(k) for k in self.key_ids)}); keep old keys "
                "after the new one until no history needs them"
            )
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            plain = cipher.decrypt(nonce, sealed, kid.encode())
        except InvalidTag:
            raise PayloadDecryptionError(
                f"payload under key id {kid!r} failed authentication: it was altered, or "
                "sealed by another key with the same id"
            ) from None
        opened = Payload()
        opened.ParseFromString(plain)
        return opened


def codec_from_spec(spec: str | None) -> EncryptionCodec | None:
    """The codec for a ``C2C_ENCRYPTION_KEY`` value; ``None`` when it is unset or empty.

    Raises:
        EncryptionKeyError: the value is malformed.
    """
    if spec is None or not spec.strip():
        return None
    return EncryptionCodec(Keyring.parse(spec))


def data_converter(codec: EncryptionCodec | None) -> DataConverter:
    """c2c's data converter: pydantic JSON, sealed by ``codec`` when there is one.

    With encryption on, failure messages and stack traces move into an encoded (so encrypted)
    attribute too: an error text may quote a customer's data.
    """
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
