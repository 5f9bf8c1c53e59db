"""``follow_message``: every status change of one message, live, until a final status."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Final

from httpx_sse import SSEError

from agentsms.api.schemas import MessageEvent
from agentsms.client._errors import ApiError, ConnectionFailed, StreamIdle
from agentsms.client._sync import Client

FINAL_STATUSES: Final = frozenset(
    {"delivered", "undelivered", "failed", "canceled", "expired", "received"}
)

_RANK: Final = {"scheduled": 0, "queued": 1, "sending": 2, "sent": 3}


class _Timeline:
    """The status changes of one message already reported, so each is reported once, in order."""

    def __init__(self) -> None:
        self.reported: set[str] = set()
        self.rank = -1
        self.final = False

    def news(self, events: Sequence[MessageEvent]) -> list[MessageEvent]:
        """Events not reported yet, up to and including a final one; stale ones dropped."""
        fresh: list[MessageEvent] = []
        for event in events:
            if self.final or event.id in self.reported:
                continue
            self.reported.add(event.id)
            rank = _RANK.get(event.status, len(_RANK))
            if rank < self.rank:
                continue  # statuses only move forward; an older one seen late adds nothing
            self.rank = rank
            fresh.append(event)
            self.final = event.status in FINAL_STATUSES
        return fresh


def follow_message(
    client: Client,
    message_id: str,
    *,
    idle_seconds: float = 5.0,
    poll_interval: float = 0.5,
    reconnects: int = 3,
) -> Iterator[MessageEvent]:
    """Yield every status change of one message, oldest first, until a final status.

    The message's own timeline (``GET /v1/messages/{id}/events``) is the truth; the live
    stream (``/v1/events/stream``) only says when to read it again. The timeline is read
    once the stream is open, then on each of the message's events, and whenever the stream
    has been quiet for ``idle_seconds``: so a change is never missed, nor reported twice or
    out of order, however fast the message moves. If the stream cannot be used (not
    offered, or the connection keeps dropping) it polls the timeline instead.
    """
    timeline = _Timeline()
    cursor: int | None = None
    failures = 0
    while failures < reconnects:
        try:
            with client.open_stream(after=cursor, read_timeout=idle_seconds) as events:
                yield from timeline.news(client.message_events(message_id))
                if timeline.final:
                    return
                for event in events:
                    failures = 0
                    cursor = event.seq or cursor  # acceptances have seq 0
                    if event.message_id == message_id:
                        yield from timeline.news(client.message_events(message_id))
                        if timeline.final:
                            return
            failures += 1  # the server ended the stream
        except StreamIdle:
            continue  # reconnect; reading the timeline on open covers anything missed
        except ApiError as error:
            if error.status not in (404, 405, 406, 501):
                raise
            break
        except (ConnectionFailed, SSEError):
            failures += 1
            time.sleep(poll_interval)
    while True:
        yield from timeline.news(client.message_events(message_id))
        if timeline.final:
            return
        time.sleep(poll_interval)
