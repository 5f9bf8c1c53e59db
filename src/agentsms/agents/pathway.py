"""Pathways: the graph of nodes a ``flow`` agent walks, and its validation.

A pathway document (JSON or YAML) looks like::

    name: Appointment reminder
    start: greet
    variables: {name: there}          # defaults for {{templates}}
    nodes:
      - {id: greet, type: say, text: "Hi {{name}}!", next: question}
      - id: question
        type: ask
        text: "Reply YES to confirm"
        answers:
          - {keywords: [yes, "👍"], next: done}
          - {intent: cancel, next: done}   # "can't make it", "please cancel" ...
        unclear: {max_retries: 2, next: done}
      - {id: done, type: end, outcome: confirmed}

``nodes`` may also be a mapping from node id to node. Node types: ``say``, ``ask``,
``extract``, ``branch``, ``webhook``, ``llm`` and ``end`` (see the models below).
:func:`parse_pathway` checks the document and the graph and reports every problem with
a field path naming the node, e.g. ``agent.pathway.nodes.confirm.next``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Annotated, Any, Literal

import regex
import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from agentsms import templating
from agentsms.agents import gallery
from agentsms.agents.config import check_llm_config
from agentsms.errors import FieldError, ValidationFailed

NODE_ID = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$"
VARIABLE = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
MAX_NODES = 500
REGEX_TIMEOUT_SECONDS = 0.1
"""Customer regexes run with a time limit so a pathological pattern cannot hang a worker."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Retry(_Model):
    """What an ``ask`` or ``extract`` node does with an answer it cannot use."""

    text: str | None = None
    """Sent before waiting again; default: an apology followed by the node's question."""
    max_retries: int = Field(default=2, ge=0, le=20)
    """How many times to ask again before giving up."""
    next: str
    """Where to go when the retries are used up."""


class Answer(_Model):
    """An expected answer of an ``ask`` node; matches when any of its tests matches."""

    name: str | None = None
    """A label for people reading the pathway."""
    intent: Literal["confirm", "cancel", "reschedule", "question"] | None = None
    """What the reply means, as :mod:`agentsms.agents.understanding` (or the pathway's
    ``understanding_llm``) reads it: "I'll be there" and "👍" are ``confirm``, "can't make
    it" and "please cancel" ``cancel``, "can we do 4pm instead?" ``reschedule``."""
    keywords: list[Annotated[str, Field(min_length=1)]] = []
    """Whole words or phrases found anywhere in the reply (any case)."""
    regex: str | None = None
    """Searched in the reply (any case); named groups are stored as variables."""
    choices: list[Annotated[str, Field(min_length=1)]] = []
    """The whole reply must be one of these (any case, surrounding punctuation and polite
    words such as "please" or "thanks" ignored)."""
    set: dict[Annotated[str, Field(pattern=VARIABLE)], Any] = {}
    """Variables to set when this answer matches."""
    next: str

    @model_validator(mode="after")
    def _has_a_test(self) -> Answer:
        if not self.keywords and self.regex is None and not self.choices and not self.intent:
            raise ValueError("an answer needs keywords, regex, choices or intent")
        return self


class _Node(_Model):
    id: Annotated[str, Field(pattern=NODE_ID)]
    name: str | None = None
    """A label for people reading the pathway."""
    entry: bool = False
    """May be used as ``start_node_id`` (counts as reachable)."""


class SayNode(_Node):
    """Send a text and go on."""

    type: Literal["say"]
    text: Annotated[str, Field(min_length=1)]
    next: str


class AskNode(_Node):
    """Send a question and wait for the answer.

    The reply is matched against ``answers`` in order; the first match wins. A reply
    matching none goes to ``next`` when given, else the ``unclear`` rule asks again.
    """

    type: Literal["ask"]
    text: Annotated[str, Field(min_length=1)]
    answers: list[Answer] = []
    next: str | None = None
    unclear: Retry | None = None
    save_as: Annotated[str, Field(pattern=VARIABLE)] | None = None
    """Store the raw reply in this variable."""

    @model_validator(mode="after")
    def _has_a_way_out(self) -> AskNode:
        if self.next is None and self.unclear is None:
            raise ValueError(
                "an ask node needs `next` (where any reply goes) or `unclear` "
                "(what to do with a reply that matches no answer)"
            )
        return self


