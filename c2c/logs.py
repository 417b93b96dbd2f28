"""structlog, configured once per process: readable on a terminal, JSON with C2C_LOG_FORMAT=json."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, TextIO

import structlog

from domain.names import contract_id_from_workflow_id

#: Keys whose values never reach a log line.
REDACTED_KEYS = frozenset(
    {
        "authorization",
        "password",
        "secret",
        "token",
        "api_key",
        "webhook_secret",
        "encryption_key",
        "idempotency_key_secret",
        "tax_id",
        "iban",
        "account_number",
        "x-c2c-signature",
    }
)


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    # uvicorn repeats its message with terminal colour codes; one copy is enough.
    event.pop("color_message", None)
    for key in list(event):
        if key.lower() in REDACTED_KEYS:
            event[key] = "[redacted]"
    return event


def _temporal_ids(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    # The SDK's workflow and activity loggers pass their ids in one `extra` dict; c2c's own
    # lines carry them as top-level keys, so one query finds a contract in every component.
    info = event.pop("temporal_workflow", None) or event.pop("temporal_activity", None)
    if isinstance(info, Mapping):
        workflow_id = str(info.get("workflow_id") or "")
        event.setdefault("workflow_id", workflow_id)
        event.setdefault("run_id", info.get("run_id") or info.get("workflow_run_id"))
        event.setdefault("contract_id", contract_id_from_workflow_id(workflow_id))
        if "activity_type" in info:
            event.setdefault("activity", info["activity_type"])
    return event


def configure_logging(
    component: str,
    *,
    fmt: str | None = None,
    level: str | None = None,
    stream: TextIO | None = None,
) -> None:
    """Configure structlog and the standard library logging for one component.

    Args:
        component: Name bound to every line (``api``, ``worker``, ``sandbox``, ...).
        fmt: ``console`` or ``json``; ``C2C_LOG_FORMAT`` by default.
        level: A level name; ``C2C_LOG_LEVEL`` by default.
        stream: Where lines go; standard error by default.
    """
    from c2c.settings import get_settings

    settings = get_settings()
    fmt = fmt or settings.log_format
    level_no = logging.getLevelName((level or settings.log_level).upper())
    out = stream or sys.stderr
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _temporal_ids,
        _redact,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            # Extras first, so what a library passes in `extra` is redacted too.
            foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level_no)
    for noisy in ("httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    structlog.contextvars.bind_contextvars(component=component)


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
