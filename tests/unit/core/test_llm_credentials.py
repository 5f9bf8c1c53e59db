"""Which agent configs get the project's LLM key, and where each key goes."""

from __future__ import annotations

from typing import Any

import pytest

from agentsms.config import Settings
from agentsms.core.llm_credentials import llm_access, uses_llm

LLM_NODE = {"id": "ai", "type": "llm", "agent": {"model": "m"}}
SAY_NODE = {"id": "hi", "type": "say", "text": "Hi", "next": "ai"}


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"kind": "llm", "model": "m"}, True),
        ({"kind": "flow", "pathway": {"start": "hi", "nodes": [SAY_NODE, LLM_NODE]}}, True),
        ({"kind": "flow", "pathway": {"start": "ai", "nodes": {"ai": LLM_NODE}}}, True),
        ({"kind": "flow", "pathway": {"start": "hi", "nodes": [SAY_NODE]}}, False),
        ({"kind": "webhook", "url": "https://a.example", "secret": "x"}, False),
    ],
)
def test_uses_llm(config: dict[str, Any], expected: bool) -> None:
    assert uses_llm(config) is expected


def test_each_key_goes_only_where_it_belongs() -> None:
    settings = Settings(llm_base_url="https://llm.operator.example/v1/", llm_api_key="sk-op")
    operator_only = llm_access(settings, None)
    assert operator_only.endpoint(None) == ("https://llm.operator.example/v1", "sk-op")
    assert operator_only.endpoint("https://llm.operator.example/v1") == (
        "https://llm.operator.example/v1",
        "sk-op",
    )
    assert operator_only.endpoint("https://evil.example/v1") == ("https://evil.example/v1", None)
    with_project = llm_access(settings, "sk-project")
    assert with_project.endpoint(None) == ("https://llm.operator.example/v1", "sk-project")
    own = "https://own.example/v1"
    assert with_project.endpoint(own) == (own, "sk-project")
