"""Temporal Cloud credentials come from the SDK's environment configuration: an API key or
TLS client certificates reach ``Client.connect`` from ``TEMPORAL_*`` variables, and a TLS
setting that cannot be read is an error rather than a plaintext connection."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr
from temporalio.service import TLSConfig

from c2c.codec import ENCODING, Keyring
from c2c.settings import Settings
from c2c.temporal import TemporalConfigInvalid, connect_config

PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("TEMPORAL_"):
            monkeypatch.delenv(name)
    # No profile file from the machine running the tests.
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(tmp_path / "absent.toml"))
    return monkeypatch


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_an_api_key_turns_on_tls(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("TEMPORAL_ADDRESS", "acme.a1b2c.tmprl.cloud:7233")
    clean_env.setenv("TEMPORAL_NAMESPACE", "acme.a1b2c")
    clean_env.setenv("TEMPORAL_API_KEY", "cloud-api-key-value")
    config = connect_config(settings())
    assert config["api_key"] == "cloud-api-key-value"
    assert config["tls"] is True
    assert config["target_host"] == "acme.a1b2c.tmprl.cloud:7233"
    assert config["namespace"] == "acme.a1b2c"


def test_mtls_certificates_are_read_from_files(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "client.pem").write_bytes(PEM)
    (tmp_path / "client.key").write_bytes(b"key bytes")
    clean_env.setenv("TEMPORAL_TLS_CLIENT_CERT_PATH", str(tmp_path / "client.pem"))
    clean_env.setenv("TEMPORAL_TLS_CLIENT_KEY_PATH", str(tmp_path / "client.key"))
    clean_env.setenv("TEMPORAL_TLS_SERVER_NAME", "temporal.internal")
    tls = connect_config(settings())["tls"]
    assert isinstance(tls, TLSConfig)
    assert tls.client_cert == PEM
    assert tls.client_private_key == b"key bytes"
    assert tls.domain == "temporal.internal"


def test_an_unreadable_certificate_is_an_error_not_a_plaintext_connection(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("TEMPORAL_TLS_CLIENT_CERT_PATH", str(tmp_path / "missing.pem"))
    clean_env.setenv("TEMPORAL_TLS_CLIENT_KEY_PATH", str(tmp_path / "missing.key"))
    with pytest.raises(TemporalConfigInvalid, match="Temporal client configuration"):
        connect_config(settings())


def test_c2c_addresses_win_over_a_profile_only_when_set(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("TEMPORAL_ADDRESS", "from-profile:7233")
    assert connect_config(settings())["target_host"] == "from-profile:7233"
    chosen = settings(temporal_address="chosen:7233")
    assert connect_config(chosen)["target_host"] == "chosen:7233"


async def test_every_client_of_an_encrypting_configuration_encrypts(
    clean_env: pytest.MonkeyPatch,
) -> None:
    key = SecretStr(Keyring.new_entry("k1"))
    converter = connect_config(settings(encryption_key=key))["data_converter"]
    [payload] = await converter.encode(["Acme Corp"])
    assert payload.metadata["encoding"] == ENCODING


def test_a_broken_profile_is_reported_without_quoting_its_api_key(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    profile = tmp_path / "temporal.toml"
    # An unterminated string: the SDK's own parse error quotes this line.
    profile.write_text('[profile.default]\napi_key = "cloud-key-do-not-print\n')
    clean_env.setenv("TEMPORAL_CONFIG_FILE", str(profile))
    with pytest.raises(TemporalConfigInvalid) as caught:
        connect_config(settings())
    assert "cloud-key-do-not-print" not in str(caught.value)
    assert "profile" in str(caught.value)
