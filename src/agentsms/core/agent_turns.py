"""Conversation jobs: agent turns and silence timers, and sending within a conversation.

An agent turn (``conversation.turn``) answers one inbound text, or writes the opening of a
send that had no body. Turns of one conversation run one at a time in the order they were
queued: a turn whose conversation still has an earlier turn pending steps back and runs
after it. The agent is called outside any transaction; its replies go out through the same
send path as any message. An agent that fails is retried (``Settings.agent_max_attempts``);
then the conversation goes to ``needs_attention`` for a human instead of going silent.

A timer (``conversation.timer``) sends the silence warning or ends the conversation; a
reply restarts the timers, which makes the queued ones stale.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms import agents, purposes, webhooks
from agentsms.agents import AgentFailed, AgentInput, AgentOutput, HistoryEntry, LlmAccess
from agentsms.config import Settings
from agentsms.core import conversations, llm_credentials, personas, spend, statuses, zones
from agentsms.core.clock import from_epoch
from agentsms.core.compliance import RECIPIENT_OPTED_OUT
from agentsms.core.messages import record_events
from agentsms.core.segments import count_segments
from agentsms.core.sending import OutboundSpec, Outbox
from agentsms.errors import Conflict, ValidationFailed
from agentsms.jobs import queue
from agentsms.jobs.backoff import retry_delay
from agentsms.jobs.queue import Job
from agentsms.store.db import Database
from agentsms.store.records import ConversationRecord, MessageRecord
from agentsms.store.repositories import conversations as repo
from agentsms.store.repositories import messages as messages_repo
from agentsms.store.repositories import numbers as numbers_repo
from agentsms.store.repositories import projects as projects_repo
from agentsms.store.types import utcnow

log = structlog.get_logger("agentsms.conversations")
_STEP_BACK_SECONDS = 0.05


async def send_in_conversation(
    conn: AsyncConnection,
    outbox: Outbox,
    conversation: ConversationRecord,
    body: str,
    *,
    purpose: str,
    media_urls: Sequence[str] = (),
    project_settings: Mapping[str, Any] | None = None,
) -> MessageRecord:
    """Send a text from the conversation's number to its person, within it."""
    return await outbox.send(
        conn,
        conversation.project_id,
        OutboundSpec(
            to=conversation.user_number,
            from_=conversation.agent_number,
            body=body,
            media_urls=media_urls,
            channel=None if media_urls else conversation.channel,
            conversation_id=conversation.id,
            purpose=purpose,
        ),
        project_settings=project_settings,
    )


async def human_message(
    conn: AsyncConnection,
    outbox: Outbox,
    project_id: str,
    conversation_id: str,
    body: str | None,
    media_urls: Sequence[str],
    *,
    project_settings: Mapping[str, Any] | None = None,
) -> MessageRecord:
    """A human takes over: the agent is paused and the text goes out within the conversation."""
    conversation = await conversations.get(conn, project_id, conversation_id)
    if conversation.status not in conversations.ACTIVE:
        raise Conflict(
            f"conversation is {conversation.status}; send a new message to start another",
            code="conversation_not_active",
        )
    row = await send_in_conversation(
        conn,
        outbox,
        conversation,
        body or "",
        purpose=purposes.HUMAN,
        media_urls=media_urls,
        project_settings=project_settings,
    )
    await repo.update_one(conn, conversation_id, {"agent_paused": True, "updated_at": utcnow()})
    return row


def build_history(
    messages: Sequence[MessageRecord], current: str | None, skip: str | None
) -> list[MessageRecord]:
    """The texts an agent sees for a turn, oldest first, the one it answers last.

    Texts that arrived after the one being answered wait for their own turn; replies to
    earlier turns (written after it arrived) come before it.
    """
    usable = [m for m in messages if m.id != skip and (m.body or m.direction == "inbound")]
    if current is None:
        return usable
    answered = next((m for m in usable if m.id == current), None)
    before = [m for m in usable if m.id < current]
    after = [m for m in usable if m.id > current and m.direction == "outbound"]
    return before + after + ([answered] if answered is not None else [])


