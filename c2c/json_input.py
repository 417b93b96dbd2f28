"""JSON from outside c2c, read with a limit on how deeply it nests.

Python's parser recurses once per level, so a few kilobytes of ``[[[[…`` raise
``RecursionError`` in it or in whatever walks the result (validation, logging, the ledger).
No payload c2c reads nests more than a few levels, so anything deeper than ``MAX_DEPTH`` is
refused as malformed input, before any of that code sees it.
"""

from __future__ import annotations

import json
from typing import Any

#: The deepest nesting of objects and arrays accepted; c2c's own payloads use five or six.
MAX_DEPTH = 32


class JsonTooDeep(ValueError):
    """The document nests objects or arrays deeper than ``MAX_DEPTH``."""


def loads(text: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse a JSON document whose objects and arrays nest at most ``max_depth`` levels.

    Raises:
        JsonTooDeep: It nests deeper (including so deep that the parser itself gave up).
        ValueError: It is not JSON (``json.JSONDecodeError``, ``UnicodeDecodeError``).
    """
    try:
        document = json.loads(text)
    except RecursionError:
        raise JsonTooDeep(too_deep_message(max_depth)) from None
    if depth_of(document, max_depth) > max_depth:
        raise JsonTooDeep(too_deep_message(max_depth))
    return document


def too_deep_message(max_depth: int = MAX_DEPTH) -> str:
    """The problem, as an error names it."""
    return f"the JSON nests objects and arrays more than {max_depth} levels deep"


def depth_of(document: Any, stop_after: int = MAX_DEPTH) -> int:
    """How deeply ``document`` nests (a scalar is 0, ``[]`` is 1), counted without
    recursion; counting stops once it passes ``stop_after``."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(document, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        if deepest > stop_after:
            return deepest
        stack.extend((child, depth) for child in children)
    return deepest
