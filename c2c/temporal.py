"""The one way every c2c component connects to Temporal.

Every client and worker uses the pydantic data converter, so the canonical models travel as
JSON with exact decimals, and, when ``C2C_ENCRYPTION_KEY`` is set, the encryption codec, so
every payload reaches the Temporal server sealed. TLS and API keys for Temporal Cloud come from
the SDK's own environment configuration (``TEMPORAL_TLS_*``, ``TEMPORAL_API_KEY``, profiles),
never from a command line.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.envconfig import ClientConfig

from c2c.codec import codec_from_spec, data_converter
from c2c.settings import Settings, get_settings
from c2c.tracing import client_interceptors


@lru_cache(maxsize=4)
def _converter_for(key_spec: str | None) -> DataConverter:
    return data_converter(codec_from_spec(key_spec))


def converter_for(settings: Settings) -> DataConverter:
    """The data converter of ``settings``: pydantic JSON, encrypted if a key is configured.

    Raises:
        EncryptionKeyError: ``C2C_ENCRYPTION_KEY`` is malformed (the message names the
            problem, never the key).
    """
    key = settings.encryption_key
    return _converter_for(key.get_secret_value() if key else None)


def connect_config(settings: Settings | None = None) -> dict[str, Any]:
    """Keyword arguments for ``Client.connect``: the SDK's env config, then c2c's settings.

    Raises:
        TemporalConfigInvalid: the SDK's configuration cannot be loaded (e.g. a TLS
            certificate file that does not exist), rather than connecting without TLS.
        EncryptionKeyError: ``C2C_ENCRYPTION_KEY`` is malformed.
    """
    settings = settings or get_settings()
    try:
        config: dict[str, Any] = dict(ClientConfig.load_client_connect_config())
    except Exception as exc:
        # Never fall back to a default (plaintext) connection when TLS or an API key was
        # asked for but cannot be read.
        raise TemporalConfigInvalid(
            "the Temporal client configuration (TEMPORAL_* variables or profile) is invalid: "
            + _describe(exc)
        ) from None
    # A profile's address and namespace stand unless c2c's own variables name others.
    if "temporal_address" in settings.model_fields_set or not config.get("target_host"):
        config["target_host"] = settings.temporal_address
    if "temporal_namespace" in settings.model_fields_set or not config.get("namespace"):
        config["namespace"] = settings.temporal_namespace
    config["data_converter"] = converter_for(settings)
    # Tracing, when this process turned it on; a worker inherits its client's interceptors.
    config["interceptors"] = [*config.get("interceptors", ()), *client_interceptors()]
    return config


def _describe(exc: Exception) -> str:
    # A parser's message may quote the offending line of a profile, API key included: name
    # only the kind of problem, and the file for one that cannot be read.
    if isinstance(exc, OSError):
        return f"{exc.strerror or type(exc).__name__}: {exc.filename}"
    return f"{type(exc).__name__} (check the TEMPORAL_* variables and the profile file)"


class TemporalConfigInvalid(ValueError):
    """The Temporal client configuration (TLS, API key, profile) cannot be used."""


class TemporalUnavailable(ConnectionError):
    """The Temporal frontend could not be reached."""


async def connect(settings: Settings | None = None) -> Client:
    """Connect to the configured Temporal frontend.

    Raises:
        TemporalUnavailable: naming the address, so an operator sees what to fix.
    """
    config = connect_config(settings)
    target = config.pop("target_host")
    try:
        return await Client.connect(target, **config)
    except RuntimeError as exc:
        raise TemporalUnavailable(f"cannot reach Temporal at {target}: {exc}") from exc