class ExtractNode(_Node):
    """Pull a value out of the reply (or a variable) into a variable.

    Methods: ``text`` (the whole text), ``regex`` (named group equal to ``variable``,
    else group 1, else the whole match), ``number`` and ``datetime`` (a date/time
    phrase such as "thursday at 3pm", stored as ISO 8601 in ``timezone``). When
    nothing is found, ``unclear`` sends its text and waits for a new reply.
    """

    type: Literal["extract"]
    variable: Annotated[str, Field(pattern=VARIABLE)]
    method: Literal["text", "regex", "number", "datetime"]
    pattern: str | None = None
    source: Annotated[str, Field(pattern=VARIABLE)] | None = None
    """Read this variable instead of the person's reply."""
    timezone: str | None = None
    """IANA zone for ``datetime`` (a template); default: the ``timezone`` variable, else UTC."""
    next: str
    unclear: Retry | None = None

    @model_validator(mode="after")
    def _pattern_matches_method(self) -> ExtractNode:
        if self.method == "regex" and self.pattern is None:
            raise ValueError("method `regex` needs a `pattern`")
        if self.method != "regex" and self.pattern is not None:
            raise ValueError("`pattern` is only used by method `regex`")
        if self.method != "text" and self.unclear is None:
            raise ValueError("an extract node needs `unclear` (what to do when nothing is found)")
        return self


