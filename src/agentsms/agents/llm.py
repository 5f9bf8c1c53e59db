"""The ``llm`` agent: any OpenAI-compatible chat-completions endpoint.

The system prompt is the persona's ``system_prompt`` followed by the conversation's
``context``, ``task_context`` and metadata; the history follows as chat messages (our
texts as ``assistant``, the person's as ``user``). The model answers with text, and ends
the conversation by calling the ``end_conversation`` tool with an outcome (one of the
dispositions when given) and the extracted fields (shaped by the extraction schemas).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

import httpx
import openai
from openai import AsyncOpenAI, omit
from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionMessageParam

from agentsms.agents.base import AgentFailed, AgentInput, AgentOutput, Ending, LlmAccess
from agentsms.agents.config import LlmAgentConfig

END_TOOL = "end_conversation"
NO_KEY = "not-needed"
"""Sent as the API key when there is none to send (servers that take none)."""
_THINKING = re.compile(r"<think>.*?(?:</think>|$)", re.DOTALL | re.IGNORECASE)
"""Reasoning models served locally (e.g. through Ollama) prefix their answer with this."""
OPENING_CUE = "(No text has been exchanged yet. Write the opening message.)"

_GUIDANCE = (
    "You are texting with a person by SMS on behalf of the business described above. "
    "Keep every reply short and plain (no markdown). Write only the text to send. "
    f"When the conversation has reached its goal, or the person wants to stop, call "
    f"`{END_TOOL}` with the outcome and the fields you extracted; put a last message "
    "for the person in its `message` argument if one is needed."
)


def extraction_properties(schemas: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """JSON-schema properties of the fields to extract.

    A schema with ``properties`` contributes them all; a schema with a ``name``
    contributes one property of that name (the rest of the schema describes it).
    """
    properties: dict[str, Any] = {}
    for schema in schemas:
        if isinstance(schema.get("properties"), Mapping):
            properties.update(schema["properties"])
        elif isinstance(schema.get("name"), str):
            properties[schema["name"]] = {k: v for k, v in schema.items() if k != "name"}
    return properties


def end_tool(dispositions: Sequence[str], schemas: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The ``end_conversation`` tool definition for this conversation."""
    outcome: dict[str, Any] = {"type": "string", "description": "How the conversation ended."}
    if dispositions:
        outcome["enum"] = list(dispositions)
    properties = extraction_properties(schemas)
    extracted: dict[str, Any] = {
        "type": "object",
        "description": "The fields gathered from the person.",
    }
    if properties:
        extracted["properties"] = properties
    return {
        "type": "function",
        "function": {
            "name": END_TOOL,
            "description": "End the conversation with an outcome and the extracted fields.",
            "parameters": {
                "type": "object",
                "properties": {
                    "outcome": outcome,
                    "extracted": extracted,
                    "message": {
                        "type": "string",
                        "description": "An optional last text to send before ending.",
                    },
                },
                "required": ["outcome"],
            },
        },
    }


def system_prompt(config: LlmAgentConfig, turn: AgentInput) -> str:
    """The system message: persona prompt, context, task, metadata and guidance."""
    parts = [config.system_prompt.strip()] if config.system_prompt.strip() else []
    if turn.context:
        parts.append(f"## Context\n{turn.context.strip()}")
    if turn.task_context:
        parts.append(f"## Task\n{turn.task_context.strip()}")
    if turn.metadata:
        metadata = json.dumps(dict(turn.metadata), ensure_ascii=False, sort_keys=True, default=str)
        parts.append(f"## Conversation metadata\n{metadata}")
    if turn.history:
        parts.append(f"The newest text was sent at {turn.history[-1].at.isoformat()}.")
    guidance = _GUIDANCE
    if turn.dispositions:
        guidance += " Allowed outcomes: " + ", ".join(turn.dispositions) + "."
    parts.append(guidance)
    return "\n\n".join(parts)


