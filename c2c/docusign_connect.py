"""DocuSign Connect messages (JSON, SIM format) read as c2c's ``ContractApproved``.

A Connect message names its event (``envelope-completed``), the account and the envelope,
and, as the Connect configuration asks, the envelope's summary with its custom fields and
documents' fields. The contract's terms are read from those through a mapping
(``c2c/docusign_mapping.json`` by default, ``C2C_DOCUSIGN_MAPPING_FILE`` to replace it), and
validated as any approval is. A term missing or invalid is a ``MappingError`` naming the
DocuSign field it was read from and the contract term it was meant for.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from domain.models import ContractApproved

ENVELOPE_COMPLETED = "envelope-completed"
#: The mapping c2c ships.
DEFAULT_MAPPING = Path(__file__).with_name("docusign_mapping.json")
_FORMATS = frozenset({"text", "json", "bool", "rate_card", "milestones"})
_TRUE = frozenset({"true", "yes", "y", "1", "x", "on"})
_FALSE = frozenset({"false", "no", "n", "0", "", "off"})
_INDEX = re.compile(r"^[0-9]{1,3}$")


class MappingError(ValueError):
    """A contract term could not be read from the message.

    Attributes:
        field: The DocuSign field at fault (``customFields.billing_model``).
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Source:
    """Where one contract term is read from, in order of preference."""

    term: str
    custom_field: str | None = None
    document_field: str | None = None
    envelope: str | None = None
    format: str = "text"
    default: str | None = None
    optional: bool = False

    def names(self) -> list[str]:
        found = []
        if self.custom_field:
            found.append(f"customFields.{self.custom_field}")
        if self.document_field:
            found.append(f"documentFields.{self.document_field}")
        if self.envelope:
            found.append(f"envelopeSummary.{self.envelope}")
        return found


@dataclass(frozen=True)
class Mapping:
    """Every contract term's sources, and the prefix of custom fields named by term path."""

    sources: tuple[Source, ...]
    path_prefix: str | None = None


def load_mapping(path: Path | None = None) -> Mapping:
    """Read a mapping file (the default one when ``path`` is ``None``).

    Raises:
        ValueError: The file is not a valid mapping, with the entry at fault.
    """
    return _load(str(path or DEFAULT_MAPPING))


@lru_cache(maxsize=8)
def _load(path: str) -> Mapping:
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"DocuSign mapping {path}: {exc}") from None
    fields = raw.get("fields") if isinstance(raw, dict) else None
    if not isinstance(fields, dict) or not fields:
        raise ValueError(f"DocuSign mapping {path}: 'fields' must be an object of terms")
    known = set(ContractApproved.model_fields)
    sources = []
    for term, spec in fields.items():
        if term.split(".")[0] not in known or not isinstance(spec, dict):
            raise ValueError(f"DocuSign mapping {path}: {term!r} is not a contract term")
        allowed = {"custom_field", "document_field", "envelope", "format", "default", "optional"}
        extra = sorted(set(spec) - allowed)
        if extra:
            raise ValueError(f"DocuSign mapping {path}: {term}: unknown keys {extra}")
        source = Source(term=term, **spec)
        if source.format not in _FORMATS:
            raise ValueError(f"DocuSign mapping {path}: {term}: unknown format {source.format!r}")
        if not source.names() and source.default is None:
            raise ValueError(f"DocuSign mapping {path}: {term}: no source and no default")
        sources.append(source)
    prefix = raw.get("path_prefix")
    return Mapping(tuple(sources), prefix if isinstance(prefix, str) and prefix else None)


