"""``/v1/events/stream`` (``agentsms tail``) over real HTTP: acceptances included."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from agentsms import AsyncClient, MessageEvent
from tests.conftest import Gateway
from tests.integration.helpers import settle
from tests.integration.live import serve


async def _collect(
    client: AsyncClient, after: int | None, until: set[tuple[str, str]]
) -> list[MessageEvent]:
    """Events of the stream opened after ``after`` until each (message id, type) was seen."""
    seen: list[MessageEvent] = []
    async with asyncio.timeout(15), client.open_stream(after=after, read_timeout=15) as events:
        async for event in events:
            seen.append(event)
            if until <= {(e.message_id, e.type) for e in seen}:
                return seen
    raise AssertionError(f"the stream ended before {until}")


async def test_tail_after_0_shows_the_queued_and_scheduled_events(gateway: Gateway) -> None:
    sent = (
        await gateway.client.post("/v1/messages", json={"to": "+14155556101", "body": "a"})
    ).json()["id"]
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    scheduled = (
        await gateway.client.post(
            "/v1/messages", json={"to": "+14155556102", "body": "b", "send_at": later}
        )
    ).json()["id"]
    await settle(gateway, [sent])

    async with serve(gateway.app) as url, AsyncClient(url, gateway.api_key) as client:
        seen = await _collect(
            client,
            0,
            {(sent, "message.delivered"), (scheduled, "message.scheduled")},
        )

    assert [e.type for e in seen if e.message_id == sent] == [
        "message.queued",
        "message.sending",
        "message.sent",
        "message.delivered",
    ]
    (first, *rest) = [e for e in seen if e.message_id == sent]
    assert first.seq == 0  # no place in the event log: no SSE id either
    assert all(e.seq > 0 for e in rest)
    assert [e.type for e in seen if e.message_id == scheduled] == ["message.scheduled"]
    await gateway.client.post(f"/v1/messages/{scheduled}/cancel")


async def test_a_live_tail_shows_a_new_message_queued(gateway: Gateway) -> None:
    created: list[str] = []

    async def send() -> None:
        response = await gateway.client.post(
            "/v1/messages", json={"to": "+14155556103", "body": "c"}
        )
        created.append(response.json()["id"])
        await gateway.drain()

    async with (
        serve(gateway.app) as url,
        AsyncClient(url, gateway.api_key) as client,
        asyncio.timeout(15),
        client.open_stream(read_timeout=15) as events,
    ):
        await asyncio.sleep(0.5)  # the server's stream starts from "now" once it runs
        await send()
        seen: list[MessageEvent] = []
        async for event in events:
            seen.append(event)
            if event.type == "message.sent":
                break

    assert [(e.message_id, e.type) for e in seen] == [
        (created[0], "message.queued"),
        (created[0], "message.sending"),
        (created[0], "message.sent"),
    ]
