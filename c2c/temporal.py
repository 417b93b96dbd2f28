"""The one way every c2c component connects to Temporal.

Every client and worker uses the pydantic data converter, so the canonical models travel as
JSON with exact decimals. TLS and API keys for Temporal Cloud come from the SDK's own
environment configuration (``TEMPORAL_TLS_*``, ``TEMPORAL_API_KEY``, profiles), never from a
command line.
"""

from __future__ import annotations

from typing import Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from c2c.settings import Settings, get_settings
from c2c.tracing import client_interceptors


def connect_config(settings: Settings | None = None) -> dict[str, Any]:
    """Keyword arguments for ``Client.connect``: the SDK's env config, then c2c's settings."""
    settings = settings or get_settings()
    config: dict[str, Any] = {}
    try:
        from temporalio.envconfig import ClientConfig

        config = dict(ClientConfig.load_client_connect_config())
    except Exception:  # pragma: no cover - older SDKs without envconfig
        config = {}
    # A profile's address and namespace stand unless c2c's own variables name others.
    if "temporal_address" in settings.model_fields_set or not config.get("target_host"):
        config["target_host"] = settings.temporal_address
    if "temporal_namespace" in settings.model_fields_set or not config.get("namespace"):
        config["namespace"] = settings.temporal_namespace
    config["data_converter"] = pydantic_data_converter
    # Tracing, when this process turned it on; a worker inherits its client's interceptors.
    config["interceptors"] = [*config.get("interceptors", ()), *client_interceptors()]
    return config


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