class Condition(_Model):
    """One branch: ``var`` compared with exactly one test."""

    var: Annotated[str, Field(min_length=1)]
    """A variable (or ``metadata.key``) name."""
    equals: Any = None
    not_equals: Any = None
    in_: list[Any] | None = Field(default=None, alias="in")
    exists: bool | None = None
    matches: str | None = None
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None
    next: str

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _exactly_one_test(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            tests = [k for k in _TESTS if k in data]
            if len(tests) != 1:
                raise ValueError(
                    "a condition needs exactly one of "
                    + ", ".join(_TESTS)
                    + (f" (got {', '.join(tests)})" if tests else "")
                )
        return data

    @property
    def test(self) -> str:
        """The name of the test this condition uses."""
        for name in _TESTS:
            attr = "in_" if name == "in" else name
            if name in self.model_fields_set or attr in self.model_fields_set:
                return name
        raise AssertionError("validated condition without a test")


_TESTS = ("equals", "not_equals", "in", "exists", "matches", "gt", "gte", "lt", "lte")


class BranchNode(_Node):
    """Go to the first branch whose condition holds, else to ``default``."""

    type: Literal["branch"]
    branches: list[Condition] = Field(min_length=1)
    default: str


class WebhookNode(_Node):
    """Call a URL with the variables and store the JSON answer into variables.

    The body (POST/PUT/PATCH) defaults to ``{"conversation_id", "node_id", "variables",
    "metadata"}``; string values of a given ``body`` are templates. ``save`` maps a
    variable to a dotted path in the JSON answer; without it, the keys of a JSON object
    answer are merged into the variables. A failure goes to ``on_error`` when given,
    else the turn fails (and is retried by the caller).
    """

    type: Literal["webhook"]
    url: Annotated[str, Field(min_length=1)]
    method: Literal["GET", "POST", "PUT", "PATCH"] = "POST"
    headers: dict[str, str] = {}
    body: dict[str, Any] | None = None
    save: dict[Annotated[str, Field(pattern=VARIABLE)], str] = {}
    timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    next: str
    on_error: str | None = None


class LlmNode(_Node):
    """Hand the conversation to an LLM agent until it ends the conversation.

    ``agent`` is an ``llm`` agent config. ``task`` (a template) is added to the task
    context. When the LLM ends with an outcome listed in ``routes`` the pathway goes on
    at that node; any other outcome ends the conversation.
    """

    type: Literal["llm"]
    agent: dict[str, Any]
    task: str | None = None
    routes: dict[str, str] = {}


class EndNode(_Node):
    """End the conversation with an outcome (a template) and the extracted variables."""

    type: Literal["end"]
    outcome: Annotated[str, Field(min_length=1)]
    text: str | None = None
    """A last text sent before ending."""
    extracted: list[Annotated[str, Field(pattern=VARIABLE)]] | None = None
    """Variables to report; default: every variable the flow set."""


Node = Annotated[
    SayNode | AskNode | ExtractNode | BranchNode | WebhookNode | LlmNode | EndNode,
    Field(discriminator="type"),
]
NODE_TYPES = ("say", "ask", "extract", "branch", "webhook", "llm", "end")
_node_adapter: TypeAdapter[Node] = TypeAdapter(Node)
WAITING_TYPES = frozenset({"ask", "llm"})


class _Header(_Model):
    id: str | None = None
    name: str | None = None
    description: str | None = None
    version: str | int | None = None
    start: Annotated[str, Field(min_length=1)]
    variables: dict[Annotated[str, Field(pattern=VARIABLE)], Any] = {}
    understanding_llm: dict[str, Any] | None = None
    nodes: Any


class Pathway:
    """A validated pathway: header fields and the nodes by id (in document order).

    ``understanding_llm`` (an ``llm`` agent config) has the model read the intent of
    replies for answers with an ``intent``; the built-in understanding is used when it is
    absent, unreachable or answers something unusable.
    """

    def __init__(self, header: _Header, nodes: Sequence[Node]) -> None:
        self.id = header.id
        self.name = header.name
        self.start = header.start
        self.variables: dict[str, Any] = dict(header.variables)
        self.understanding_llm = header.understanding_llm
        self.nodes: dict[str, Node] = {node.id: node for node in nodes}


def _field(prefix: str, loc: Sequence[int | str]) -> str:
    path = prefix
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{'in' if part == 'in_' else part}"
    return path


def _pydantic_errors(
    error: ValidationError, prefix: str, *, node: bool = False
) -> list[FieldError]:
    found = []
    for item in error.errors():
        message = str(item["msg"]).removeprefix("Value error, ")
        loc = item["loc"]
        if node and loc and loc[0] in NODE_TYPES:
            loc = loc[1:]  # pydantic names the member of the node union first
        field = _field(prefix, loc)
        if item["type"] == "missing":
            message = "required"
        elif item["type"] == "extra_forbidden":
            message = "unknown field"
        elif item["type"] == "union_tag_invalid":
            field, message = f"{field}.type", f"unknown node type; one of {', '.join(NODE_TYPES)}"
        elif item["type"] == "union_tag_not_found":
            field, message = (
                f"{field}.type",
                f"required: the node type, one of {', '.join(NODE_TYPES)}",
            )
        found.append(FieldError(field, message))
    return found


def _node_items(raw: Any, prefix: str, errors: list[FieldError]) -> list[tuple[str, Any]]:
    """``(field path, raw node)`` pairs from a list or an id → node mapping."""
    items: list[tuple[str, Any]] = []
    if isinstance(raw, Mapping):
        for key, value in raw.items():
            if isinstance(value, Mapping) and "id" not in value:
                value = {"id": key, **value}
            elif isinstance(value, Mapping) and value.get("id") != key:
                errors.append(FieldError(f"{prefix}.{key}.id", "differs from the node's key"))
            items.append((f"{prefix}.{key}", value))
    elif isinstance(raw, list):
        for index, value in enumerate(raw):
            node_id = value.get("id") if isinstance(value, Mapping) else None
            label = node_id if isinstance(node_id, str) and node_id else f"[{index}]"
            items.append((f"{prefix}.{label}" if label[0] != "[" else prefix + label, value))
    else:
        errors.append(FieldError(prefix, "must be a list of nodes or a mapping of id to node"))
    if not items and not errors:
        errors.append(FieldError(prefix, "a pathway needs at least one node"))
    elif len(items) > MAX_NODES:
        errors.append(FieldError(prefix, f"at most {MAX_NODES} nodes"))
    return items


def _edges(node: Node) -> Iterator[tuple[str, str]]:
    """``(field suffix, target node id)`` for every edge leaving ``node``."""
    if isinstance(node, SayNode | ExtractNode | WebhookNode):
        yield "next", node.next
    if isinstance(node, AskNode):
        for index, answer in enumerate(node.answers):
            yield f"answers[{index}].next", answer.next
        if node.next is not None:
            yield "next", node.next
    if isinstance(node, AskNode | ExtractNode) and node.unclear is not None:
        yield "unclear.next", node.unclear.next
    if isinstance(node, BranchNode):
        for index, condition in enumerate(node.branches):
            yield f"branches[{index}].next", condition.next
        yield "default", node.default
    if isinstance(node, WebhookNode) and node.on_error is not None:
        yield "on_error", node.on_error
    if isinstance(node, LlmNode):
        for outcome, target in node.routes.items():
            yield f"routes.{outcome}", target


def _instant_edges(node: Node) -> Iterator[str]:
    """Targets reached in the same turn (without waiting for a reply)."""
    if isinstance(node, SayNode | WebhookNode | BranchNode):
        yield from (target for _, target in _edges(node))
    elif isinstance(node, ExtractNode):
        yield node.next
    # ask and llm wait for a reply; an extract's unclear edge is taken after a reply too


def _compile(pattern: str, field: str, errors: list[FieldError]) -> None:
    try:
        regex.compile(pattern, regex.IGNORECASE)
    except (regex.error, TypeError) as exc:
        errors.append(FieldError(field, f"invalid regular expression: {exc}"))


def _check_regexes(node: Node, field: str, errors: list[FieldError]) -> None:
    if isinstance(node, AskNode):
        for index, answer in enumerate(node.answers):
            if answer.regex is not None:
                _compile(answer.regex, f"{field}.answers[{index}].regex", errors)
    elif isinstance(node, ExtractNode) and node.pattern is not None:
        _compile(node.pattern, f"{field}.pattern", errors)
    elif isinstance(node, BranchNode):
        for index, condition in enumerate(node.branches):
            if condition.matches is not None:
                _compile(condition.matches, f"{field}.branches[{index}].matches", errors)


def _templates(node: Node) -> Iterator[tuple[str, str]]:
    """``(field suffix, template)`` for every text of ``node`` that is filled in."""
    for name in ("text", "outcome", "url", "timezone", "task"):
        value = getattr(node, name, None)
        if isinstance(value, str):
            yield name, value
    for name in ("unclear",):
        rule = getattr(node, name, None)
        if isinstance(rule, Retry) and rule.text is not None:
            yield f"{name}.text", rule.text
    if isinstance(node, WebhookNode):
        for key, value in node.headers.items():
            yield f"headers.{key}", value


def _check_templates(node: Node, field: str, errors: list[FieldError]) -> None:
    for suffix, template in _templates(node):
        if templating.malformed(template):
            errors.append(
                FieldError(
                    f"{field}.{suffix}",
                    "malformed placeholder: use {{name}}, {{a.b}} or {{name | fallback}}",
                )
            )


def _loop_without_wait(nodes: Mapping[str, Node]) -> str | None:
    """A node on a cycle that never waits for a reply (it would spin forever), if any."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node_id: str) -> str | None:
        state[node_id] = 1
        for target in _instant_edges(nodes[node_id]):
            if target not in nodes:
                continue
            if state.get(target) == 1:
                return target
            if target not in state and (found := visit(target)) is not None:
                return found
        state[node_id] = 2
        return None

    for node_id in nodes:
        if node_id not in state and (found := visit(node_id)) is not None:
            return found
    return None


def parse_pathway(raw: Any, prefix: str = "agent.pathway") -> Pathway:
    """Validate a pathway document; raise :class:`ValidationFailed` listing every problem."""
    if not isinstance(raw, Mapping):
        raise ValidationFailed(
            f"{prefix}: must be an object",
            errors=[FieldError(prefix, "must be an object")],
            code="invalid_pathway",
        )
    errors: list[FieldError] = []
    header: _Header | None = None
    try:
        header = _Header.model_validate(raw)
    except ValidationError as exc:
        errors.extend(_pydantic_errors(exc, prefix))
    if header is not None and header.understanding_llm is not None:
        errors.extend(check_llm_config(header.understanding_llm, f"{prefix}.understanding_llm"))
    nodes: list[Node] = []
    fields: dict[str, str] = {}
    for field, value in _node_items(raw.get("nodes"), f"{prefix}.nodes", errors):
        try:
            node = _node_adapter.validate_python(value)
        except ValidationError as exc:
            errors.extend(_pydantic_errors(exc, field, node=True))
            if isinstance(value, Mapping) and isinstance(value.get("id"), str):
                fields.setdefault(value["id"], field)  # known id: no "unknown node" noise
            continue
        if node.id in fields:
            errors.append(FieldError(f"{field}.id", f"duplicate node id {node.id!r}"))
            continue
        fields[node.id] = field
        nodes.append(node)
        _check_regexes(node, field, errors)
        _check_templates(node, field, errors)
        if isinstance(node, LlmNode):
            errors.extend(check_llm_config(node.agent, f"{field}.agent"))
    by_id = {node.id: node for node in nodes}
    for node in nodes:
        for suffix, target in _edges(node):
            if target not in fields:
                errors.append(FieldError(f"{fields[node.id]}.{suffix}", f"unknown node {target!r}"))
    if header is not None and header.start not in fields:
        errors.append(FieldError(f"{prefix}.start", f"unknown node {header.start!r}"))
    if header is not None and not errors:
        reachable: set[str] = set()
        todo = [header.start, *(node.id for node in nodes if node.entry)]
        while todo:
            node_id = todo.pop()
            if node_id in reachable:
                continue
            reachable.add(node_id)
            todo.extend(target for _, target in _edges(by_id[node_id]))
        for node in nodes:
            if node.id not in reachable:
                errors.append(
                    FieldError(
                        fields[node.id],
                        f"unreachable from the start node {header.start!r} "
                        "(mark it `entry: true` if it is a start_node_id)",
                    )
                )
        if not any(isinstance(node, EndNode | LlmNode) for node in nodes):
            errors.append(FieldError(f"{prefix}.nodes", "a pathway needs an end node"))
        if (looping := _loop_without_wait(by_id)) is not None:
            errors.append(
                FieldError(
                    fields[looping],
                    "is on a loop that never waits for a reply (add an ask node to it)",
                )
            )
    if errors:
        raise ValidationFailed(
            f"{errors[0].field}: {errors[0].message}"
            + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""),
            errors=errors,
            code="invalid_pathway",
        )
    assert header is not None
    return Pathway(header, nodes)


def load_pathway_text(text: str, field: str = "agent.pathway") -> Any:
    """Parse a pathway written in JSON or YAML; :class:`ValidationFailed` when it is neither."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        reason = " ".join(str(exc).split())
        raise ValidationFailed(
            f"{field}: not valid JSON or YAML: {reason}",
            errors=[FieldError(field, f"not valid JSON or YAML: {reason}")],
            code="invalid_pathway",
        ) from None


def load_demo_pathway() -> dict[str, Any]:
    """The shipped appointment-reminder pathway (a fresh copy each call)."""
    return gallery.template_document(gallery.APPOINTMENT_REMINDER)


def edges(pathway: Pathway) -> list[tuple[str, str, str]]:
    """Every edge of a validated pathway as ``(from node, label, to node)``, in node order
    (the label is the answer, branch or route the edge is taken on)."""
    found = []
    for node in pathway.nodes.values():
        for suffix, target in _edges(node):
            label = suffix
            if isinstance(node, AskNode) and suffix.startswith("answers["):
                label = node.answers[int(suffix[8 : suffix.index("]")])].name or suffix
            found.append((node.id, label.removesuffix(".next"), target))
    return found
