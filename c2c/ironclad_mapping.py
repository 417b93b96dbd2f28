"""A completed Ironclad workflow read as c2c's ``ContractApproved``.

Ironclad's Retrieve a Workflow (``GET /public/api/v1/workflows/{id}``) gives the workflow's
``status``, ``title``, ``creator``, ``lastUpdated`` and its ``attributes`` (each field of the
workflow's form, by attribute id). The contract's terms are read from those through a mapping
(``c2c/ironclad_mapping.json`` by default, ``C2C_IRONCLAD_MAPPING_FILE`` to replace it), read
as DocuSign's custom fields are (``c2c.docusign_connect``: the same formats and defaults) and
validated as any approval is. A term missing or invalid is a ``MappingError`` naming the
Ironclad field (``attributes.billingModel``) and the contract term it was meant for.

Mapping runs in the worker (the intake's activity, which read the workflow from Ironclad);
the API only verifies and records the webhook.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from pydantic import ValidationError

from c2c.docusign_connect import MappingError, Source, _read, _set, _source_of
from domain.models import ContractApproved

#: The mapping c2c ships.
DEFAULT_MAPPING = Path(__file__).with_name("ironclad_mapping.json")
#: The workflow status of a completed workflow.
COMPLETED = "completed"
_FORMATS = frozenset({"text", "date", "json", "bool", "rate_card", "milestones"})
_DATE = re.compile(r"^([0-9]{4}-[0-9]{2}-[0-9]{2})(T.*)?$")
_DOCUMENT_KEY = re.compile(r"/document/([^/]+)/download")

__all__ = ["IroncladMapping", "MappingError", "TermSource", "load_mapping", "to_contract"]


@dataclass(frozen=True)
class TermSource:
    """Where one contract term is read from, in order of preference."""

    term: str
    attribute: str | None = None
    workflow: str | None = None
    format: str = "text"
    default: str | None = None
    optional: bool = False

    def names(self) -> list[str]:
        found = []
        if self.attribute:
            found.append(f"attributes.{self.attribute}")
        if self.workflow:
            found.append(self.workflow)
        return found


@dataclass(frozen=True)
class IroncladMapping:
    """Every contract term's sources, and the attribute holding the signed copy."""

    sources: tuple[TermSource, ...]
    signed_document_attribute: str | None = None


def load_mapping(path: Path | None = None) -> IroncladMapping:
    """Read a mapping file (the default one when ``path`` is ``None``).

    Raises:
        ValueError: The file is not a valid mapping, with the entry at fault.
    """
    return _load(str(path or DEFAULT_MAPPING))


@lru_cache(maxsize=8)
def _load(path: str) -> IroncladMapping:
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"Ironclad mapping {path}: {exc}") from None
    fields = raw.get("fields") if isinstance(raw, dict) else None
    if not isinstance(fields, dict) or not fields:
        raise ValueError(f"Ironclad mapping {path}: 'fields' must be an object of terms")
    known = set(ContractApproved.model_fields)
    allowed = {"attribute", "workflow", "format", "default", "optional"}
    sources = []
    for term, spec in fields.items():
        if term.split(".")[0] not in known or not isinstance(spec, dict):
            raise ValueError(f"Ironclad mapping {path}: {term!r} is not a contract term")
        extra = sorted(set(spec) - allowed)
        if extra:
            raise ValueError(f"Ironclad mapping {path}: {term}: unknown keys {extra}")
        source = TermSource(term=term, **spec)
        if source.format not in _FORMATS:
            raise ValueError(f"Ironclad mapping {path}: {term}: unknown format {source.format!r}")
        if not source.names() and source.default is None:
            raise ValueError(f"Ironclad mapping {path}: {term}: no source and no default")
        sources.append(source)
    signed = raw.get("signed_document")
    attribute = signed.get("attribute") if isinstance(signed, dict) else None
    return IroncladMapping(tuple(sources), attribute if isinstance(attribute, str) else None)


def _text(value: Any) -> str | None:
    """An attribute's value as text: strings as they are, numbers and booleans written out,
    a monetary value's amount, a list or object as JSON; ``None`` for no value."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict) and "amount" in value:
        return _text(value["amount"])
    return json.dumps(value)


def _value(source: TermSource, workflow: dict[str, Any]) -> tuple[str, str] | None:
    attributes = workflow.get("attributes")
    if source.attribute and isinstance(attributes, dict):
        text = _text(attributes.get(source.attribute))
        if text is not None:
            return f"attributes.{source.attribute}", text
    if source.workflow:
        node: Any = workflow
        for part in source.workflow.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        text = _text(node)
        if text:
            return source.workflow, text
    return None


def _read_term(source: TermSource, where: str, text: str) -> Any:
    if source.format == "date":
        match = _DATE.match(text.strip())
        if match is None:
            raise MappingError(where, f"{where}: {text!r} is not a date ({source.term})")
        return match.group(1)
    return _read(Source(term=source.term, format=source.format), where, text)


def document_key(workflow: dict[str, Any], attribute: str) -> str | None:
    """The key of the signed copy a document attribute holds (the first document with one)."""
    attributes = workflow.get("attributes")
    value = attributes.get(attribute) if isinstance(attributes, dict) else None
    documents = value if isinstance(value, list) else [value]
    for document in documents:
        if not isinstance(document, dict):
            continue
        if isinstance(document.get("key"), str) and document["key"]:
            return str(document["key"])
        link = document.get("download")
        match = _DOCUMENT_KEY.search(link) if isinstance(link, str) else None
        if match:
            return unquote(match.group(1))
    return None


def to_contract(workflow: dict[str, Any], mapping: IroncladMapping) -> ContractApproved:
    """The approval a completed workflow carries.

    Raises:
        MappingError: The workflow is not completed, or a term is missing or invalid; names
            the Ironclad field and the term.
    """
    workflow_id = workflow.get("id")
    if not isinstance(workflow_id, str) or not workflow_id:
        raise MappingError("id", "id is missing: the workflow's id")
    status = workflow.get("status")
    if status != COMPLETED:
        raise MappingError("status", f"status is {status!r}, not {COMPLETED!r}")
    terms: dict[str, Any] = {}
    read_from: dict[str, str] = {}
    for source in mapping.sources:
        found = _value(source, workflow)
        if found is None:
            if source.default is not None:
                found = ("default", source.default)
            elif source.optional:
                continue
            else:
                names = " or ".join(source.names())
                raise MappingError(
                    source.names()[0], f"{names} is missing (contract term {source.term})"
                )
        where, text = found
        if source.optional and not text.strip():
            continue
        _set(terms, source.term, _read_term(source, where, text))
        read_from[source.term] = where
    terms["event_id"] = f"ironclad-{workflow_id}"[:64]
    if mapping.signed_document_attribute:
        key = document_key(workflow, mapping.signed_document_attribute)
        if key is None:
            where = f"attributes.{mapping.signed_document_attribute}"
            raise MappingError(where, f"{where} is missing: the workflow's signed copy")
        terms["signed_document"] = {
            "source": "ironclad",
            "workflow_id": workflow_id,
            "document_key": key,
        }
        read_from["signed_document"] = f"attributes.{mapping.signed_document_attribute}"
    try:
        return ContractApproved.model_validate(terms)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = ".".join(str(part) for part in error["loc"])
        where = _source_of(loc, read_from)
        raise MappingError(
            where, f"{where}: {error['msg']} (contract term {loc or 'contract'})"
        ) from None
