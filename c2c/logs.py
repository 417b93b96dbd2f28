"""structlog, configured once per process: readable on a terminal, JSON with C2C_LOG_FORMAT=json."""

from __future__ import annotations

import dataclasses
import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from functools import lru_cache
from typing import Any, TextIO

import structlog
from pydantic import BaseModel
from temporalio import activity as temporal_activity
from temporalio import workflow as temporal_workflow

from domain.names import contract_id_from_workflow_id

#: The text that stands in for a redacted value.
REDACTED = "[redacted]"

#: Keys whose values never reach a log line, at any depth of an event (a logged payload, a
#: headers dict), compared in lower case with ``-`` read as ``_``. A key also matches when it
#: ends in ``_`` and one of these (``webhook_secret``, ``x_api_key``, ``customer_tax_id``).
#: ``idempotency_key`` is kept on purpose: it is built from the workflow id and the business
#: step, grants nothing, and is what an operator searches for to trace a duplicate write;
#: a bare ``key`` or another ``*_key`` is a name, not a credential, unless listed here.
REDACTED_KEYS = frozenset(
    {
        # credentials
        "authorization",
        "cookie",
        "credential",
        "credentials",
        "password",
        "passwd",
        "secret",
        "secrets",
        "signature",
        "token",
        "tokens",
        "api_key",
        "apikey",
        "access_key",
        "private_key",
        "secret_key",
        "signing_key",
        "encryption_key",
        # bank details
        "iban",
        "bic",
        "swift",
        "swift_code",
        "account_number",
        "routing_number",
        "sort_code",
        "bank_account",
        "bank_details",
        # tax ids
        "tax_id",
        "tax_number",
        "vat_id",
        "vat_number",
        # people: logs carry ids (a contract's, a customer's CRM account), never a person's
        # address or name; the audit trail records who approved or decided what
        "email",
        "e_mail",
        "approved_by",
        "approver",
        "operator",
        "phone",
        "phone_number",
        "contact_name",
        "full_name",
        "person",
    }
)

#: Deeper than this an event is not walked: its values are replaced whole.
_MAX_DEPTH = 12
#: ``scheme://user:password@host``: the password of a URL (a database URL, a proxy).
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.\-]*://[^:/@\s]*):[^@/\s]*@", re.IGNORECASE)
#: ``?name=value`` or ``&name=value``: a query string parameter, redacted if its name is.
_QUERY_PARAM = re.compile(r"(?P<head>[?&;](?P<name>[\w.\-]+)=)(?P<value>[^&#\s\"']*)")
#: ``Bearer <token>`` or ``Basic <credentials>`` written into a message.
_AUTH_SCHEME = re.compile(r"\b(?P<scheme>Bearer|Basic)\s+[\w.~+/=\-]+", re.IGNORECASE)
#: An e-mail address written into a message (an approver, a billing contact): the domain ends
#: in letters, so ``user@127.0.0.1`` in a URL is left to ``_URL_PASSWORD``'s rules.
_EMAIL = re.compile(
    r"[\w.!#$%&'*+/=?^`{|}~\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}",
)


#: ``_<key>`` for each of ``REDACTED_KEYS``: a name ending in one is sensitive too.
_SENSITIVE_ENDINGS = tuple(f"_{word}" for word in sorted(REDACTED_KEYS))


# Every key of every log line is asked about, and the names a process logs under are few:
# remembering the answers took most of a line's cost off the API's request path.
@lru_cache(maxsize=4096)
def is_sensitive(key: str) -> bool:
    """Whether a value logged under ``key`` is redacted (see ``REDACTED_KEYS``)."""
    name = key.strip().lower().replace("-", "_").rsplit(".", 1)[-1]
    return name in REDACTED_KEYS or name.endswith(_SENSITIVE_ENDINGS)


def scrub_text(text: str) -> str:
    """``text`` without the credentials it may carry in a URL or an ``Authorization`` value,
    and without e-mail addresses.

    Libraries log URLs and messages, not keys (httpx logs each request's URL), and a
    workflow's history line may name a person, so these are redacted by their syntax: a
    URL's password, a query parameter with a sensitive name, a bearer or basic credential,
    an e-mail address.
    """
    if "@" in text:
        text = _URL_PASSWORD.sub(lambda m: f"{m['head']}:{REDACTED}@", text)
        text = _EMAIL.sub(REDACTED, text)
    text = _QUERY_PARAM.sub(
        lambda m: f"{m['head']}{REDACTED}" if is_sensitive(m["name"]) else m[0], text
    )
    return _AUTH_SCHEME.sub(lambda m: f"{m['scheme']} {REDACTED}", text)


def redact(value: Any, depth: int = 0) -> Any:
    """A copy of ``value`` with every sensitive key's value redacted, at any depth.

    Mappings, sequences, pydantic models and dataclasses are walked (the caller's objects
    are never changed); strings are scrubbed (``scrub_text``); other values are kept.
    """
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, (int, float, bool, type(None))):
        return value
    if depth >= _MAX_DEPTH:
        return "[too deep]"
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(k, str) and is_sensitive(k) else redact(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        return [redact(v, depth + 1) for v in value]
    return value


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    # uvicorn repeats its message with terminal colour codes; one copy is enough.
    event.pop("color_message", None)
    for key, value in list(event.items()):
        if key in ("exc_info", "_record", "_from_structlog"):
            continue  # the formatter's own material, rendered (and scrubbed) later
        event[key] = REDACTED if is_sensitive(key) else redact(value)
    return event


def _scrub_exception(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    if isinstance(event.get("exception"), str):
        event["exception"] = scrub_text(event["exception"])
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


class _StandardError(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a line is written, not when configured (as
    the standard library's last-resort handler does), so a component whose standard error is
    replaced (a test runner's capture, a daemon's redirect) never writes to a closed stream."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _: TextIO) -> None:
        pass


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
    # A traceback as plain text, never with its frames' local variables (rich's default shows
    # them, and a local may be a contract, a header or a secret), and scrubbed like a message.
    tracebacks: list[Any] = [structlog.processors.format_exc_info, _scrub_exception]
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _temporal_ids,
        _redact,
    ]
    structlog.configure(
        # Below the level, a line is dropped before the redaction and the rest run on it: the
        # connectors' debug line per HTTP call was ~4 % of a busy worker's CPU at INFO.
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler: logging.StreamHandler[Any] = (
        logging.StreamHandler(stream) if stream is not None else _StandardError()
    )
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            # Extras first, so what a library passes in `extra` is redacted too.
            foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *shared],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *tracebacks,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level_no)
    for noisy in ("httpx", "httpcore", "uvicorn.access", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # The SDK's loggers also append their whole info dict to every message; the ids are
    # already keys of the line (``_temporal_ids``), so the message stays the message.
    temporal_workflow.logger.workflow_info_on_message = False
    temporal_activity.logger.activity_info_on_message = False
    structlog.contextvars.bind_contextvars(component=component)


def get_logger(name: str | None = None) -> Any:
    """A structlog logger named ``name``, redacting as ``configure_logging`` set up."""
    return structlog.get_logger(name)