class ConversationJobs:
    """Runs ``conversation.turn`` and ``conversation.timer`` jobs."""

    def __init__(self, db: Database, settings: Settings, outbox: Outbox) -> None:
        self.db = db
        self.settings = settings
        self.outbox = outbox

    async def handle_turns(self, jobs: Sequence[Job]) -> None:
        for job in sorted(jobs, key=lambda j: j.id):
            await self._turn(job)

    async def handle_timers(self, jobs: Sequence[Job]) -> None:
        for job in sorted(jobs, key=lambda j: j.id):
            await self._timer(job)

    # --- turns -------------------------------------------------------------------------

    async def _turn(self, job: Job) -> None:
        conversation_id = job.ref or ""
        opening = job.payload.get("opening_message_id")
        current = job.payload.get("message_id")
        async with self.db.read() as conn:
            if await repo.earlier_job_pending(
                conn, conversations.TURN_JOB, conversation_id, job.id
            ):
                earlier = True
            else:
                earlier = False
                prepared = await self._prepare(conn, conversation_id, opening, current)
        if earlier:
            async with self.db.write() as conn:
                await queue.release_many(conn, [job], run_at=time.time() + _STEP_BACK_SECONDS)
            return
        if isinstance(prepared, str):
            async with self.db.write() as conn:
                if opening:
                    await _drop_opening(conn, opening, prepared)
                await queue.finish(conn, [job])
            return
        config, turn, llm = prepared
        try:
            output = await self._respond(config, turn, llm)
        except AgentFailed as failure:
            await self._agent_failed(job, conversation_id, opening, failure)
            return
        async with self.db.write() as conn:
            # The agent may have taken longer than the lease: a reply is written only while
            # this claim holds the turn, not beside the one of a worker that took it over.
            if await self._lost(conn, job):
                return
            await self._apply(conn, conversation_id, opening, output)
            await queue.finish(conn, [job])

    async def _lost(self, conn: AsyncConnection, job: Job) -> bool:
        """Whether ``job`` was taken from this claim (its worker paused past the lease and
        another ran it); else its lease is renewed for the rest of this transaction."""
        renewal = await queue.renew(conn, [job], lease_seconds=self.settings.job_lease_seconds)
        if renewal.lost():
            log.warning("conversation_job.lease_lost", kind=job.kind, ref=job.ref, job_id=job.id)
            return True
        return False

    async def _prepare(
        self, conn: AsyncConnection, conversation_id: str, opening: str | None, current: str | None
    ) -> tuple[dict[str, Any], AgentInput, LlmAccess] | str:
        """The agent config, its input and its LLM access, or why there is no turn to take."""
        conversation = await repo.get_by_id(conn, conversation_id)
        if conversation is None:
            return "conversation_gone"
        if conversation.status != conversations.OPEN:
            return f"conversation_{conversation.status}"
        if conversation.agent_paused:
            return "agent_paused"
        settings = await _effective(conn, conversation)
        try:
            config = await personas.resolve_agent_config(conn, conversation.project_id, settings)
        except ValidationFailed as failed:
            log.warning("turn.bad_agent_config", conversation_id=conversation_id, error=str(failed))
            return "agent_config_invalid"
        if config is None:
            return "no_agent"
        names, schemas = await personas.agent_inputs(conn, conversation.project_id, settings)
        messages = await repo.messages_of(conn, conversation_id)
        history = build_history(messages, current, opening)
        turn = AgentInput(
            conversation_id=conversation_id,
            history=[
                HistoryEntry(
                    role="person" if m.direction == "inbound" else "agent",
                    text=m.body,
                    at=m.created_at,
                )
                for m in history
            ],
            context=settings.get("context"),
            task_context=settings.get("task_context"),
            metadata=dict(conversation.metadata or {}),
            state=dict(conversation.state or {}),
            dispositions=names,
            extraction_schemas=schemas,
            start_node_id=settings.get("start_node_id"),
            person_number=conversation.user_number,
            contact_timezone=await zones.contact_zone(
                conn, conversation.project_id, conversation.user_number
            ),
        )
        key = None
        if llm_credentials.uses_llm(config):
            key = await llm_credentials.project_key(conn, conversation.project_id, self.settings)
        return config, turn, llm_credentials.llm_access(self.settings, key)

    async def _respond(
        self, config: Mapping[str, Any], turn: AgentInput, llm: LlmAccess
    ) -> AgentOutput:
        async with webhooks.safe_client(self.settings) as http:
            agent = agents.build_agent(config, http=http, llm=llm)
            try:
                return await agent.respond(turn)
            except AgentFailed:
                raise
            except Exception as error:  # an agent bug must not silence the conversation
                log.exception("turn.agent_crashed", conversation_id=turn.conversation_id)
                raise AgentFailed(repr(error), retryable=True) from error

    async def _agent_failed(
        self, job: Job, conversation_id: str, opening: str | None, failure: AgentFailed
    ) -> None:
        log.warning(
            "turn.agent_failed",
            conversation_id=conversation_id,
            attempt=job.attempts,
            retryable=failure.retryable,
            error=failure.message,
        )
        async with self.db.write() as conn:
            if failure.retryable and job.attempts < self.settings.agent_max_attempts:
                delay = retry_delay(
                    job.attempts,
                    base=self.settings.retry_base_seconds,
                    cap=self.settings.retry_max_seconds,
                )
                await queue.retry(
                    conn, job, run_at=time.time() + delay, error=f"agent: {failure.message}"
                )
                return
            await _hand_to_human(conn, conversation_id, failure.message)
            if opening:
                await _drop_opening(conn, opening, "agent_failed", failed=True)
            await queue.finish(conn, [job])

    async def _apply(
        self,
        conn: AsyncConnection,
        conversation_id: str,
        opening: str | None,
        output: AgentOutput,
    ) -> None:
        conversation = await repo.get_by_id(conn, conversation_id)
        if conversation is None or conversation.status != conversations.OPEN:
            if opening:
                await _drop_opening(conn, opening, "conversation_closed")
            return
        if conversation.agent_paused:
            if opening:
                await _drop_opening(conn, opening, "agent_paused")
            return
        project = await projects_repo.get_project(conn, conversation.project_id)
        project_settings = {} if project is None else dict(project["settings"] or {})
        replies = [text for text in output.replies if text and text.strip()]
        unsendable: list[str] = []
        if opening:
            if replies:
                refused = await _fill_opening(
                    conn, self.outbox, opening, replies[0], project_settings
                )
                unsendable += [refused] if refused else []
                replies = replies[1:]
            else:
                await _drop_opening(conn, opening, "agent_wrote_nothing")
        for text in replies:
            try:
                await send_in_conversation(
                    conn,
                    self.outbox,
                    conversation,
                    text,
                    purpose=purposes.AGENT,
                    project_settings=project_settings,
                )
            except (ValidationFailed, spend.SpendCapReached) as refused:
                # An opted-out person is never texted, whatever the agent says; any other
                # refusal (e.g. a reply too long, the daily spend cap) hands the
                # conversation to a human.
                log.warning(
                    "turn.reply_refused", conversation_id=conversation_id, error=str(refused)
                )
                if refused.code != RECIPIENT_OPTED_OUT:
                    unsendable.append(refused.detail)
        await repo.update_one(
            conn,
            conversation_id,
            {
                "state": dict(output.state),
                "current_node_id": output.current_node_id,
                "updated_at": utcnow(),
            },
        )
        if unsendable and output.ending is None:
            await _hand_to_human(conn, conversation_id, "agent reply refused: " + unsendable[0])
            return
        if output.ending is not None:
            await conversations.end_conversations(
                conn,
                conversation.project_id,
                [conversation_id],
                status=conversations.ENDED,
                reason="agent",
                now=utcnow(),
                outcome=output.ending.outcome,
                extracted=output.ending.extracted,
            )

    # --- timers ------------------------------------------------------------------------

    async def _timer(self, job: Job) -> None:
        stage = job.payload.get("stage")
        epoch = float(job.payload.get("epoch") or 0)
        async with self.db.write() as conn:
            if await self._lost(conn, job):
                return
            conversation = await repo.get_by_id(conn, job.ref or "")
            current = None if conversation is None else conversation.timer_epoch
            if (
                conversation is None
                or conversation.status not in conversations.ACTIVE
                or current is None
                or abs(float(current) - epoch) > 1e-6
            ):
                await queue.finish(conn, [job])
                return
            settings = await _effective(conn, conversation)
            project = await projects_repo.get_project(conn, conversation.project_id)
            project_settings = {} if project is None else dict(project["settings"] or {})
            if stage == "warning":
                text = settings.get("warning_message") or conversations.DEFAULT_WARNING_MESSAGE
                sent = await self._timer_text(
                    conn, conversation, text, purposes.TIMEOUT_WARNING, project_settings
                )
                await conversations.emit(
                    conn,
                    conversation,
                    "conversation.warning_sent",
                    settings,
                    {"message_id": None if sent is None else sent.id},
                )
            else:
                text = settings.get("timeout_message")
                if text:
                    await self._timer_text(
                        conn, conversation, text, purposes.TIMEOUT_MESSAGE, project_settings
                    )
                await conversations.end_conversations(
                    conn,
                    conversation.project_id,
                    [conversation.id],
                    status=conversations.ENDED,
                    reason="timeout",
                    now=utcnow(),
                )
            await queue.finish(conn, [job])

    async def _timer_text(
        self,
        conn: AsyncConnection,
        conversation: ConversationRecord,
        text: str,
        purpose: str,
        project_settings: Mapping[str, Any],
    ) -> MessageRecord | None:
        try:
            return await send_in_conversation(
                conn,
                self.outbox,
                conversation,
                text,
                purpose=purpose,
                project_settings=project_settings,
            )
        except (ValidationFailed, spend.SpendCapReached) as refused:
            log.warning("timer.text_refused", conversation_id=conversation.id, error=str(refused))
            return None


