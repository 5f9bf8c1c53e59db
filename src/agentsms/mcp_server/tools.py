"""The MCP tools: texting people through agentsms, described for an LLM.

Each tool is one or two calls of the SDK's :class:`AsyncClient`, obtained per call from a
:data:`ClientFor` (the backend): so the same tools serve ``/mcp`` in the app and
``agentsms mcp`` over stdio. An API error comes back as an MCP tool error (``isError``)
whose text and structured content are the API's problem detail.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any, Final, Literal, ParamSpec

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from agentsms.api.schemas import Conversation, Message, Recipient
from agentsms.client import AgentsmsClientError, ApiError, AsyncClient
from agentsms.version import __version__

ClientFor = Callable[[Context], AbstractAsyncContextManager[AsyncClient]]
"""The backend: an API client acting for the caller of one tool call."""

MAX_WAIT_SECONDS: Final = 120
_POLL_FIRST: Final = 0.25
_POLL_MAX: Final = 1.0
_PROGRESS_EVERY: Final = 5.0
_RECENT_REPLIES: Final = 50

INSTRUCTIONS: Final = (
    "Text people by SMS/MMS through agentsms. send_message opens (or resumes) a "
    "conversation with the person; wait_for_reply waits for their answer; reply writes "
    "in a conversation as a human (pausing its automated agent); end_conversation closes "
    "it with an outcome. Phone numbers are E.164, e.g. +14155552671."
)

P = ParamSpec("P")

E164 = Annotated[str, Field(description="A phone number in E.164 form, e.g. +14155552671")]
MessageId = Annotated[str, Field(description="A message id (msg_...)")]
ConversationId = Annotated[str, Field(description="A conversation id (conv_...)")]
MediaUrls = Annotated[
    list[str] | None,
    Field(description="Public URLs of images or files to attach (makes it an MMS)"),
]
FromNumber = Annotated[
    str | None,
    Field(
        description="Which of the project's numbers sends it (see list_numbers); default: chosen"
    ),
]
SendAt = Annotated[
    str | None,
    Field(description="Send later: ISO 8601 with a zone (2030-01-01T09:00:00Z) or unix seconds"),
]
Metadata = Annotated[
    dict[str, Any] | None,
    Field(description="Your own key-value data, stored with the message and in webhooks"),
]
Persona = Annotated[
    str | None,
    Field(
        description="A persona (id or numeric alias) whose agent carries the conversation; "
        "without a body, the persona's agent writes the first message"
    ),
]


def _problem_result(problem: dict[str, Any]) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=json.dumps(problem))],
        structured_content=problem,
        is_error=True,
    )


def _reporting_problems(
    tool: Callable[P, Awaitable[dict[str, Any]]],
) -> Callable[P, Awaitable[dict[str, Any] | CallToolResult]]:
    """The tool, with the API's errors returned as MCP tool errors carrying the problem."""

    @functools.wraps(tool)
    async def run(*args: P.args, **kwargs: P.kwargs) -> dict[str, Any] | CallToolResult:
        try:
            return await tool(*args, **kwargs)
        except ApiError as error:
            return _problem_result(error.problem())
        except AgentsmsClientError as error:
            return _problem_result(
                {
                    "type": "about:blank",
                    "status": 503,
                    "code": "unreachable",
                    "title": "agentsms unreachable",
                    "detail": str(error),
                    "errors": [],
                }
            )

    return run


def _message(message: Message) -> dict[str, Any]:
    return message.model_dump(mode="json", by_alias=True)


def _conversation(conversation: Conversation, *, messages: bool) -> dict[str, Any]:
    exclude = None if messages else {"messages"}
    return conversation.model_dump(mode="json", by_alias=True, exclude=exclude)


def _reply_after(conversation: Conversation) -> str | None:
    """The message a reply must come after: our latest text, else the latest of all."""
    messages = conversation.messages or []
    ours = [m.id for m in messages if m.direction == "outbound"]
    if ours:
        return ours[-1]
    return messages[-1].id if messages else None


