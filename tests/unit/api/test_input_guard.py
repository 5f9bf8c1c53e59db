"""The input guard's quick scan never lets through what its full check refuses."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agentsms.api.input_guard import json_body_problems
from agentsms.core.storable import json_problems

# Any text at all: lone surrogates (category Cs) and NUL included.
_TEXT = st.text(st.characters(codec=None, categories=None), max_size=8)
_SCALARS = (
    _TEXT
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.booleans()
    | st.none()
)
_DOCUMENTS = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(_DOCUMENTS, st.booleans())
def test_the_quick_scan_agrees_with_the_full_check(document: Any, ascii_only: bool) -> None:
    text = json.dumps({"value": document}, ensure_ascii=ascii_only)
    try:
        body = text.encode("utf-8")
    except UnicodeEncodeError:  # a raw lone surrogate: not UTF-8 at all
        body = text.encode("utf-8", "surrogatepass")
        assert [e.message for e in json_body_problems(body)] == ["is not valid UTF-8 text"]
        return
    assert json_body_problems(body) == list(json_problems(json.loads(text)))


def test_each_refusal_names_the_field_and_the_reason() -> None:
    body = (
        b'{"a": "\\ud800", "b": ["ok", "x\\u0000"], "c": {"d": NaN, "e": 1e309}, '
        b'"f": 18446744073709551616, "\\udc00": 1, "g": "\\ud83d\\ude00", "h": 1e-400}'
    )
    assert [(e.field, e.message) for e in json_body_problems(body)] == [
        ("a", "is not valid Unicode text (a lone surrogate)"),
        ("b[1]", "must not contain NUL characters"),
        ("c.d", "must be a finite number"),
        ("c.e", "must be a finite number"),
        ("f", "is out of range (64-bit integers only)"),
        ("body", "has a key that is not valid Unicode text (a lone surrogate)"),
    ]


def test_a_body_that_is_not_json_is_left_to_the_endpoint() -> None:
    assert json_body_problems(b"{nope NaN") == []
    assert json_body_problems(b"\xff\xfe", declared=False) == []
    assert json_body_problems(b"\xff\xfe")[0].message == "is not valid UTF-8 text"