async def _hand_to_human(conn: AsyncConnection, conversation_id: str, error: str) -> None:
    """The agent cannot go on: the conversation needs attention (and says so by webhook)."""
    handed = await repo.update_where_status(
        conn,
        conversation_id,
        (conversations.OPEN,),
        {"status": conversations.NEEDS_ATTENTION, "updated_at": utcnow()},
    )
    conversation = await repo.get_by_id(conn, conversation_id)
    if handed and conversation is not None:
        await conversations.emit(
            conn,
            conversation,
            "conversation.needs_attention",
            await _effective(conn, conversation),
            {"error": error},
        )


async def _effective(conn: AsyncConnection, conversation: ConversationRecord) -> dict[str, Any]:
    project = await projects_repo.get_project(conn, conversation.project_id)
    number = (
        None
        if conversation.number_id is None
        else await numbers_repo.get_number(conn, conversation.project_id, conversation.number_id)
    )
    return conversations.effective_settings(
        {} if project is None else dict(project["settings"] or {}),
        {} if number is None else dict(number["settings"] or {}),
        dict(conversation.settings or {}),
    )


async def _fill_opening(
    conn: AsyncConnection,
    outbox: Outbox,
    message_id: str,
    text: str,
    project_settings: Mapping[str, Any],
) -> str | None:
    """The agent wrote the opening of a body-less send: fill it in and queue its send.
    Why it cannot go (the daily spend cap), if so: it fails then."""
    found = await messages_repo.messages_by_ids(conn, [message_id])
    message = found.get(message_id)
    if message is None or message.status not in statuses.PENDING:
        return None
    info = count_segments(text)
    segments = info.segments if message.channel == "sms" else 1
    number = None
    if message.number_id:
        number = await numbers_repo.get_number(conn, message.project_id, message.number_id)
    per_segment = Decimal(number["price_per_segment"]) if number is not None else Decimal(0)
    if message.status == statuses.QUEUED:
        # Charged at intake as it was then (no text): the agent's text costs the difference.
        extra = spend.Cost(
            segments=segments - int(message.segments),
            price_estimate=per_segment * segments - Decimal(message.price_estimate),
            purpose=message.purpose,
        )
        (refused,) = await spend.charge(
            conn, message.project_id, project_settings, [extra], utcnow(), all_or_nothing=True
        )
        if refused is not None:
            await _drop_opening(conn, message_id, spend.CODE, failed=True, detail=refused.detail)
            return refused.detail
    await messages_repo.update_each(
        conn,
        [
            {
                "b_id": message_id,
                "body": text,
                "segments": segments,
                "encoding": info.encoding,
                "price_estimate": per_segment * segments,
                "updated_at": utcnow(),
            }
        ],
        from_statuses=statuses.PENDING,
    )
    await outbox.queue_opening(conn, message_id)
    return None


async def _drop_opening(
    conn: AsyncConnection,
    message_id: str,
    reason: str,
    *,
    failed: bool = False,
    detail: str = "the conversation's agent did not write this message",
) -> None:
    """A body-less send whose agent wrote nothing (or past the daily spend cap): it fails
    (agent failed, cap) or is canceled."""
    now = from_epoch(time.time())
    status = statuses.FAILED if failed else statuses.CANCELED
    message = (await messages_repo.messages_by_ids(conn, [message_id])).get(message_id)
    changed = await messages_repo.set_status_where(
        conn,
        [message_id],
        from_statuses=statuses.PENDING,
        values={
            "status": status,
            "error_code": reason,
            "error_message": detail,
            "updated_at": now,
        },
    )
    if changed and message is not None:
        await record_events(conn, [(message, status, {"error_code": reason})], now)
