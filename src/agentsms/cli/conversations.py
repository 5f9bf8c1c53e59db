"""``agentsms conversations list|show``: read conversations from a running agentsms."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.text import Text

from agentsms.api.schemas import Conversation
from agentsms.cli.client import (
    ApiKeyOption,
    JsonOption,
    OutputOption,
    ProfileOption,
    UrlOption,
    _clock,
    _emit,
    _first,
    _plural,
    _print_list,
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
    output: OutputOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    profile: ProfileOption = None,
) -> None:
    """List conversations, newest first."""
    with _session(url, api_key, profile) as client:
        found = _first(
            limit,
            lambda size: client.iter_conversations(
                status=status, user_number=user_number, outcome=outcome, limit=size
            ),
        )
    _print_list(
        output,
        as_json,
        found,
        title=_plural(len(found), "conversation"),
        columns=("id", "created", "agent", "person", "status", "outcome"),
        row=lambda conversation: (
            conversation.id,
            _when(conversation.created_at),
            conversation.agent_number,
            conversation.user_number,
            _status(conversation.status),
            conversation.outcome or "-",
        ),
    )


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
    output: OutputOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    profile: ProfileOption = None,
) -> None:
    """Print a conversation's exchange, its outcome and its extracted data."""
    with _session(url, api_key, profile) as client:
        conversation = client.get_conversation(conversation_id)
    if _emit(output, as_json, conversation.model_dump(mode="json", by_alias=True)):
        return
    for line in transcript(conversation):
        out.print(Text(line))


@conversations_app.command("reply")
def reply(
    conversation_id: Annotated[str, typer.Argument(help="conv_…", show_default=False)],
    body: Annotated[str, typer.Argument(help="What to write", show_default=False)],
    media_url: Annotated[
        list[str] | None, typer.Option("--media-url", help="Media to attach (repeatable)")
    ] = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    profile: ProfileOption = None,
) -> None:
    """Write to the person as a human; the conversation's agent pauses."""
    with _session(url, api_key, profile) as client:
        message = client.send_in_conversation(conversation_id, body, media_urls=media_url or [])
    out.print(f"{message.id} {message.status}: {message.to}")


@conversations_app.command("end")
def end(
    conversation_id: Annotated[str, typer.Argument(help="conv_…", show_default=False)],
    outcome: Annotated[
        str | None, typer.Option("--outcome", help="e.g. confirmed, rescheduled")
    ] = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    profile: ProfileOption = None,
) -> None:
    """End the conversation, with an outcome if given."""
    with _session(url, api_key, profile) as client:
        conversation = client.end_conversation(conversation_id, outcome=outcome)
    out.print(f"{conversation.id}: {conversation.status}, outcome {conversation.outcome or '-'}")


@conversations_app.command("pause")
def pause(
    conversation_id: Annotated[str, typer.Argument(help="conv_…", show_default=False)],
    resume: Annotated[
        bool, typer.Option("--resume", help="Let the agent answer again instead")
    ] = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    profile: ProfileOption = None,
) -> None:
    """Pause the conversation's agent (a human takes over), or --resume it."""
    with _session(url, api_key, profile) as client:
        client.set_agent_paused(conversation_id, paused=not resume)
    out.print(f"{conversation_id}: agent {'resumed' if resume else 'paused'}")
