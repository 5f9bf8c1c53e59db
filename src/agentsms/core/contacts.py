"""Contact usernames: a project may name people by a handle instead of a phone number.

The project setting ``contacts`` maps a username (letters, digits, ``_ . -``; matched
without regard to case, an optional leading ``@`` ignored) to an E.164 number. Wherever a
send takes a recipient (``to``), a username of the directory stands for its number; the
message, its conversation and its opt-out all use the number.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from agentsms.core.phone import InvalidPhoneNumberError, parse_phone

SETTING = "contacts"
MAX_CONTACTS = 10_000
_USERNAME = re.compile(r"^@?[A-Za-z0-9_.-]{1,64}$")


def is_username(value: str) -> bool:
    """Whether ``value`` is shaped like a username (it has a letter; not a phone number)."""
    return bool(_USERNAME.match(value)) and any(c.isalpha() for c in value)


def key(username: str) -> str:
    return username.removeprefix("@").lower()


def setting_problem(value: Any) -> str | None:
    """Why a ``contacts`` setting is invalid, or ``None``."""
    if not isinstance(value, Mapping):
        return "must be an object mapping usernames to E.164 numbers"
    if len(value) > MAX_CONTACTS:
        return f"at most {MAX_CONTACTS} contacts"
    for username, number in value.items():
        if not isinstance(username, str) or not is_username(username):
            return (
                f"{username!r} is not a username (1 to 64 letters, digits, '_', '.', '-', "
                "with at least one letter)"
            )
        if not isinstance(number, str):
            return f"{username}: must be an E.164 phone number"
        try:
            parse_phone(number)
        except InvalidPhoneNumberError as error:
            return f"{username}: {error.reason}"
    return None


def directory(project_settings: Mapping[str, Any]) -> dict[str, str]:
    """The project's usernames (normalised) and their numbers."""
    given = project_settings.get(SETTING) or {}
    return {key(name): number for name, number in given.items()}
