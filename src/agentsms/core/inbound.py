"""Inbound texts: the one path every carrier's (and the simulator's) inbound message takes.

Compliance comes first, before any agent sees the text: an opt-out keyword records the
opt-out, sends one confirmation and ends the person's conversations; an opt-in keyword
from an opted-out person lifts it; a help keyword gets the project's help text; a short
text that may be an opt-out but is not plainly one is asked about (and not handed to the
agent). Keywords are recognised as people type them (see :mod:`agentsms.core.compliance`).
Any other text joins the thread's conversation (or starts one), restarts its silence timers
and, when the conversation has an agent that is not paused, queues an agent turn.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms import purposes, webhooks
from agentsms.core import compliance, conversations, statuses
from agentsms.core.fictional import fictional
from agentsms.core.messages import record_events
from agentsms.core.phone import PhoneNumber, parse_phone_field
from agentsms.core.segments import count_segments
from agentsms.core.sending import EMPTY_BODY, OutboundSpec, Outbox
from agentsms.errors import invalid
from agentsms.ids import new_id
from agentsms.jobs import queue
from agentsms.jobs.queue import NewJob
from agentsms.providers.base import InboundMessage
from agentsms.store.records import ConversationRecord, MessageRecord
from agentsms.store.repositories import conversations as conversations_repo
from agentsms.store.repositories import messages as repo
from agentsms.store.repositories import numbers as numbers_repo
from agentsms.store.repositories import optouts as optouts_repo
from agentsms.store.repositories import projects as projects_repo
from agentsms.store.types import utcnow


def _sender(raw: str, provider: str) -> PhoneNumber:
    """The person's number: on the simulator, a test carrier, one reserved for fiction too
    (the people of vendors' examples reply from them)."""
    if provider == "simulator":
        made_up = fictional(raw)
        if made_up is not None:
            return made_up
    return parse_phone_field(raw, "from")


async def receive(
    conn: AsyncConnection,
    project_id: str,
    provider: str,
    inbound: InboundMessage,
    outbox: Outbox,
) -> MessageRecord:
    """Store a text a person sent to one of the project's numbers, and act on it; a
    compliance keyword's reply goes through ``outbox``."""
    sender = _sender(inbound.from_number, provider)
    ours = parse_phone_field(inbound.to_number, "to")
    number = await numbers_repo.find_by_e164(conn, project_id, ours.e164)
    if number is None:
        raise invalid("to", "is not a number in this project's sender pool")
    if not inbound.body and not inbound.media_urls:
        raise invalid("body", EMPTY_BODY)
    now = utcnow()
    info = count_segments(inbound.body)
    project = await projects_repo.get_project(conn, project_id)
    settings: Mapping[str, Any] = {} if project is None else dict(project["settings"] or {})
    opted_out = await optouts_repo.get(conn, project_id, sender.e164) is not None
    channel = inbound.channel if not inbound.media_urls or inbound.channel != "sms" else "mms"
    keyword = compliance.classify(inbound.body, settings)
    # An opted-out person's texts are recorded in a conversation that is already over,
    # except the one that opts them back in: that starts an open one.
    attached = await conversations.attach_inbound(
        conn,
        project_id,
        settings,
        number,
        sender.e164,
        channel,
        now,
        opted_out=opted_out and keyword != "opt_in",
    )
    conversation = attached.conversation
    row = {
        "id": new_id("msg"),
        "project_id": project_id,
        "batch_id": None,
        "conversation_id": conversation.id,
        "direction": "inbound",
        "to_number": ours.e164,
        "from_number": sender.e164,
        "number_id": number["id"],
        "contact": sender.e164,
        "body": inbound.body,
        "media_urls": list(inbound.media_urls),
        "channel": channel,
        "status": statuses.RECEIVED,
        "segments": info.segments,
        "encoding": info.encoding,
        "price_estimate": 0,
        "price": None,
        "currency": number["currency"],
        "send_at": None,
        "expires_at": None,
        "sent_at": None,
        "delivered_at": now,
        "error_code": None,
        "error_message": None,
        "metadata": {},
        "external_id": None,
        "provider": provider,
        "provider_message_id": inbound.provider_message_id,
        "in_flight": False,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
        "purpose": purposes.INBOUND,
    }
    await repo.insert_messages(conn, [row])
    record = MessageRecord.from_mapping(row)
    await record_events(conn, [(record, statuses.RECEIVED, {})], now)

    reply_to = _Replier(
        conn, outbox, project_id, settings, conversation, number["number"], sender.e164
    )
    if keyword == "opt_out":
        newly = await optouts_repo.record(
            conn, project_id, sender.e164, inbound.body.strip().upper(), now, number=ours.e164
        )
        active = await conversations_repo.active_for_user(conn, project_id, sender.e164)
        await conversations.end_conversations(
            conn,
            project_id,
            [c.id for c in active],
            status=conversations.OPTED_OUT,
            reason="opt_out",
            now=now,
        )
        if newly:
            await reply_to.send(compliance.message_for("opt_out", settings))
            await reply_to.emit("recipient.opted_out", inbound.body.strip().upper(), attached)
    elif keyword == "opt_in" and opted_out:
        await optouts_repo.remove(conn, project_id, sender.e164)
        await reply_to.send(compliance.message_for("opt_in", settings))
        await reply_to.emit("recipient.opted_in", inbound.body.strip().upper(), attached)
    elif keyword == "help":
        await reply_to.send(compliance.message_for("help", settings))
    elif not opted_out and keyword is None and compliance.maybe_opt_out(inbound.body, settings):
        await reply_to.send(compliance.OPT_OUT_QUESTION)
    elif not opted_out and conversation.status in conversations.ACTIVE:
        if not conversation.engaged:
            await conversations_repo.update_one(conn, conversation.id, {"engaged": True})
        await conversations.restart_timers(conn, conversation, attached.settings, engaged=True)
        if (
            conversation.status == conversations.OPEN
            and not conversation.agent_paused
            and conversations.has_agent(attached.settings)
        ):
            await queue.enqueue(
                conn,
                NewJob(
                    kind=conversations.TURN_JOB,
                    ref=conversation.id,
                    payload={"message_id": row["id"]},
                ),
            )
    return record


class _Replier:
    """Answers a compliance keyword within the conversation the keyword arrived in."""

    def __init__(
        self,
        conn: AsyncConnection,
        outbox: Outbox,
        project_id: str,
        settings: Mapping[str, Any],
        conversation: ConversationRecord,
        ours: str,
        person: str,
    ) -> None:
        self.conn = conn
        self.outbox = outbox
        self.project_id = project_id
        self.settings = settings
        self.conversation = conversation
        self.ours = ours
        self.person = person

    async def send(self, text: str) -> None:
        await self.outbox.send(
            self.conn,
            self.project_id,
            OutboundSpec(
                to=self.person,
                from_=self.ours,
                body=text,
                channel=self.conversation.channel,
                conversation_id=self.conversation.id,
                purpose=compliance.COMPLIANCE,
            ),
            project_settings=self.settings,
        )

    async def emit(self, event_type: str, keyword: str, attached: conversations.Attached) -> None:
        await webhooks.emit(
            self.conn,
            project_id=self.project_id,
            event_type=event_type,
            data={
                "recipient": self.person,
                "number": self.ours,
                "keyword": keyword,
                "source": "keyword",
                "conversation_id": self.conversation.id,
                "metadata": dict(self.conversation.metadata or {}),
            },
            webhook_url=attached.settings.get("webhook_url"),
            webhook_format=attached.settings.get("webhook_format"),
        )
