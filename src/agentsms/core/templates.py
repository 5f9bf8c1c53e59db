"""``{{variable}}`` placeholders in message bodies."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}")


class MissingVariableError(KeyError):
    """A placeholder had no value."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def has_placeholders(body: str) -> bool:
    return "{{" in body and _PLACEHOLDER.search(body) is not None


def fill(body: str, variables: Mapping[str, Any]) -> str:
    """Replace each ``{{name}}`` with ``variables[name]``; raise for the first missing one."""
    if "{{" not in body:
        return body

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in variables or variables[name] is None:
            raise MissingVariableError(name)
        return str(variables[name])

    return _PLACEHOLDER.sub(substitute, body)
