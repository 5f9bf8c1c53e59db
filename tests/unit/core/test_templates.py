from __future__ import annotations

import pytest

from agentsms.core.templates import MissingVariableError, fill, has_placeholders


def test_fills_every_placeholder_with_spacing_variants() -> None:
    assert fill("Hi {{name}}, see you {{ day }}", {"name": "Ana", "day": "Monday"}) == (
        "Hi Ana, see you Monday"
    )


def test_non_string_values_are_rendered() -> None:
    assert fill("{{n}} items", {"n": 3}) == "3 items"


def test_missing_variable_names_it() -> None:
    with pytest.raises(MissingVariableError) as caught:
        fill("Hi {{name}} on {{day}}", {"name": "Ana"})
    assert caught.value.name == "day"


def test_none_counts_as_missing() -> None:
    with pytest.raises(MissingVariableError):
        fill("Hi {{name}}", {"name": None})


def test_text_without_placeholders_is_untouched() -> None:
    assert fill("plain {text}", {}) == "plain {text}"
    assert not has_placeholders("plain {text}")
    assert has_placeholders("a {{b}}")
