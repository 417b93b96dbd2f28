"""The signed document archive: content-addressed storage of contract documents.

An object's key is the SHA-256 of its bytes, so archiving the same document twice (a retried
step, a reset) writes one object, and a read can tell a document from any other bytes: every
read is checked against the hash the ledger recorded, and a missing or altered object is an
error, never served.

Two stores: a local directory (the default, under ``C2C_STATE_DIR``) and any S3-compatible
object store through boto3 (``C2C_ARCHIVE_URL=s3://bucket/prefix``, with
``C2C_ARCHIVE_S3_ENDPOINT_URL`` for one that is not AWS). Both are synchronous; async callers
run them in a thread.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from c2c.settings import Settings

_HEX = frozenset("0123456789abcdef")


class ArchiveError(RuntimeError):
    """The archive cannot give or keep a document."""


class DocumentMissing(ArchiveError):
    """The archive has no object where the ledger says the document is."""


class DocumentAltered(ArchiveError):
    """The object's bytes no longer hash to what the ledger recorded."""


@dataclass(frozen=True)
class StoredDocument:
    """A document in the archive."""

    sha256: str
    size: int
    location: str


class ArchiveStore(Protocol):
    """Where signed documents are kept, by the SHA-256 of their bytes."""

    def put(self, data: bytes, *, content_type: str, retain_until: datetime) -> StoredDocument:
        """Keep ``data`` (once: an object with its hash is not written again)."""
        ...

    def get(self, sha256: str) -> bytes:
        """The bytes stored under a hash, unchecked.

        Raises:
            DocumentMissing: No such object.
        """
        ...


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _checked_key(sha256: str) -> str:
    if len(sha256) != 64 or not set(sha256) <= _HEX:
        raise ValueError(f"{sha256!r} is not a hex SHA-256")
    return sha256


def read_verified(store: ArchiveStore, sha256: str) -> bytes:
    """A document's bytes, once they are checked against the hash the ledger recorded.

    Raises:
        DocumentMissing: The object is gone.
        DocumentAltered: The object's bytes hash to something else.
    """
    data = store.get(sha256)
    actual = sha256_hex(data)
    if actual != sha256:
        raise DocumentAltered(
            f"the archived object for sha256 {sha256} hashes to {actual}: it was altered"
        )
    return data


class LocalArchive:
    """A directory: ``<root>/<first two hex digits>/<sha256>``, files read-only once written."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_of(self, sha256: str) -> Path:
        key = _checked_key(sha256)
        return self.root / key[:2] / key

    def put(self, data: bytes, *, content_type: str, retain_until: datetime) -> StoredDocument:
        sha256 = sha256_hex(data)
        path = self.path_of(sha256)
        if not (path.exists() and sha256_hex(path.read_bytes()) == sha256):
            path.parent.mkdir(parents=True, exist_ok=True)
            # Written aside and renamed: a reader never sees half a document.
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                os.chmod(tmp, 0o444)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return StoredDocument(sha256=sha256, size=len(data), location=str(path))

    def get(self, sha256: str) -> bytes:
        path = self.path_of(sha256)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise DocumentMissing(f"the archive has no object {path}") from None


class S3Archive:
    """An S3 bucket (or any S3-compatible store): ``<prefix>sha256/<hash>``.

    Args:
        bucket: The bucket, which must exist.
        prefix: Prepended to every key (``contracts/``, say).
        client: A boto3 S3 client.
        object_lock: Write each object with an Object Lock retention (compliance mode)
            until its retention ends; the bucket must have Object Lock enabled.
    """

    def __init__(self, bucket: str, prefix: str, client: Any, *, object_lock: bool = False) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.client = client
        self.object_lock = object_lock

    def key_of(self, sha256: str) -> str:
        return f"{self.prefix}sha256/{_checked_key(sha256)}"

    def put(self, data: bytes, *, content_type: str, retain_until: datetime) -> StoredDocument:
        sha256 = sha256_hex(data)
        key = self.key_of(sha256)
        extra: dict[str, Any] = {}
        if self.object_lock:
            extra = {"ObjectLockMode": "COMPLIANCE", "ObjectLockRetainUntilDate": retain_until}
        self.client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=data,
            ContentType=content_type,
            Metadata={"sha256": sha256},
            **extra,
        )
        return StoredDocument(sha256=sha256, size=len(data), location=f"s3://{self.bucket}/{key}")

    def get(self, sha256: str) -> bytes:
        key = self.key_of(sha256)
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=key)
        except self.client.exceptions.NoSuchKey:
            raise DocumentMissing(f"the archive has no object s3://{self.bucket}/{key}") from None
        body: bytes = answer["Body"].read()
        return body


def archive_from_settings(settings: Settings) -> ArchiveStore:
    """The archive ``C2C_ARCHIVE_URL`` names: ``s3://bucket/prefix``, or a directory."""
    location = settings.archive_location
    parsed = urlparse(location)
    if parsed.scheme == "s3":
        import boto3  # only where an S3 archive is configured

        prefix = parsed.path.lstrip("/")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        client = boto3.client("s3", endpoint_url=settings.archive_s3_endpoint_url)
        return S3Archive(parsed.netloc, prefix, client, object_lock=settings.archive_s3_object_lock)
    if parsed.scheme == "file":
        return LocalArchive(Path(parsed.path))
    if parsed.scheme:
        raise ValueError(
            f"C2C_ARCHIVE_URL: {parsed.scheme}:// is not supported; use a directory, "
            "file:///path or s3://bucket/prefix"
        )
    return LocalArchive(Path(location))
