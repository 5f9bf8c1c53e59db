"""Agent configs and pathways are checked on upload, with errors naming the node."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from agentsms.agents import (
    build_agent,
    check_start_node,
    load_demo_pathway,
    validate_agent_config,
)
from agentsms.agents.pathway import load_pathway_text, parse_pathway
from agentsms.errors import ValidationFailed

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def base() -> dict[str, Any]:
    """A small valid pathway the cases below break one way each."""
    return {
        "start": "q",
        "nodes": [
            {
                "id": "q",
                "type": "ask",
                "text": "Yes or no?",
                "answers": [{"keywords": ["yes"], "next": "done"}],
                "unclear": {"max_retries": 1, "next": "done"},
            },
            {"id": "done", "type": "end", "outcome": "answered"},
        ],
    }


def node(pathway: dict[str, Any], node_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(n for n in pathway["nodes"] if n["id"] == node_id)
    return found


def case_unknown_next(p: dict[str, Any]) -> None:
    node(p, "q")["answers"][0]["next"] = "nowhere"


def case_unknown_unclear_next(p: dict[str, Any]) -> None:
    node(p, "q")["unclear"]["next"] = "gone"


def case_missing_start(p: dict[str, Any]) -> None:
    del p["start"]


def case_unknown_start(p: dict[str, Any]) -> None:
    p["start"] = "begin"


def case_unreachable(p: dict[str, Any]) -> None:
    p["nodes"].append({"id": "orphan", "type": "end", "outcome": "x"})


def case_bad_regex(p: dict[str, Any]) -> None:
    node(p, "q")["answers"].append({"regex": "(unclosed", "next": "done"})


def case_duplicate_id(p: dict[str, Any]) -> None:
    p["nodes"].append({"id": "done", "type": "end", "outcome": "again"})


def case_end_without_outcome(p: dict[str, Any]) -> None:
    del node(p, "done")["outcome"]


def case_unknown_type(p: dict[str, Any]) -> None:
    p["nodes"].append({"id": "x", "type": "dance", "next": "done"})


def case_missing_type(p: dict[str, Any]) -> None:
    p["nodes"].append({"id": "x", "next": "done"})


def case_ask_without_way_out(p: dict[str, Any]) -> None:
    del node(p, "q")["unclear"]


def case_answer_without_test(p: dict[str, Any]) -> None:
    node(p, "q")["answers"][0] = {"next": "done"}


def case_unknown_field(p: dict[str, Any]) -> None:
    node(p, "q")["colour"] = "red"


def case_extract_regex_without_pattern(p: dict[str, Any]) -> None:
    node(p, "q")["answers"][0]["next"] = "grab"
    p["nodes"].append(
        {
            "id": "grab",
            "type": "extract",
            "variable": "code",
            "method": "regex",
            "next": "done",
            "unclear": {"next": "done"},
        }
    )


def case_extract_bad_variable(p: dict[str, Any]) -> None:
    node(p, "q")["answers"][0]["next"] = "grab"
    p["nodes"].append(
        {"id": "grab", "type": "extract", "variable": "new time", "method": "text", "next": "done"}
    )


def case_branch_two_tests(p: dict[str, Any]) -> None:
    node(p, "q")["answers"][0]["next"] = "b"
    p["nodes"].append(
        {
            "id": "b",
            "type": "branch",
            "branches": [{"var": "x", "equals": 1, "gt": 0, "next": "done"}],
            "default": "done",
        }
    )


def case_branch_unknown_default(p: dict[str, Any]) -> None:
    node(p, "q")["answers"][0]["next"] = "b"
    p["nodes"].append(
        {
            "id": "b",
            "type": "branch",
            "branches": [{"var": "x", "exists": True, "next": "done"}],
            "default": "elsewhere",
        }
    )


def case_branch_bad_matches(p: dict[str, Any]) -> None:
    node(p, "q")["answers"][0]["next"] = "b"
    p["nodes"].append(
        {
            "id": "b",
            "type": "branch",
            "branches": [{"var": "x", "matches": "[a-", "next": "done"}],
            "default": "done",
        }
    )


def case_webhook_unknown_on_error(p: dict[str, Any]) -> None:
    node(p, "q")["answers"][0]["next"] = "hook"
    p["nodes"].append(
        {
            "id": "hook",
            "type": "webhook",
            "url": "https://example.com/x",
            "next": "done",
            "on_error": "oops",
        }
    )


def case_llm_node_bad_agent(p: dict[str, Any]) -> None:
    node(p, "q")["answers"][0]["next"] = "ai"
    p["nodes"].append({"id": "ai", "type": "llm", "agent": {"temperature": 9}})


def case_say_loop(p: dict[str, Any]) -> None:
    node(p, "q")["answers"][0]["next"] = "a"
    p["nodes"] += [
        {"id": "a", "type": "say", "text": "A", "next": "b"},
        {"id": "b", "type": "say", "text": "B", "next": "a"},
    ]


def case_nodes_not_a_list(p: dict[str, Any]) -> None:
    p["nodes"] = "q, done"


def case_no_nodes(p: dict[str, Any]) -> None:
    p["nodes"] = []


def case_no_end(p: dict[str, Any]) -> None:
    p["nodes"] = [{"id": "q", "type": "ask", "text": "Again?", "next": "q"}]


def case_mapping_key_differs(p: dict[str, Any]) -> None:
    p["nodes"] = {n["id"]: n for n in p["nodes"]}
    p["nodes"]["done"]["id"] = "finish"


def case_bad_node_id(p: dict[str, Any]) -> None:
    p["nodes"].append({"id": "has space", "type": "end", "outcome": "x"})


def case_negative_retries(p: dict[str, Any]) -> None:
    node(p, "q")["unclear"]["max_retries"] = -1


def case_bad_placeholder(p: dict[str, Any]) -> None:
    node(p, "q")["text"] = "Hi {{ first name }}, yes or no?"


def case_unclosed_placeholder(p: dict[str, Any]) -> None:
    node(p, "q")["unclear"]["text"] = "Sorry {{name, yes or no?"


CASES = [
    (case_bad_placeholder, "agent.pathway.nodes.q.text", "malformed placeholder"),
    (case_unclosed_placeholder, "agent.pathway.nodes.q.unclear.text", "malformed placeholder"),
    (case_unknown_next, "agent.pathway.nodes.q.answers[0].next", "unknown node 'nowhere'"),
    (case_unknown_unclear_next, "agent.pathway.nodes.q.unclear.next", "unknown node 'gone'"),
    (case_missing_start, "agent.pathway.start", "required"),
    (case_unknown_start, "agent.pathway.start", "unknown node 'begin'"),
    (case_unreachable, "agent.pathway.nodes.orphan", "unreachable from the start node 'q'"),
    (case_bad_regex, "agent.pathway.nodes.q.answers[1].regex", "invalid regular expression"),
    (case_duplicate_id, "agent.pathway.nodes.done.id", "duplicate node id 'done'"),
    (case_end_without_outcome, "agent.pathway.nodes.done.outcome", "required"),
    (case_unknown_type, "agent.pathway.nodes.x.type", "unknown node type"),
    (case_missing_type, "agent.pathway.nodes.x.type", "required: the node type"),
    (case_ask_without_way_out, "agent.pathway.nodes.q", "needs `next`"),
    (
        case_answer_without_test,
        "agent.pathway.nodes.q.answers[0]",
        "keywords, regex, choices or intent",
    ),
    (case_unknown_field, "agent.pathway.nodes.q.colour", "unknown field"),
    (case_extract_regex_without_pattern, "agent.pathway.nodes.grab", "needs a `pattern`"),
    (case_extract_bad_variable, "agent.pathway.nodes.grab.variable", "should match pattern"),
    (case_branch_two_tests, "agent.pathway.nodes.b.branches[0]", "exactly one of"),
    (case_branch_unknown_default, "agent.pathway.nodes.b.default", "unknown node 'elsewhere'"),
    (case_branch_bad_matches, "agent.pathway.nodes.b.branches[0].matches", "invalid regular"),
    (case_webhook_unknown_on_error, "agent.pathway.nodes.hook.on_error", "unknown node 'oops'"),
    (case_llm_node_bad_agent, "agent.pathway.nodes.ai.agent.model", "required"),
    (case_say_loop, "agent.pathway.nodes.a", "never waits for a reply"),
    (case_nodes_not_a_list, "agent.pathway.nodes", "must be a list of nodes"),
    (case_no_nodes, "agent.pathway.nodes", "at least one node"),
    (case_no_end, "agent.pathway.nodes", "needs an end node"),
    (case_mapping_key_differs, "agent.pathway.nodes.done.id", "differs from the node's key"),
    (case_bad_node_id, "agent.pathway.nodes.has space.id", "should match pattern"),
    (case_negative_retries, "agent.pathway.nodes.q.unclear.max_retries", "greater than or equal"),
]


@pytest.mark.parametrize(("breaks", "field", "message"), CASES, ids=[c[0].__name__ for c in CASES])
def test_invalid_pathway_names_the_node(breaks: Any, field: str, message: str) -> None:
    pathway = base()
    validate_agent_config({"kind": "flow", "pathway": copy.deepcopy(pathway)})  # the base is fine
    breaks(pathway)
    with pytest.raises(ValidationFailed) as failed:
        validate_agent_config({"kind": "flow", "pathway": pathway})
    error = failed.value
    assert error.status == 422
    assert error.code == "invalid_pathway"
    found = {(e.field, e.message) for e in error.errors}
    assert any(f == field and message in m for f, m in found), found
    with pytest.raises(ValidationFailed):
        build_agent({"kind": "flow", "pathway": pathway})


def test_every_problem_is_reported_at_once() -> None:
    pathway = base()
    node(pathway, "q")["answers"][0]["next"] = "nowhere"
    node(pathway, "q")["answers"].append({"regex": "(", "next": "done"})
    del node(pathway, "done")["outcome"]
    with pytest.raises(ValidationFailed) as failed:
        parse_pathway(pathway)
    fields = {e.field for e in failed.value.errors}
    assert fields == {
        "agent.pathway.nodes.q.answers[0].next",
        "agent.pathway.nodes.q.answers[1].regex",
        "agent.pathway.nodes.done.outcome",
    }
    assert "(and 2 more)" in failed.value.detail


def test_nodes_may_be_a_mapping_of_id_to_node() -> None:
    pathway = base()
    pathway["nodes"] = {n.pop("id"): n for n in pathway["nodes"]}
    parsed = parse_pathway(pathway)
    assert list(parsed.nodes) == ["q", "done"]


def test_the_demo_pathway_is_valid_and_loads_from_json_and_yaml() -> None:
    demo = load_demo_pathway()
    validate_agent_config({"kind": "flow", "pathway": demo})
    assert load_pathway_text(json.dumps(demo)) == demo
    assert load_pathway_text(yaml.safe_dump(demo, allow_unicode=True)) == demo
    assert demo["start"] == "remind"
    assert load_demo_pathway() is not demo  # a fresh copy each call


def test_unparseable_pathway_text_names_the_field() -> None:
    with pytest.raises(ValidationFailed) as failed:
        load_pathway_text("nodes: [unclosed")
    assert failed.value.errors[0].field == "agent.pathway"
    assert "JSON or YAML" in failed.value.errors[0].message


@pytest.mark.parametrize(
    ("config", "field", "message"),
    [
        ("flow", "agent", "must be an object"),
        ({}, "agent.kind", "must be one of flow, llm, webhook"),
        ({"kind": "robot"}, "agent.kind", "must be one of"),
        ({"kind": "flow"}, "agent.pathway", "required"),
        ({"kind": "flow", "pathway": []}, "agent.pathway", "valid dictionary"),
        ({"kind": "llm"}, "agent.model", "required"),
        ({"kind": "llm", "model": "m", "base_url": "ftp://x"}, "agent.base_url", "http(s) URL"),
        ({"kind": "llm", "model": "m", "temperature": 3}, "agent.temperature", "less than"),
        (
            {"kind": "llm", "model": "m", "api_key_env": "AGENTSMS_SECRET_KEY"},
            "agent.api_key_env",
            "never names a server environment variable",
        ),
        ({"kind": "llm", "model": "m", "api_key_env": None}, "agent.api_key_env", "never names"),
        ({"kind": "llm", "model": "m", "prompt": "x"}, "agent.prompt", "unknown field"),
        ({"kind": "webhook", "secret": SECRET}, "agent.url", "required"),
        ({"kind": "webhook", "url": "example.com", "secret": SECRET}, "agent.url", "http(s) URL"),
        ({"kind": "webhook", "url": "https://a.example"}, "agent.secret", "required"),
        (
            {"kind": "webhook", "url": "https://a.example", "secret": "not base64!"},
            "agent.secret",
            "whsec_ + base64",
        ),
        (
            {"kind": "webhook", "url": "https://a.example", "secret": "whsec_c2hvcnQ="},
            "agent.secret",
            "at least 16",
        ),
    ],
)
def test_invalid_agent_config(config: Any, field: str, message: str) -> None:
    with pytest.raises(ValidationFailed) as failed:
        validate_agent_config(config)
    assert failed.value.code == "invalid_agent_config"
    assert any(e.field == field and message in e.message for e in failed.value.errors), (
        failed.value.errors
    )


@pytest.mark.parametrize(
    "config",
    [
        {
            "kind": "llm",
            "model": "llama3",
            "base_url": "http://127.0.0.1:11434/v1",
        },
        {"kind": "webhook", "url": "https://agent.example/turn", "secret": SECRET},
        {"kind": "flow", "pathway": load_demo_pathway()},
    ],
)
def test_valid_agent_configs_build(config: dict[str, Any]) -> None:
    validate_agent_config(config)
    agent = build_agent(config)
    assert callable(agent.respond)


def test_check_start_node() -> None:
    demo = {"kind": "flow", "pathway": load_demo_pathway()}
    check_start_node(demo, None)
    check_start_node(demo, "ask_new_time")
    with pytest.raises(ValidationFailed) as failed:
        check_start_node(demo, "nope", "conversation.start_node_id")
    assert failed.value.errors[0].field == "conversation.start_node_id"
    assert "unknown node 'nope'" in failed.value.errors[0].message
    webhook = {"kind": "webhook", "url": "https://agent.example/turn", "secret": SECRET}
    check_start_node(webhook, None)
    with pytest.raises(ValidationFailed) as failed:
        check_start_node(webhook, "remind")
    assert "only flow agents have nodes" in failed.value.errors[0].message
