"""The one template language of agentsms: ``{{name}}`` placeholders in a text.

Used by message bodies and stored templates (``core.templates``: ``strict``, a missing
variable is an error the caller must fix) and by pathways (``agents.flow``: lenient, a
missing variable renders empty, since a conversation cannot stop to ask).

Syntax:

* ``{{name}}``, with optional spaces inside the braces. A name is letters, digits,
  ``_ . -`` and does not start with ``.`` or ``-``, so Twilio-style ``{{1}}`` works.
* ``{{a.b}}``: the name as one key when the values have that key, else the path ``a``
  then ``b`` through nested objects.
* ``{{name | fallback}}``: the fallback text when the value is missing, null or empty.

A value that is a string renders as it is; any other value as its JSON
(``3``, ``true``, ``{"a": 1}``). Text that is not a placeholder (``{text}``, a lone
``{{``) is left as written; ``malformed`` finds it for editors that want to refuse it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

__all__ = [
    "PLACEHOLDER",
    "MissingVariableError",
    "has_placeholders",
    "lookup",
    "malformed",
    "placeholders",
    "render",
]

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_][A-Za-z0-9_.-]*)\s*(?:\|([^{}]*))?\}\}")
"""``{{name}}``, ``{{a.b}}`` or ``{{name | fallback}}``: group 1 the name, group 2 the
fallback (``None`` when there is none)."""


class MissingVariableError(KeyError):
    """A placeholder of a strict rendering had no value (and no fallback)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def has_placeholders(text: str) -> bool:
    return "{{" in text and PLACEHOLDER.search(text) is not None


def placeholders(text: str) -> list[str]:
    """The placeholder names of ``text``, in order of first use."""
    return list(dict.fromkeys(m.group(1) for m in PLACEHOLDER.finditer(text)))


def malformed(text: str) -> bool:
    """Whether ``text`` has braces ``{{`` / ``}}`` that are not part of a placeholder."""
    rest = PLACEHOLDER.sub("", text)
    return "{{" in rest or "}}" in rest


def lookup(values: Mapping[str, Any], name: str) -> Any:
    """The value of ``name``: the key itself when present, else its dotted path through
    nested mappings; ``None`` when any part is missing."""
    if name in values:
        return values[name]
    value: Any = values
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def render(
    template: str, values: Mapping[str, Any], *, strict: bool = False, url: bool = False
) -> str:
    """``template`` with each placeholder filled from ``values``.

    A missing, null or empty value renders as the placeholder's fallback when it has one.
    Otherwise an empty string renders empty, and a missing or null value raises
    :class:`MissingVariableError` when ``strict``, else renders empty. With ``url`` each
    value is percent-encoded (for a value placed in a URL).
    """
    if "{{" not in template:
        return template

    def substitute(match: re.Match[str]) -> str:
        name, fallback = match.group(1), match.group(2)
        value = lookup(values, name)
        if value is None or value == "":
            if fallback is not None:
                return fallback.strip()
            if value is None and strict:
                raise MissingVariableError(name)
            return ""
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        return quote(text, safe="") if url else text

    return PLACEHOLDER.sub(substitute, template)
