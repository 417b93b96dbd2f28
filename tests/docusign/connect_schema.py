"""A JSON Schema from DocuSign's sample Connect message: the sample's fields, and their types."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SAMPLE = Path(__file__).with_name("connect.schema-v2.subset.json")


def schema_of(sample: Any) -> dict[str, Any]:
    """A schema that takes values shaped as ``sample``: objects with only its fields (none
    required), arrays of its first item's shape, and each scalar of its type."""
    if isinstance(sample, dict):
        return {
            "type": "object",
            "properties": {key: schema_of(value) for key, value in sample.items()},
            "additionalProperties": False,
        }
    if isinstance(sample, list):
        return {"type": "array", "items": schema_of(sample[0]) if sample else {}}
    if isinstance(sample, bool):
        return {"type": "boolean"}
    if isinstance(sample, int):
        return {"type": "integer"}
    if isinstance(sample, float):
        return {"type": "number"}
    if isinstance(sample, str):
        return {"type": "string"}
    return {}


def connect_schema() -> dict[str, Any]:
    """The schema of a Connect JSON (SIM) message, as far as c2c uses it."""
    schema = schema_of(json.loads(SAMPLE.read_text()))
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
