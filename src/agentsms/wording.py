"""Wording shared by the opt-out keywords (``core.compliance``) and the flow agent's
understanding of a reply: invisible characters, and the polite padding around a word."""

from __future__ import annotations

__all__ = ["INVISIBLE", "PADDING", "strip_padding"]

INVISIBLE = dict.fromkeys(
    map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e\ufe0e\ufe0f\u200e\u200f"), None
)
"""A :meth:`str.translate` table removing zero-width and other invisible characters."""
PADDING = frozenset(
    [
        "please",
        "pls",
        "plz",
        "plse",
        "thanks",
        "thank",
        "you",
        "thx",
        "ty",
        "now",
        "me",
        "it",
        "all",
        "asap",
        "immediately",
        "just",
        "ok",
        "okay",
        "already",
        "right",
        "away",
        "hi",
        "hello",
        "hey",
        "sorry",
        "and",
        "so",
    ]
)
"""Words that pad a request without changing it ("please", "thanks", "now", ...)."""


def strip_padding(words: list[str]) -> list[str]:
    """The words without polite padding at either end ("please", "thanks", "now", ...)."""
    start, end = 0, len(words)
    while start < end and words[start] in PADDING:
        start += 1
    while end > start and words[end - 1] in PADDING:
        end -= 1
    return words[start:end]
