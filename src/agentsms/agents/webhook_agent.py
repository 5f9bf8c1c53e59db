"""The ``webhook`` agent: the customer's own agent behind a signed POST.

Each turn POSTs the conversation as JSON, signed with the Standard Webhooks scheme
(``webhook-id``, ``webhook-timestamp``, ``webhook-signature`` headers)::

    {"type": "agent.turn", "conversation_id": "conv_...", "history": [{"role": "agent",
     "text": "...", "at": "2026-...Z"}, ...], "context": ..., "task_context": ...,
     "metadata": {...}, "state": {...}, "dispositions": [...], "extraction_schemas": [...],
     "start_node_id": null}

and expects ``200`` with ``{"reply": "text" | null, "end": {"outcome": "...",
"extracted": {...}} | null, "state": {...} | null}`` (``replies`` with a list of texts is
accepted instead of ``reply``). The ``webhook-id`` is the same for every attempt of one
turn, so the customer can deduplicate retries.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from standardwebhooks.webhooks import Webhook

from agentsms.agents.base import AgentFailed, AgentInput, AgentOutput, Ending
from agentsms.agents.config import WebhookAgentConfig

MAX_REPLY_CHARS = 1600


class _End(BaseModel):
    model_config = ConfigDict(extra="ignore")
    outcome: str = Field(min_length=1)
    extracted: dict[str, Any] = {}


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")
    reply: str | None = Field(default=None, max_length=MAX_REPLY_CHARS)
    replies: list[str] | None = None
    end: _End | None = None
    state: dict[str, Any] | None = None


def turn_payload(turn: AgentInput) -> dict[str, Any]:
    """The JSON body POSTed for one turn."""
    return {
        "type": "agent.turn",
        "conversation_id": turn.conversation_id,
        "history": [
            {"role": entry.role, "text": entry.text, "at": entry.at.isoformat()}
            for entry in turn.history
        ],
        "context": turn.context,
        "task_context": turn.task_context,
        "metadata": dict(turn.metadata),
        "state": dict(turn.state),
        "dispositions": list(turn.dispositions),
        "extraction_schemas": [dict(schema) for schema in turn.extraction_schemas],
        "start_node_id": turn.start_node_id,
    }


def turn_id(turn: AgentInput) -> str:
    """The ``webhook-id`` of a turn: stable across retries of the same turn."""
    last = turn.history[-1].at.isoformat() if turn.history else ""
    digest = hashlib.sha256(f"{turn.conversation_id}|{len(turn.history)}|{last}".encode())
    return f"turn_{digest.hexdigest()[:32]}"


def _retryable(status: int) -> bool:
    return status in (408, 409, 425, 429) or status >= 500


class WebhookAgent:
    """POSTs each turn to the customer's URL and sends back its reply."""

    def __init__(self, config: WebhookAgentConfig, *, http: httpx.AsyncClient | None) -> None:
        self.config = config
        self.http = http
        self.signer = Webhook(config.secret)

    async def respond(self, turn: AgentInput) -> AgentOutput:
        """One signed POST; its answer becomes the replies, the state and the ending."""
        body = json.dumps(turn_payload(turn), ensure_ascii=False, separators=(",", ":"))
        message_id = turn_id(turn)
        now = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": self.signer.sign(message_id, now, body),
        }
        client = self.http or httpx.AsyncClient()
        try:
            response = await client.post(
                self.config.url,
                content=body.encode(),
                headers=headers,
                timeout=self.config.timeout_seconds,
            )
        except httpx.TimeoutException as exc:
            raise AgentFailed(f"agent webhook timed out: {exc!r}", retryable=True) from exc
        except httpx.HTTPError as exc:
            # A client may mark errors that can never succeed (e.g. an SSRF refusal).
            retryable = bool(getattr(exc, "retryable", True))
            raise AgentFailed(f"agent webhook failed: {exc!r}", retryable=retryable) from exc
        finally:
            if self.http is None:
                await client.aclose()
        if not response.is_success:
            raise AgentFailed(
                f"agent webhook answered {response.status_code}",
                retryable=_retryable(response.status_code),
            )
        try:
            answer = _Answer.model_validate_json(response.content)
        except ValidationError as exc:
            raise AgentFailed(
                f"agent webhook answer is not a valid reply: {exc.errors()[0]['msg']}",
                retryable=False,
            ) from exc
        replies = [text.strip() for text in answer.replies or [] if text.strip()]
        if answer.reply and answer.reply.strip():
            replies.insert(0, answer.reply.strip())
        ending = None
        if answer.end is not None:
            if turn.dispositions and answer.end.outcome not in turn.dispositions:
                raise AgentFailed(
                    f"agent webhook ended with outcome {answer.end.outcome!r}, "
                    f"not one of {list(turn.dispositions)}",
                    retryable=False,
                )
            ending = Ending(answer.end.outcome, answer.end.extracted)
        state = answer.state if answer.state is not None else dict(turn.state)
        return AgentOutput(replies=replies, state=state, ending=ending)