@dataclass(frozen=True)
class ConnectMessage:
    """What c2c reads of a Connect message."""

    event: str
    account_id: str
    envelope_id: str
    status: str
    summary: dict[str, Any]

    @property
    def has_custom_fields(self) -> bool:
        return isinstance(self.summary.get("customFields"), dict)

    def custom_fields(self) -> dict[str, str]:
        """Text and list custom fields by name (a list field's chosen value)."""
        fields = self.summary.get("customFields") or {}
        values: dict[str, str] = {}
        for kind in ("textCustomFields", "listCustomFields"):
            for field in fields.get(kind) or []:
                if isinstance(field, dict) and isinstance(field.get("name"), str):
                    value = field.get("value")
                    values[field["name"]] = value if isinstance(value, str) else ""
        return values

    def document_fields(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for document in self.summary.get("envelopeDocuments") or []:
            if not isinstance(document, dict):
                continue
            for field in document.get("documentFields") or []:
                if isinstance(field, dict) and isinstance(field.get("name"), str):
                    value = field.get("value")
                    values.setdefault(field["name"], value if isinstance(value, str) else "")
        return values


def parse_message(payload: Any) -> ConnectMessage:
    """Read a Connect message's event, account, envelope and summary.

    Raises:
        MappingError: A field c2c needs is missing or not a string.
    """
    if not isinstance(payload, dict):
        raise MappingError("", "the body must be a JSON object (a Connect JSON message)")
    event = payload.get("event")
    if not isinstance(event, str) or not event:
        raise MappingError("event", "Field required: the Connect event name")
    data = payload.get("data")
    if not isinstance(data, dict):
        raise MappingError("data", "Field required: an object")
    for name in ("accountId", "envelopeId"):
        if not isinstance(data.get(name), str) or not data[name].strip():
            raise MappingError(f"data.{name}", "Field required: a string")
    summary = data.get("envelopeSummary")
    if summary is None:
        summary = {}
    if not isinstance(summary, dict):
        raise MappingError("data.envelopeSummary", "must be an object")
    status = summary.get("status")
    if not isinstance(status, str) or not status:
        # The event names the status it reports: envelope-completed is "completed".
        status = event.removeprefix("envelope-")
    return ConnectMessage(
        event=event,
        account_id=data["accountId"].strip(),
        envelope_id=data["envelopeId"].strip(),
        status=status,
        summary=summary,
    )


def to_contract(message: ConnectMessage, mapping: Mapping) -> ContractApproved:
    """The approval a completed envelope carries.

    Raises:
        MappingError: A term is missing or invalid; names the DocuSign field and the term.
    """
    custom = message.custom_fields()
    documents = message.document_fields()
    terms: dict[str, Any] = {}
    read_from: dict[str, str] = {}
    for source in mapping.sources:
        found = _value(source, custom, documents, message.summary)
        if found is None:
            if source.default is not None:
                found = ("default", source.default)
            elif source.optional:
                continue
            else:
                raise MappingError(
                    source.names()[0],
                    f"{' or '.join(source.names())} is missing (contract term {source.term})",
                )
        where, text = found
        if source.optional and not text.strip():
            continue
        _set(terms, source.term, _read(source, where, text))
        read_from[source.term] = where
    if mapping.path_prefix:
        for name, text in custom.items():
            if name.startswith(mapping.path_prefix) and len(name) > len(mapping.path_prefix):
                term = name[len(mapping.path_prefix) :]
                if term.split(".")[0] not in ContractApproved.model_fields:
                    raise MappingError(
                        f"customFields.{name}",
                        f"customFields.{name}: {term!r} is not a contract term",
                    )
                _set(terms, term, text)
                read_from[term] = f"customFields.{name}"
    terms["event_id"] = f"docusign-{message.envelope_id}"[:64]
    terms["signed_document"] = {
        "source": "docusign",
        "account_id": message.account_id,
        "envelope_id": message.envelope_id,
    }
    try:
        return ContractApproved.model_validate(terms)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = ".".join(str(part) for part in error["loc"])
        where = _source_of(loc, read_from)
        raise MappingError(
            where, f"{where}: {error['msg']} (contract term {loc or 'contract'})"
        ) from None


def _value(
    source: Source, custom: dict[str, str], documents: dict[str, str], summary: dict[str, Any]
) -> tuple[str, str] | None:
    if source.custom_field and source.custom_field in custom:
        return f"customFields.{source.custom_field}", custom[source.custom_field]
    if source.document_field and source.document_field in documents:
        return f"documentFields.{source.document_field}", documents[source.document_field]
    if source.envelope:
        node: Any = summary
        for part in source.envelope.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, str) and node:
            return f"envelopeSummary.{source.envelope}", node
    return None


def _read(source: Source, where: str, text: str) -> Any:
    """A source's text as the term's value."""
    text = text.strip()
    if source.format == "json":
        try:
            return json.loads(text)
        except ValueError:
            raise MappingError(
                where, f"{where} is not valid JSON (contract term {source.term})"
            ) from None
    if source.format == "bool":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise MappingError(where, f"{where}: {text!r} is not yes or no ({source.term})")
    if source.format == "rate_card":
        entries = []
        for item in _items(text):
            role, sep, rate = item.rpartition("=")
            if not sep or not role.strip():
                raise MappingError(
                    where, f"{where}: {item!r} is not 'role=hourly rate' ({source.term})"
                )
            entries.append({"role": role.strip(), "hourly_rate": rate.strip()})
        return entries
    if source.format == "milestones":
        milestones = []
        for item in _items(text):
            parts = [part.strip() for part in item.split("|")]
            if len(parts) not in (3, 4):
                raise MappingError(
                    where, f"{where}: {item!r} is not 'id|name|amount[|due date]' ({source.term})"
                )
            milestone = {"milestone_id": parts[0], "name": parts[1], "amount": parts[2]}
            if len(parts) == 4 and parts[3]:
                milestone["due_date"] = parts[3]
            milestones.append(milestone)
        return milestones
    return text


def _items(text: str) -> list[str]:
    return [item.strip() for item in text.split(";") if item.strip()]


def _set(terms: dict[str, Any], path: str, value: Any) -> None:
    """Set a dotted term path (``customer.name``, ``milestones.0.amount``)."""
    parts = path.split(".")
    node: Any = terms
    for part, following in zip(parts, [*parts[1:], None], strict=True):
        if following is None:
            _put(node, part, value)
            return
        child = _get(node, part)
        if child is None:
            child = [] if _INDEX.match(following) else {}
            _put(node, part, child)
        node = child


def _get(node: Any, part: str) -> Any:
    if isinstance(node, list):
        index = int(part) if _INDEX.match(part) else -1
        return node[index] if 0 <= index < len(node) else None
    return node.get(part)


def _put(node: Any, part: str, value: Any) -> None:
    if isinstance(node, list):
        if not _INDEX.match(part):
            raise MappingError(part, f"{part!r} is not a list position")
        index = int(part)
        while len(node) <= index:
            node.append({})
        node[index] = value
    else:
        node[part] = value


def _source_of(loc: str, read_from: dict[str, str]) -> str:
    """The DocuSign field a contract term at ``loc`` was read from (the closest mapped one)."""
    parts = loc.split(".")
    for end in range(len(parts), 0, -1):
        where = read_from.get(".".join(parts[:end]))
        if where is not None:
            return where
    return f"contract term {loc}" if loc else "contract"
