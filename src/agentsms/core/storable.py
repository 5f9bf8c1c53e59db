"""What the databases can store and the API can answer with: text without NUL characters
or lone UTF-16 surrogates, finite numbers, integers within 64 bits."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from typing import Any

from agentsms.errors import FieldError
from agentsms.numeric import INT64_MAX, INT64_MIN

METADATA_MAX_BYTES = 16_384
"""A message's, a batch's or a conversation's ``metadata``, as compact JSON, fits in this."""


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored (a NUL or a lone surrogate), else ``None``."""
    if "\x00" in text:
        return "must not contain NUL characters"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode text (a lone surrogate)"
    return None


def json_problems(value: object, path: str = "") -> Iterator[FieldError]:
    """Every key or value of a parsed JSON document that cannot be stored: NUL characters,
    lone surrogates, non-finite numbers, integers beyond 64 bits."""
    if isinstance(value, str):
        reason = text_problem(value)
        if reason is not None:
            yield FieldError(path or "body", reason)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, float):
        if not math.isfinite(value):
            yield FieldError(path or "body", "must be a finite number")
    elif isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            yield FieldError(path or "body", "is out of range (64-bit integers only)")
    elif isinstance(value, dict):
        for key, item in value.items():
            reason = text_problem(key)
            if reason is not None:
                yield FieldError(path or "body", f"has a key that {reason}")
                continue
            yield from json_problems(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from json_problems(item, f"{path}[{index}]")


def metadata_problem(metadata: Mapping[str, Any]) -> str | None:
    """Why ``metadata`` is refused (too large), else ``None``."""
    if not metadata:
        return None
    size = len(json.dumps(metadata, separators=(",", ":"), ensure_ascii=False).encode())
    if size > METADATA_MAX_BYTES:
        return f"is {size} bytes as JSON; the limit is {METADATA_MAX_BYTES}"
    return None
