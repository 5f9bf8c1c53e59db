"""The one template language: the same placeholders, rendered strictly (message bodies and
stored templates) or leniently (pathways)."""

from __future__ import annotations

import pytest

from agentsms.templating import MissingVariableError, malformed, placeholders, render

VALUES = {"name": "Ana", "n": 3, "ok": True, "empty": "", "1": "John", "a.b": "flat"}
NESTED = {"user": {"first": "Bo", "tags": ["x"]}}


@pytest.mark.parametrize("strict", [True, False])
def test_both_modes_share_one_syntax(strict: bool) -> None:
    assert render("Hi {{name}} / {{ 1 }} / {{n}} / {{ok}}", VALUES, strict=strict) == (
        "Hi Ana / John / 3 / true"
    )
    assert render("{{user.first}} {{user.tags}}", NESTED, strict=strict) == 'Bo ["x"]'
    assert render("{{a.b}}", VALUES, strict=strict) == "flat"  # the key as written first
    assert render("{{missing | friend}} {{empty|none}}", VALUES, strict=strict) == "friend none"
    assert render("[{{empty}}]", VALUES, strict=strict) == "[]"
    assert render("plain {text} {{", VALUES, strict=strict) == "plain {text} {{"


def test_strict_refuses_a_missing_value_and_names_it() -> None:
    with pytest.raises(MissingVariableError) as caught:
        render("{{name}} {{user.last}}", {"name": "Ana", "user": {}}, strict=True)
    assert caught.value.name == "user.last"
    with pytest.raises(MissingVariableError):
        render("{{name}}", {"name": None}, strict=True)


def test_lenient_renders_a_missing_value_empty() -> None:
    assert render("Hi {{name}}!", {}) == "Hi !"
    assert render("Hi {{user.last}}!", NESTED) == "Hi !"


def test_url_values_are_percent_encoded() -> None:
    assert render("/q?n={{name}}", {"name": "a b/c"}, url=True) == "/q?n=a%20b%2Fc"


def test_names_and_malformed_text() -> None:
    assert placeholders("{{b}} {{a | x}} {{b}}") == ["b", "a"]
    assert malformed("Hi {{ first name }}")
    assert malformed("Hi {{name")
    assert not malformed("Hi {{name}} {{a.b | c}}")
