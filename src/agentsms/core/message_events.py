"""``message.*`` webhook events, hooked where messages are accepted and change status.

Built in the domain (this module is the one place that says what a ``message.*`` event
holds) and handed to ``webhooks.events`` to store and deliver.

``on_accepted`` runs at intake (``message.queued`` / ``message.scheduled``) and
``on_status_changes`` where ``core.messages.record_events`` appends status events. Both
do nothing beyond one indexed query per project when the project has no enabled endpoint
(a conversation's ``webhook_url`` is one of the project's endpoints from its first event);
otherwise each event carries the message resource (the JSON of ``GET /v1/messages/{id}``),
its metadata, and for a message in a conversation the conversation, its metadata and its
recent history (for all the conversations of a change at once: ``webhook_contexts``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.core import conversations, rendering
from agentsms.store.records import MessageKey, MessageRecord
from agentsms.store.repositories import Row
from agentsms.store.repositories import messages as messages_repo
from agentsms.store.repositories import webhooks as repo
from agentsms.webhooks.events import MESSAGE_EVENTS, Event, emit_many, subscribed

Change = tuple[MessageKey, str, Mapping[str, Any]]
"""A message, its new status and the event's details."""


async def on_accepted(conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Events for messages just accepted (queued, or scheduled for later), given as the
    rows inserted."""
    for project_id in {row["project_id"] for row in rows}:
        # The project's endpoints first: when nobody listens, no change is worth building.
        endpoints = await repo.active_endpoints(conn, project_id)
        if endpoints:
            changes: list[Change] = [
                (MessageRecord.from_mapping(row), str(row["status"]), {})
                for row in rows
                if row["project_id"] == project_id and _is_event(str(row["status"]))
            ]
            if changes:
                await _emit_project(conn, project_id, changes, endpoints, reread=False)


async def on_status_changes(conn: AsyncConnection, changes: Sequence[Change]) -> None:
    """Events for (message, new status, data) triples, as given to ``record_events``."""
    await _emit(conn, changes, reread=True)


def _is_event(status: str) -> bool:
    return f"message.{status}" in MESSAGE_EVENTS


async def _emit(
    conn: AsyncConnection,
    changes: Sequence[Change],
    *,
    reread: bool,
) -> None:
    by_project: dict[str, list[Change]] = {}
    for change in changes:
        if _is_event(change[1]):
            by_project.setdefault(change[0].project_id, []).append(change)
    for project_id, items in by_project.items():
        endpoints = await repo.active_endpoints(conn, project_id)
        if endpoints:  # the common case is none: one indexed query and done
            await _emit_project(conn, project_id, items, endpoints, reread=reread)


async def _emit_project(
    conn: AsyncConnection,
    project_id: str,
    changes: Sequence[Change],
    endpoints: Sequence[Row],
    *,
    reread: bool,
) -> None:
    """Events for the changes of one project, whose active ``endpoints`` are given."""
    listening = [e for e in endpoints if e["kind"] == repo.ENDPOINT]
    hooked: Mapping[str, str] = {}
    if len(listening) < len(endpoints):
        # Some conversation of the project has a webhook_url: find out which.
        hooked = await _webhook_urls(conn, changes)
    wanted = [
        item
        for item in changes
        if (item[0].conversation_id or "") in hooked
        or any(subscribed(e["event_types"], f"message.{item[1]}") for e in listening)
    ]
    if not wanted:
        return
    contexts, recent = await _contexts(
        conn,
        {row.conversation_id for row, _, _ in wanted if row.conversation_id},
    )
    current: dict[str, MessageRecord] = {}
    if reread:
        # The rows given may predate the change; payloads show the message as it is now.
        # Those in their conversation's recent history were just read as they are now.
        current = {row.id: recent[row.id] for row, _, _ in wanted if row.id in recent}
        missing = [row.id for row, _, _ in wanted if row.id not in current]
        if missing:
            current.update(await messages_repo.messages_by_ids(conn, missing))
    events = []
    for row, status, details in wanted:
        message = current.get(row.id)
        if message is None:
            if not isinstance(row, MessageRecord):
                continue  # only a part of a message that is gone: nothing to show
            message = row
        context = contexts.get(message.conversation_id or "")
        events.append(
            Event(
                f"message.{status}",
                _data(message, details, context),
                (context or {}).get("webhook_url") or None,
                (context or {}).get("webhook_format") or None,
            )
        )
    await emit_many(conn, project_id, events, endpoints=endpoints)


async def _webhook_urls(conn: AsyncConnection, items: Sequence[Change]) -> Mapping[str, str]:
    ids = sorted({row.conversation_id for row, _, _ in items if row.conversation_id})
    if not ids:
        return {}
    return await conversations.webhook_urls(conn, ids)


async def _contexts(
    conn: AsyncConnection, ids: set[str]
) -> tuple[dict[str, dict[str, Any]], dict[str, MessageRecord]]:
    if not ids:
        return {}, {}
    return await conversations.webhook_contexts_and_messages(conn, sorted(ids))


def _data(
    message: MessageRecord, details: Mapping[str, Any], context: Mapping[str, Any] | None
) -> dict[str, Any]:
    resource = rendering.message(message).model_dump(mode="json", by_alias=True)
    data: dict[str, Any] = {
        "message": resource,
        "metadata": resource["metadata"],
    }
    if details:
        data["details"] = dict(details)
    if context is not None:
        conversation = context.get("conversation") or {}
        data["conversation"] = conversation
        data["conversation_metadata"] = dict(conversation.get("metadata") or {})
        data["recent_history"] = list(context.get("recent_history") or [])
    return data
