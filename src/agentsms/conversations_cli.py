"""``agentsms conversations list|show``: read conversations from a running agentsms."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from agentsms.api.schemas import Conversation
from agentsms.client import DEFAULT_URL
from agentsms.client_cli import (
    ApiKeyOption,
    JsonOption,
    UrlOption,
    _clock,
    _dump,
    _session,
    _when,
    out,
)

conversations_app = typer.Typer(help="Conversations with people.", no_args_is_help=True)

STATUS_STYLES = {
    "open": "cyan",
    "needs_attention": "bold yellow",
    "ended": "green",
    "opted_out": "magenta",
}


def register(app: typer.Typer) -> None:
    """Add ``conversations`` to ``app``."""
    app.add_typer(conversations_app, name="conversations")


def _status(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, ""))


@conversations_app.command("list")
def list_conversations(
    status: Annotated[
        str | None, typer.Option("--status", help="open, needs_attention, ended, opted_out")
    ] = None,
    user_number: Annotated[str | None, typer.Option("--user", help="The person's number")] = None,
    outcome: Annotated[str | None, typer.Option("--outcome")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many, newest first")] = 20,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
) -> None:
    """List conversations, newest first."""
    found: list[Conversation] = []
    with _session(url, api_key) as client:
        cursor: str | None = None
        while len(found) < limit:
            page = client.list_conversations(
                status=status,
                user_number=user_number,
                outcome=outcome,
                limit=min(limit - len(found), 500),
                cursor=cursor,
            )
            found.extend(page.data)
            cursor = page.next_cursor
            if cursor is None:
                break
    if as_json:
        _dump([c.model_dump(mode="json") for c in found])
        return
    table = Table(title=f"{len(found)} conversation{'s' if len(found) != 1 else ''}")
    for column in ("id", "created", "agent", "person", "status", "outcome"):
        table.add_column(column, no_wrap=True)
    for conversation in found:
        table.add_row(
            conversation.id,
            _when(conversation.created_at),
            conversation.agent_number,
            conversation.user_number,
            _status(conversation.status),
            conversation.outcome or "-",
        )
    out.print(table)


def transcript(conversation: Conversation) -> list[str]:
    """The exchange as plain lines: who said what, then the outcome and extracted data."""
    lines = [
        f"conversation {conversation.id}  ({conversation.status})",
        f"agent {conversation.agent_number}  <->  person {conversation.user_number}",
        "",
    ]
    for message in conversation.messages or []:
        who = "person" if message.direction == "inbound" else "agent "
        lines.append(f"[{_clock(message.created_at)}] {who}: {message.body}")
    lines.append("")
    lines.append(f"outcome:   {conversation.outcome or '-'}")
    if conversation.end_reason:
        lines.append(f"ended by:  {conversation.end_reason}")
    lines.append("extracted:" + ("" if conversation.extracted else " -"))
    lines.extend(
        f"  {key}: {json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value}"
        for key, value in conversation.extracted.items()
    )
    return lines


@conversations_app.command("show")
def show_conversation(
    conversation_id: Annotated[str, typer.Argument(help="conv_…", show_default=False)],
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
) -> None:
    """Print a conversation's exchange, its outcome and its extracted data."""
    with _session(url, api_key) as client:
        conversation = client.get_conversation(conversation_id)
    if as_json:
        payload: dict[str, Any] = conversation.model_dump(mode="json", by_alias=True)
        _dump(payload)
        return
    for line in transcript(conversation):
        out.print(Text(line))
