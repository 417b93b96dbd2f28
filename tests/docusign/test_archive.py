"""The signed document archive: a local directory and an S3 bucket (moto's S3 server), each
giving a document back only when its bytes match its SHA-256."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from c2c.ports import free_port
from c2c.settings import Settings
from ledger.archive import (
    ArchiveStore,
    DocumentAltered,
    DocumentMissing,
    LocalArchive,
    S3Archive,
    archive_from_settings,
    read_verified,
)

PDF = b"%PDF-1.4\n% a signed statement of work\n%%EOF\n"
UNTIL = datetime.now(UTC) + timedelta(days=3650)


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_settings(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    # moto takes any credentials; boto3 needs some to sign with.
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket="c2c-archive")
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        archive_url="s3://c2c-archive/contracts",
        archive_s3_endpoint_url=s3_endpoint,
    )


def check_round_trip(store: ArchiveStore) -> str:
    stored = store.put(PDF, content_type="application/pdf", retain_until=UNTIL)
    assert stored.sha256 == hashlib.sha256(PDF).hexdigest()
    assert stored.size == len(PDF)
    # Content-addressed: the same document again is the same object.
    assert store.put(PDF, content_type="application/pdf", retain_until=UNTIL) == stored
    assert read_verified(store, stored.sha256) == PDF
    return stored.sha256


def test_local_archive_round_trip_and_tampering(tmp_path: Path) -> None:
    store = archive_from_settings(
        Settings(_env_file=None, state_dir=tmp_path)  # type: ignore[call-arg]
    )
    assert isinstance(store, LocalArchive)
    assert store.root == tmp_path / "archive"
    sha = check_round_trip(store)
    path = store.path_of(sha)
    assert not os.access(path, os.W_OK) or os.geteuid() == 0  # written read-only
    path.chmod(0o644)
    path.write_bytes(PDF.replace(b"signed", b"forged"))
    with pytest.raises(DocumentAltered, match="altered"):
        read_verified(store, sha)
    path.unlink()
    with pytest.raises(DocumentMissing):
        read_verified(store, sha)


def test_s3_archive_round_trip_and_tampering(s3_settings: Settings, s3_endpoint: str) -> None:
    store = archive_from_settings(s3_settings)
    assert isinstance(store, S3Archive)
    sha = check_round_trip(store)
    key = f"contracts/sha256/{sha}"
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    head = s3.head_object(Bucket="c2c-archive", Key=key)
    assert head["ContentType"] == "application/pdf"
    assert head["Metadata"]["sha256"] == sha
    s3.put_object(Bucket="c2c-archive", Key=key, Body=PDF + b"appended")
    with pytest.raises(DocumentAltered):
        read_verified(store, sha)
    s3.delete_object(Bucket="c2c-archive", Key=key)
    with pytest.raises(DocumentMissing, match="s3://c2c-archive/"):
        read_verified(store, sha)


def test_an_unknown_archive_scheme_is_refused() -> None:
    settings = Settings(_env_file=None, archive_url="ftp://x/y")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="ftp:// is not supported"):
        archive_from_settings(settings)


def test_a_key_that_is_not_a_sha256_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a hex SHA-256"):
        LocalArchive(tmp_path).get("../../etc/passwd")
