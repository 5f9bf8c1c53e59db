"""The ``flow`` agent: walks a pathway, deterministic and offline (except webhook/llm nodes).

Each turn starts at the node the conversation waits in (an ``ask`` node, an ``extract``
node that asked again, or an ``llm`` node), feeds it the person's newest text, and runs
the following nodes until one waits for a reply or ends the conversation. Everything
the flow remembers is in :attr:`AgentOutput.state`::

    {"node": "remind", "vars": {...}, "retries": 0, "llm": {...}, "ending": {...}?}
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import regex

from agentsms import timezones as zones
from agentsms.agents.base import AgentFailed, AgentInput, AgentOutput, Ending, LlmAccess
from agentsms.agents.config import LlmAgentConfig
from agentsms.agents.datetimes import find_datetime
from agentsms.agents.pathway import (
    REGEX_TIMEOUT_SECONDS,
    AskNode,
    BranchNode,
    Condition,
    EndNode,
    ExtractNode,
    LlmNode,
    Pathway,
    Retry,
    SayNode,
    WebhookNode,
)
from agentsms.agents.understanding import Understanding, extract_time, understand
from agentsms.templating import PLACEHOLDER, lookup, render
from agentsms.wording import strip_padding

MAX_STEPS_PER_TURN = 200
DEFAULT_UNCLEAR = "Sorry, I didn't get that."


def _normalize(text: str) -> str:
    text = text.replace("\ufe0f", "").replace("\u2019", "'").replace("\u2018", "'")
    return " ".join(text.casefold().split())


_EDGE_PUNCTUATION = " \t\r\n.,;:!?'\"()[]{}-"


def _keyword_found(keyword: str, text: str) -> bool:
    words = [re.escape(part) for part in _normalize(keyword).split(" ")]
    return re.search(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)", text) is not None


def _search(pattern: str, text: str) -> regex.Match[str] | None:
    try:
        return regex.search(pattern, text, regex.IGNORECASE, timeout=REGEX_TIMEOUT_SECONDS)
    except TimeoutError:
        return None


_NUMBER = re.compile(r"-?\d+(?:[.,]\d+)?")


@dataclass
class _Turn:
    """The mutable working state of one :meth:`FlowAgent.respond` call."""

    input: AgentInput
    vars: dict[str, Any]
    retries: int
    llm_state: dict[str, Any]
    replies: list[str] = field(default_factory=list)
    steps: int = 0
    end_node: str | None = None
    understood: Understanding | None = None
    """What the reply being answered means (read once, when an answer has an intent)."""

    def scope(self, defaults: Mapping[str, Any]) -> dict[str, Any]:
        """Template and condition names: flow variables > metadata > pathway defaults."""
        metadata = dict(self.input.metadata)
        return {**defaults, **metadata, "metadata": metadata, **self.vars}


class FlowAgent:
    """Runs a validated :class:`Pathway`. ``http`` is used by webhook nodes, ``llm`` by llm
    nodes."""

    def __init__(
        self,
        pathway: Pathway,
        *,
        http: httpx.AsyncClient | None = None,
        llm: LlmAccess | None = None,
    ) -> None:
        self.pathway = pathway
        self.http = http
        self.llm = llm

    async def respond(self, turn: AgentInput) -> AgentOutput:
        """Answer one turn (see the module docstring)."""
        state = dict(turn.state)
        if "ending" in state:  # already ended: nothing more to say
            ending = state["ending"]
            return AgentOutput(
                replies=[],
                state=state,
                ending=Ending(ending["outcome"], ending.get("extracted", {})),
                current_node_id=state.get("node"),
            )
        run = _Turn(
            input=turn,
            vars=dict(state.get("vars", {})),
            retries=int(state.get("retries", 0)),
            llm_state=dict(state.get("llm", {})),
        )
        text = turn.last_person_text
        node_id = state.get("node")
        if node_id is None:
            start = turn.start_node_id or self.pathway.start
            if start not in self.pathway.nodes:
                raise AgentFailed(f"start node {start!r} is not in the pathway", retryable=False)
            if text is not None and self._greeted_by_caller(turn):
                # The caller's own outbound text was the opening: walk silently to the
                # first question and treat the person's text as its answer.
                reached = await self._run(run, start, text, silent=True)
                result = (
                    reached
                    if isinstance(reached, Ending)
                    else await self._answer(run, reached, text)
                )
            else:
                result = await self._run(run, start, None)
        elif node_id not in self.pathway.nodes:
            raise AgentFailed(f"state names unknown node {node_id!r}", retryable=False)
        elif text is None:
            return AgentOutput(replies=[], state=state, current_node_id=node_id)
        else:
            result = await self._answer(run, node_id, text)
        return self._output(run, result)

    @staticmethod
    def _greeted_by_caller(turn: AgentInput) -> bool:
        return any(entry.role == "agent" for entry in turn.history)

    def _output(self, run: _Turn, result: str | Ending | None) -> AgentOutput:
        state: dict[str, Any] = {"vars": run.vars, "retries": run.retries}
        if run.llm_state:
            state["llm"] = run.llm_state
        if isinstance(result, Ending):
            state["node"] = run.end_node
            state["ending"] = {"outcome": result.outcome, "extracted": dict(result.extracted)}
            return AgentOutput(run.replies, state, result, current_node_id=state["node"])
        state["node"] = result
        return AgentOutput(run.replies, state, current_node_id=result)

    # -- walking ---------------------------------------------------------------------

    def _say(self, run: _Turn, template: str, *, silent: bool = False) -> None:
        text = render(template, run.scope(self.pathway.variables)).strip()
        if text and not silent:
            run.replies.append(text)

    async def _run(
        self, run: _Turn, node_id: str, text: str | None, *, silent: bool = False
    ) -> str | Ending:
        """Run from ``node_id`` until a node waits (its id) or the conversation ends."""
        while True:
            run.steps += 1
            if run.steps > MAX_STEPS_PER_TURN:
                raise AgentFailed(f"pathway loops without waiting at {node_id!r}", retryable=False)
            node = self.pathway.nodes[node_id]
            run.retries = 0
            if isinstance(node, SayNode):
                self._say(run, node.text, silent=silent)
                node_id = node.next
            elif isinstance(node, AskNode):
                self._say(run, node.text, silent=silent)
                return node.id
            elif isinstance(node, ExtractNode):
                if silent and node.source is None:
                    return node.id  # it reads the reply: let _answer feed it
                if self._extract(run, node, text):
                    node_id = node.next
                    continue
                assert node.unclear is not None
                outcome = self._unclear(run, node.unclear, "", silent=silent)
                if outcome is None:
                    return node.id
                node_id = outcome
            elif isinstance(node, BranchNode):
                node_id = self._branch(run, node)
            elif isinstance(node, WebhookNode):
                node_id = await self._webhook(run, node)
            elif isinstance(node, LlmNode):
                if silent:
                    return node.id
                routed = await self._llm(run, node)
                if routed is None:
                    return node.id
                if isinstance(routed, Ending):
                    return routed
                node_id = routed
            else:
                return self._end(run, node)

    async def _answer(self, run: _Turn, node_id: str, text: str) -> str | Ending:
        """Feed the person's ``text`` to the node the conversation waits in."""
        node = self.pathway.nodes[node_id]
        if isinstance(node, AskNode):
            target = await self._match(run, node, text)
            if target is None and node.unclear is not None:
                target = self._unclear(run, node.unclear, node.text)
                if target is None:
                    return node.id
            assert target is not None
            return await self._run(run, target, text)
        if isinstance(node, ExtractNode):
            if self._extract(run, node, text):
                return await self._run(run, node.next, text)
            assert node.unclear is not None
            target = self._unclear(run, node.unclear, "")
            return node.id if target is None else await self._run(run, target, text)
        if isinstance(node, LlmNode):
            outcome = await self._llm(run, node)
            if outcome is None:
                return node.id
            return outcome if isinstance(outcome, Ending) else await self._run(run, outcome, text)
        # Not a waiting node (e.g. the pathway changed under a running conversation).
        return await self._run(run, node_id, text)

    def _unclear(
        self, run: _Turn, rule: Retry, question: str, *, silent: bool = False
    ) -> str | None:
        """Ask again (``None``: wait here) or, when retries are used up, the fallback node."""
        retries = run.retries + 1
        if retries > rule.max_retries:
            return rule.next
        if rule.text is not None:
            self._say(run, rule.text, silent=silent)
        else:
            self._say(run, f"{DEFAULT_UNCLEAR} {question}".strip(), silent=silent)
        run.retries = retries
        return None

    # -- node kinds ------------------------------------------------------------------

    async def _match(self, run: _Turn, node: AskNode, text: str) -> str | None:
        if node.save_as is not None:
            run.vars[node.save_as] = text
        normalized = _normalize(text)
        whole = normalized.strip(_EDGE_PUNCTUATION)
        bare = " ".join(strip_padding(whole.split())).strip(_EDGE_PUNCTUATION)  # "C please"
        for answer in node.answers:
            found = any(_keyword_found(keyword, normalized) for keyword in answer.keywords)
            found = found or any(_normalize(c) in (whole, bare) for c in answer.choices)
            if not found and answer.intent is not None:
                found = (await self._understand(run, text)).intent == answer.intent
            if not found and answer.regex is not None:
                match = _search(answer.regex, text)
                if match is not None:
                    found = True
                    run.vars.update({k: v for k, v in match.groupdict().items() if v is not None})
            if found:
                run.vars.update(answer.set)
                return answer.next
        return node.next

    def _extract(self, run: _Turn, node: ExtractNode, text: str | None) -> bool:
        source = text if node.source is None else lookup(run.scope({}), node.source)
        if source is None or (isinstance(source, str) and not source.strip()):
            return False
        source = str(source)
        if node.method == "text":
            run.vars[node.variable] = source.strip()
            return True
        if node.method == "number":
            number = _NUMBER.search(source)
            if number is None:
                return False
            digits = number.group(0).replace(",", ".")
            run.vars[node.variable] = float(digits) if "." in digits else int(digits)
            return True
        if node.method == "regex":
            assert node.pattern is not None
            match = _search(node.pattern, source)
            if match is None:
                return False
            groups = {k: v for k, v in match.groupdict().items() if v is not None}
            run.vars.update(groups)
            if node.variable not in groups:
                run.vars[node.variable] = match.group(1) if match.re.groups else match.group(0)
            return True
        understood = run.understood
        if node.source is None and understood is not None and understood.when is not None:
            found: tuple[str, str] | None = (understood.when, understood.when_text or "")
        elif node.source is None and understood is not None and understood.names_booked_time:
            found = None  # the reply names the time already booked, not a new one
        else:
            found = extract_time(source, self._now(run), self._zone(run, node.timezone))
        if found is None:
            return False
        run.vars[node.variable], run.vars[f"{node.variable}_text"] = found
        return True

    async def _understand(self, run: _Turn, text: str) -> Understanding:
        """What the reply means (the pathway's model first when it has one)."""
        if run.understood is None:
            now, zone = self._now(run), self._zone(run, None)
            if self.pathway.understanding_llm is not None:
                from agentsms.agents.understanding_llm import understand_with_llm

                llm = LlmAgentConfig.model_validate(self.pathway.understanding_llm)
                run.understood = await understand_with_llm(
                    llm, self.llm, run.input, text, now, zone
                )
            else:
                run.understood = understand(
                    text, now, zone, booked=functools.partial(self._booked, run, zone)
                )
        return run.understood

    @staticmethod
    def _booked(run: _Turn, zone: ZoneInfo) -> str | None:
        """The time the agent's latest text that names one is about ("your appointment
        tomorrow at 3 PM"), read when that text was sent; ``None`` when none of its last
        three texts names one."""
        asked = [entry for entry in reversed(run.input.history) if entry.role == "agent"]
        for entry in asked[:3]:
            found = find_datetime(entry.text, entry.at, zone)
            if found is not None:
                return found[0]
        return None

    @staticmethod
    def _now(run: _Turn) -> datetime:
        for entry in reversed(run.input.history):
            if entry.role == "person":
                return entry.at
        return run.input.history[-1].at if run.input.history else datetime.now(UTC)

    def _zone(self, run: _Turn, template: str | None) -> ZoneInfo:
        """The person's zone (:func:`agentsms.timezones.person_zones`): their contact's,
        else the conversation's (``template``, a node's own, or the ``timezone`` flow
        variable or metadata), else the pathway's ``timezone`` variable, else the one their
        phone number implies, else UTC."""
        scope = run.scope(self.pathway.variables)
        if template:
            said: Any = render(template, scope)
        else:
            said = run.vars.get("timezone") or zones.metadata_zone(run.input.metadata)
        configured = self.pathway.variables.get("timezone")
        try:
            return zones.person_zones(
                run.input.person_number,
                contact=run.input.contact_timezone,
                conversation=str(said) if said else None,
                configured=str(configured) if configured else None,
                strict=True,
            )[0]
        except zones.UnknownZone as unknown:
            raise AgentFailed(str(unknown), retryable=False) from None

    def _branch(self, run: _Turn, node: BranchNode) -> str:
        scope = run.scope(self.pathway.variables)
        for condition in node.branches:
            if _holds(condition, lookup(scope, condition.var)):
                return condition.next
        return node.default

    async def _webhook(self, run: _Turn, node: WebhookNode) -> str:
        scope = run.scope(self.pathway.variables)
        url = render(node.url, scope, url=True)
        body: Any = None
        if node.method != "GET":
            body = (
                _render_json(node.body, scope)
                if node.body is not None
                else {
                    "conversation_id": run.input.conversation_id,
                    "node_id": node.id,
                    "variables": run.vars,
                    "metadata": dict(run.input.metadata),
                }
            )
        headers = {key: render(value, scope) for key, value in node.headers.items()}
        client = self.http or httpx.AsyncClient()
        try:
            response = await client.request(
                node.method, url, json=body, headers=headers, timeout=node.timeout_seconds
            )
            if not response.is_success:
                raise AgentFailed(
                    f"node {node.id!r}: webhook answered {response.status_code}", retryable=True
                )
            answer = response.json() if response.content else {}
        except (httpx.HTTPError, ValueError, AgentFailed) as exc:
            if node.on_error is not None:
                run.vars["webhook_error"] = str(exc)
                return node.on_error
            if isinstance(exc, AgentFailed):
                raise
            retryable = bool(getattr(exc, "retryable", True))  # False: can never succeed
            raise AgentFailed(
                f"node {node.id!r}: webhook failed: {exc!r}", retryable=retryable
            ) from exc
        finally:
            if self.http is None:
                await client.aclose()
        if node.save:
            for variable, path in node.save.items():
                run.vars[variable] = lookup({"$": answer}, f"$.{path}" if path else "$")
        elif isinstance(answer, Mapping):
            run.vars.update({k: v for k, v in answer.items() if isinstance(k, str)})
        return node.next

    async def _llm(self, run: _Turn, node: LlmNode) -> str | Ending | None:
        """One LLM turn: ``None`` (wait here), a route's node, or the ending."""
        from agentsms.agents.llm import LlmAgent

        scope = run.scope(self.pathway.variables)
        task = "\n\n".join(
            part
            for part in (run.input.task_context, node.task and render(node.task, scope))
            if part
        )
        dispositions = list(run.input.dispositions)
        if dispositions and node.routes:
            dispositions += [outcome for outcome in node.routes if outcome not in dispositions]
        turn = AgentInput(
            conversation_id=run.input.conversation_id,
            history=run.input.history,
            context=run.input.context,
            task_context=task or None,
            metadata={**run.input.metadata, **run.vars},
            state=run.llm_state,
            dispositions=dispositions,
            extraction_schemas=run.input.extraction_schemas,
        )
        output = await LlmAgent(LlmAgentConfig.model_validate(node.agent), self.llm).respond(turn)
        run.replies.extend(output.replies)
        run.llm_state = dict(output.state)
        if output.ending is None:
            return None
        run.llm_state = {}
        run.vars.update(output.ending.extracted)
        if output.ending.outcome in node.routes:
            return node.routes[output.ending.outcome]
        run.end_node = node.id
        return Ending(output.ending.outcome, self._extracted(run, None))

    def _end(self, run: _Turn, node: EndNode) -> Ending:
        if node.text:
            self._say(run, node.text)
        outcome = render(node.outcome, run.scope(self.pathway.variables)).strip() or node.id
        extracted = self._extracted(run, node.extracted)
        run.end_node = node.id
        return Ending(outcome, extracted)

    def _extracted(self, run: _Turn, names: list[str] | None) -> dict[str, Any]:
        if names is None:
            names = _schema_names(run.input.extraction_schemas) or list(run.vars)
        return {name: run.vars[name] for name in names if name in run.vars}