def chat_messages(config: LlmAgentConfig, turn: AgentInput) -> list[dict[str, Any]]:
    """The chat messages for one turn (system prompt, then the newest history)."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": system_prompt(config, turn)}]
    for entry in list(turn.history)[-config.max_history :]:
        role = "assistant" if entry.role == "agent" else "user"
        messages.append({"role": role, "content": entry.text})
    if turn.last_person_text is None:
        messages.append({"role": "user", "content": OPENING_CUE})
    return messages


def _retryable(error: openai.APIError) -> bool:
    if isinstance(error, openai.APIConnectionError):  # includes timeouts
        # A transport may mark errors that can never succeed (the SSRF guard's refusals).
        return bool(getattr(error.__cause__, "retryable", True))
    if isinstance(error, openai.APIStatusError):
        return error.status_code in (408, 409, 429) or error.status_code >= 500
    return False


class LlmAgent:
    """An agent answering through an OpenAI-compatible chat-completions endpoint."""

    def __init__(self, config: LlmAgentConfig, access: LlmAccess | None) -> None:
        self.config = config
        self.access = access

    @asynccontextmanager
    async def _client(self) -> AsyncIterator[AsyncOpenAI]:
        """An OpenAI client built on the access's guarded transport: the SSRF checks apply
        when it connects (each redirect included), and only the key this endpoint may get."""
        config = self.config
        if self.access is None:
            raise AgentFailed("LLM agents are not configured in this process", retryable=False)
        base_url, api_key = self.access.endpoint(config.base_url)
        async with (
            httpx.AsyncClient(
                transport=self.access.transport(config.timeout_seconds),
                timeout=config.timeout_seconds,
                trust_env=False,
            ) as http,
            AsyncOpenAI(
                base_url=base_url,
                api_key=api_key or NO_KEY,
                timeout=config.timeout_seconds,
                max_retries=0,  # the caller's job queue retries with backoff
                # The SDK annotates httpx2 clients and takes httpx ones alike.
                http_client=cast("Any", http),
            ) as client,
        ):
            yield client

    async def respond(self, turn: AgentInput) -> AgentOutput:
        """Ask the model for the next text (or the end of the conversation).

        Every request goes through the access's guarded transport: the OpenAI client is
        built on it, so the SSRF checks apply when it connects (each redirect included).
        """
        config = self.config
        try:
            async with self._client() as client:
                completion = await client.chat.completions.create(
                    model=config.model,
                    messages=cast("list[ChatCompletionMessageParam]", chat_messages(config, turn)),
                    tools=[
                        cast(
                            "ChatCompletionFunctionToolParam",
                            end_tool(turn.dispositions, turn.extraction_schemas),
                        )
                    ],
                    tool_choice="auto",
                    temperature=omit if config.temperature is None else config.temperature,
                    max_tokens=omit if config.max_tokens is None else config.max_tokens,
                )
        except openai.APIError as exc:
            status = getattr(exc, "status_code", None)
            reason = f"{status} {exc.message}" if status else exc.message
            if isinstance(exc, openai.APIConnectionError) and exc.__cause__ is not None:
                reason = f"{reason} ({exc.__cause__})"
            raise AgentFailed(f"LLM call failed: {reason}", retryable=_retryable(exc)) from exc
        if not completion.choices:
            raise AgentFailed("LLM answered without a choice", retryable=True)
        message = completion.choices[0].message
        text = _THINKING.sub("", message.content or "").strip()
        replies = [text] if text else []
        ending = None
        for call in message.tool_calls or []:
            name = call.function.name if call.type == "function" else call.custom.name
            if call.type != "function" or name != END_TOOL:
                raise AgentFailed(f"LLM called an unknown tool {name!r}", retryable=True)
            ending, last = self._ending(call.function.arguments, turn)
            if last:
                replies.append(last)
            break
        if not replies and ending is None:
            raise AgentFailed("LLM answered with neither text nor a tool call", retryable=True)
        return AgentOutput(replies=replies, state=dict(turn.state), ending=ending)

    @staticmethod
    def _ending(arguments: str, turn: AgentInput) -> tuple[Ending, str | None]:
        try:
            parsed = json.loads(arguments or "{}")
        except ValueError:
            raise AgentFailed(
                f"{END_TOOL} arguments are not JSON: {arguments!r}", retryable=True
            ) from None
        if not isinstance(parsed, dict):
            raise AgentFailed(f"{END_TOOL} arguments are not an object", retryable=True)
        outcome = parsed.get("outcome")
        if not isinstance(outcome, str) or not outcome.strip():
            raise AgentFailed(f"{END_TOOL} was called without an outcome", retryable=True)
        if turn.dispositions and outcome not in turn.dispositions:
            raise AgentFailed(
                f"{END_TOOL} outcome {outcome!r} is not one of {list(turn.dispositions)}",
                retryable=True,
            )
        extracted = parsed.get("extracted") or {}
        if not isinstance(extracted, dict):
            raise AgentFailed(f"{END_TOOL} `extracted` is not an object", retryable=True)
        last = parsed.get("message")
        last_text = last.strip() if isinstance(last, str) and last.strip() else None
        return Ending(outcome.strip(), extracted), last_text

    async def complete_json(
        self, messages: Sequence[Mapping[str, Any]], name: str, schema: Mapping[str, Any]
    ) -> Any:
        """One completion constrained to a JSON schema (structured output); its parsed JSON.

        Raises :class:`AgentFailed` when the call fails or the answer is not JSON.
        """
        config = self.config
        try:
            async with self._client() as client:
                completion = await client.chat.completions.create(
                    model=config.model,
                    messages=cast("list[ChatCompletionMessageParam]", list(messages)),
                    response_format={
                        "type": "json_schema",
                        "json_schema": {"name": name, "schema": dict(schema), "strict": True},
                    },
                    temperature=0 if config.temperature is None else config.temperature,
                    max_tokens=omit if config.max_tokens is None else config.max_tokens,
                )
        except openai.APIError as exc:
            raise AgentFailed(f"LLM call failed: {exc.message}", retryable=_retryable(exc)) from exc
        if not completion.choices:
            raise AgentFailed("LLM answered without a choice", retryable=True)
        text = _THINKING.sub("", completion.choices[0].message.content or "").strip()
        try:
            return json.loads(text)
        except ValueError:
            raise AgentFailed(f"LLM answer is not JSON: {text[:200]!r}", retryable=True) from None