async def _first_reply(
    client: AsyncClient, conversation_id: str, after: str | None
) -> Message | None:
    """The person's earliest text in the conversation after message ``after``, if any."""
    page = await client.list_messages(
        conversation_id=conversation_id, status="received", limit=_RECENT_REPLIES
    )
    newer = [m for m in page.data if after is None or m.id > after]
    return min(newer, key=lambda m: m.id) if newer else None


def build_server(client_for: ClientFor) -> MCPServer:
    """The agentsms MCP server whose tools act through ``client_for``."""
    server: MCPServer = MCPServer(
        name="agentsms",
        version=__version__,
        instructions=INSTRUCTIONS,
        log_level="WARNING",  # the SDK configures logging if nothing else has
    )
    reads = ToolAnnotations(read_only_hint=True, open_world_hint=False)
    texts = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=True)

    @server.tool(annotations=texts)
    @_reporting_problems
    async def send_message(
        to: E164,
        ctx: Context,
        body: Annotated[
            str | None, Field(description="The text; omit it to let the persona's agent write it")
        ] = None,
        persona: Persona = None,
        media_urls: MediaUrls = None,
        from_number: FromNumber = None,
        send_at: SendAt = None,
        metadata: Metadata = None,
    ) -> dict[str, Any]:
        """Text one person. Opens or resumes the conversation with them; the answer is the
        queued message, with its id and conversation_id (use them with get_message and
        wait_for_reply)."""
        async with client_for(ctx) as client:
            message = await client.send_message(
                to,
                body,
                from_=from_number,
                media_urls=media_urls,
                send_at=send_at,
                metadata=metadata,
                conversation={"persona_id": persona} if persona else None,
            )
        return _message(message)

    @server.tool(annotations=texts)
    @_reporting_problems
    async def send_batch(
        recipients: Annotated[
            list[E164 | Recipient],
            Field(
                description="Up to 10,000 people: phone numbers, or objects with 'to' and their "
                "own 'body' or 'variables' (filling {{name}} placeholders)",
                min_length=1,
            ),
        ],
        ctx: Context,
        body: Annotated[
            str | None, Field(description="The text for everyone; may use {{variables}}")
        ] = None,
        persona: Persona = None,
        media_urls: MediaUrls = None,
        from_number: FromNumber = None,
        send_at: SendAt = None,
        metadata: Metadata = None,
    ) -> dict[str, Any]:
        """Text many people at once, accepted all or nothing. The answer is the batch, with
        one message id per recipient in order."""
        listed = [
            r if isinstance(r, str) else r.model_dump(mode="json", exclude_unset=True)
            for r in recipients
        ]
        async with client_for(ctx) as client:
            batch = await client.create_batch(
                listed,
                body=body,
                from_=from_number,
                media_urls=media_urls,
                send_at=send_at,
                metadata=metadata,
                conversation={"persona_id": persona} if persona else None,
            )
        return batch.model_dump(mode="json")

    @server.tool(annotations=reads)
    @_reporting_problems
    async def get_message(message_id: MessageId, ctx: Context) -> dict[str, Any]:
        """One message: its status (queued, sent, delivered, failed, received, ...), error if
        any, body, and conversation_id."""
        async with client_for(ctx) as client:
            return _message(await client.get_message(message_id))

    @server.tool(annotations=reads)
    @_reporting_problems
    async def list_conversations(
        ctx: Context,
        status: Annotated[
            Literal["open", "needs_attention", "ended", "opted_out"] | None,
            Field(description="Only conversations in this state"),
        ] = None,
        user_number: Annotated[
            str | None, Field(description="Only those with this person (E.164)")
        ] = None,
        limit: Annotated[int, Field(ge=1, le=100, description="How many, newest first")] = 20,
        cursor: Annotated[
            str | None, Field(description="next_cursor of the previous answer, for more")
        ] = None,
    ) -> dict[str, Any]:
        """The project's conversations with people, newest first (without their messages:
        get_conversation shows those)."""
        async with client_for(ctx) as client:
            page = await client.list_conversations(
                status=status, user_number=user_number, limit=limit, cursor=cursor
            )
        return {
            "conversations": [_conversation(c, messages=False) for c in page.data],
            "next_cursor": page.next_cursor,
        }

    @server.tool(annotations=reads)
    @_reporting_problems
    async def get_conversation(conversation_id: ConversationId, ctx: Context) -> dict[str, Any]:
        """One conversation with all its messages, oldest first: who said what, its status,
        outcome and whether its agent is paused."""
        async with client_for(ctx) as client:
            return _conversation(await client.get_conversation(conversation_id), messages=True)

    @server.tool(annotations=texts)
    @_reporting_problems
    async def reply(
        conversation_id: ConversationId,
        body: Annotated[str, Field(description="The text to send to the person")],
        ctx: Context,
        media_urls: MediaUrls = None,
    ) -> dict[str, Any]:
        """Write to the person in an existing conversation as a human. This pauses the
        conversation's automated agent so that it does not answer in parallel."""
        async with client_for(ctx) as client:
            message = await client.send_in_conversation(
                conversation_id, body, media_urls=media_urls or ()
            )
        return _message(message)

    @server.tool(annotations=ToolAnnotations(destructive_hint=True, idempotent_hint=True))
    @_reporting_problems
    async def end_conversation(
        conversation_id: ConversationId,
        ctx: Context,
        outcome: Annotated[
            str | None,
            Field(description="How it ended, e.g. confirmed, rescheduled, not_interested"),
        ] = None,
    ) -> dict[str, Any]:
        """Close a conversation, recording its outcome. The person's next text starts a new
        one."""
        async with client_for(ctx) as client:
            ended = await client.end_conversation(conversation_id, outcome=outcome)
        return _conversation(ended, messages=False)

    @server.tool(annotations=reads)
    @_reporting_problems
    async def list_numbers(ctx: Context) -> dict[str, Any]:
        """The project's own phone numbers that texts can be sent from."""
        async with client_for(ctx) as client:
            numbers = await client.list_numbers()
        return {"numbers": [n.model_dump(mode="json") for n in numbers]}

    @server.tool(annotations=reads)
    @_reporting_problems
    async def wait_for_reply(
        conversation_id: ConversationId,
        ctx: Context,
        timeout_seconds: Annotated[
            float,
            Field(gt=0, le=MAX_WAIT_SECONDS, description="Give up after this long (max 120)"),
        ] = 30,
        after_message_id: Annotated[
            str | None,
            Field(
                description="Wait for a text after this message (e.g. the last reply you saw); "
                "default: after the latest message sent to the person"
            ),
        ] = None,
    ) -> dict[str, Any]:
        """Wait for the person's next text in a conversation, so you can text and wait without
        polling. Returns at once if they already answered your latest message; else when they
        do, or after timeout_seconds with replied=false."""
        started = time.monotonic()
        deadline = started + timeout_seconds
        next_report = started + _PROGRESS_EVERY
        async with client_for(ctx) as client:
            conversation = await client.get_conversation(conversation_id)
            after = after_message_id or _reply_after(conversation)
            pause = _POLL_FIRST
            while (found := await _first_reply(client, conversation_id, after)) is None:
                now = time.monotonic()
                if now >= next_report:  # keeps clients that time out on silence waiting
                    await ctx.report_progress(now - started, timeout_seconds, "no reply yet")
                    next_report = now + _PROGRESS_EVERY
                left = deadline - now
                if left <= 0:
                    latest = await client.get_conversation(conversation_id)
                    return {
                        "replied": False,
                        "message": None,
                        "conversation_status": latest.status,
                    }
                await anyio.sleep(min(pause, left))
                pause = min(pause * 2, _POLL_MAX)
        return {"replied": True, "message": _message(found)}

    return server
