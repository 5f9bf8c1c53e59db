"""Reading a reply's intent with a model (structured output), the built-in as the fallback.

The model gets the conversation so far and answers a JSON object shaped by
:data:`SCHEMA` (``response_format`` ``json_schema``): the intent, its confidence and the
proposed time in the person's local time. An unreachable model, an error, or an answer that
does not fit (unknown intent, a time that does not parse) falls back to
:func:`agentsms.agents.understanding.understand`, so a conversation never waits on a model.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from agentsms.agents.base import AgentFailed, AgentInput, LlmAccess
from agentsms.agents.config import LlmAgentConfig
from agentsms.agents.llm import LlmAgent
from agentsms.agents.understanding import INTENTS, Understanding, understand

log = structlog.get_logger("agentsms.agents")

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "intent": {"type": "string", "enum": list(INTENTS)},
        "confidence": {"type": "number", "description": "0 to 1"},
        "proposed_time": {
            "type": ["string", "null"],
            "description": "For reschedule: the new time as local ISO 8601 "
            "(YYYY-MM-DDTHH:MM, or YYYY-MM-DD for a day), else null.",
        },
    },
    "required": ["intent", "confidence", "proposed_time"],
    "additionalProperties": False,
}
_INSTRUCTIONS = (
    "You read one SMS reply to a question asking the person to confirm, reschedule or cancel "
    "an appointment. Answer only the JSON object. intent: confirm (they will attend), cancel "
    "(they will not come or want it canceled), reschedule (they want another time; put the "
    "time they propose, if any, in proposed_time), question (they ask the business something), "
    "unclear (anything else, or when unsure: never guess a closing answer). "
    "The person's local time now is {now} ({zone})."
)


def _messages(turn: AgentInput, text: str, now: datetime, zone: ZoneInfo) -> list[dict[str, Any]]:
    local = now.astimezone(zone)
    system = _INSTRUCTIONS.format(
        now=f"{local:%A} {local.isoformat(timespec='minutes')}", zone=zone
    )
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
    for entry in list(turn.history)[-6:]:
        if entry.role == "agent":
            messages.append({"role": "assistant", "content": entry.text})
    messages.append({"role": "user", "content": text})
    return messages


def _readable(moment: datetime | date) -> str:
    if isinstance(moment, datetime):
        hour = moment.strftime("%I:%M %p").lstrip("0")
        return f"{moment:%A, %B} {moment.day} at {hour}"
    return f"{moment:%A, %B} {moment.day}"


def parse_answer(answer: Any, zone: ZoneInfo) -> Understanding | None:
    """The model's JSON answer as an :class:`Understanding`, or ``None`` when unusable."""
    if not isinstance(answer, dict) or answer.get("intent") not in INTENTS:
        return None
    confidence = answer.get("confidence")
    if not isinstance(confidence, int | float) or not 0 <= confidence <= 1:
        return None
    proposed = answer.get("proposed_time")
    if answer["intent"] != "reschedule" or proposed in (None, ""):
        return Understanding(answer["intent"], float(confidence))
    if not isinstance(proposed, str):
        return None
    try:
        moment: datetime | date = (
            datetime.fromisoformat(proposed) if "T" in proposed else date.fromisoformat(proposed)
        )
    except ValueError:
        return None
    if isinstance(moment, datetime):
        moment = moment.replace(tzinfo=zone) if moment.tzinfo is None else moment.astimezone(zone)
    return Understanding("reschedule", float(confidence), moment.isoformat(), _readable(moment))


async def understand_with_llm(
    config: LlmAgentConfig,
    access: LlmAccess | None,
    turn: AgentInput,
    text: str,
    now: datetime,
    zone: ZoneInfo,
) -> Understanding:
    """The model's reading of ``text`` (reached through ``access``, the SSRF-guarded way
    every LLM call goes); the built-in understanding when it has none."""
    try:
        answer = await LlmAgent(config, access).complete_json(
            _messages(turn, text, now, zone), "reply_understanding", SCHEMA
        )
    except AgentFailed as failure:
        log.warning("understanding.llm_failed", error=failure.message)
        return understand(text, now, zone)
    understood = parse_answer(answer, zone)
    if understood is None:
        log.warning("understanding.llm_unusable", answer=repr(answer)[:200])
        return understand(text, now, zone)
    return understood