def _schema_names(schemas: Any) -> list[str]:
    """Field names declared by JSON-schema extraction definitions."""
    names: list[str] = []
    for schema in schemas:
        if not isinstance(schema, Mapping):
            continue
        properties = schema.get("properties")
        if isinstance(properties, Mapping):
            names.extend(str(key) for key in properties)
        elif isinstance(schema.get("name"), str):
            names.append(schema["name"])
    return names


def _render_json(value: Any, scope: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        whole = PLACEHOLDER.fullmatch(value.strip())
        if whole is not None and whole.group(2) is None:
            return lookup(scope, whole.group(1))  # keep the variable's JSON type
        return render(value, scope)
    if isinstance(value, Mapping):
        return {key: _render_json(item, scope) for key, item in value.items()}
    if isinstance(value, list):
        return [_render_json(item, scope) for item in value]
    return value


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _same(left: Any, right: Any) -> bool:
    if isinstance(left, str) and isinstance(right, str):
        return left.casefold() == right.casefold()
    return bool(left == right)


def _holds(condition: Condition, value: Any) -> bool:
    test = condition.test
    if test == "exists":
        return (value is not None and value != "") == condition.exists
    if test == "equals":
        return _same(value, condition.equals)
    if test == "not_equals":
        return not _same(value, condition.not_equals)
    if test == "in":
        return any(_same(value, item) for item in condition.in_ or [])
    if test == "matches":
        return value is not None and _search(condition.matches or "", str(value)) is not None
    number = _number(value)
    if number is None:
        return False
    limits = {"gt": condition.gt, "gte": condition.gte, "lt": condition.lt, "lte": condition.lte}
    limit = limits[test]
    assert limit is not None
    return {
        "gt": number > limit,
        "gte": number >= limit,
        "lt": number < limit,
        "lte": number <= limit,
    }[test]
