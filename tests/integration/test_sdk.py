"""The Python SDK against the real app: typed answers, problem errors, pages, safe retries.

``AsyncClient`` calls the app through httpx's ASGI transport; ``Client`` (blocking) calls
it over real HTTP on loopback, from a thread, while the app serves in the test's loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import anyio
import httpx
import pytest

from agentsms import (
    AsyncClient,
    AuthenticationError,
    Client,
    ConnectionFailed,
    NotFoundError,
    UnprocessableError,
)
from tests.conftest import Gateway
from tests.integration.conversation_helpers import forget_deliveries
from tests.integration.helpers import idempotency_row, message_rows
from tests.integration.live import serve

T = TypeVar("T")
OURS = "+14155550100"


@pytest.fixture(autouse=True)
async def _no_lingering_deliveries(gateway: Gateway) -> AsyncIterator[None]:
    yield
    await forget_deliveries(gateway)


class LoseFirstAnswer(httpx.AsyncBaseTransport):
    """The ASGI transport, except that the first answer is lost after the app handled it
    (as when a connection drops mid-response); every request's method, path, key and
    status is recorded."""

    def __init__(self, app: Any, *, lose: int = 1) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.lose = lose
        self.seen: list[tuple[str, str, str | None, int]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        await response.aread()
        key = request.headers.get("Idempotency-Key")
        self.seen.append((request.method, request.url.path, key, response.status_code))
        if self.lose > 0:
            self.lose -= 1
            raise httpx.ReadError("connection lost", request=request)
        return response


class LoseFirstAnswerSync(httpx.BaseTransport):
    """:class:`LoseFirstAnswer` for the blocking client, over real HTTP."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.lose = 1
        self.keys: list[str | None] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        response.read()
        self.keys.append(request.headers.get("Idempotency-Key"))
        if self.lose > 0:
            self.lose -= 1
            raise httpx.ReadError("connection lost", request=request)
        return response


def sdk(gateway: Gateway, transport: httpx.AsyncBaseTransport | None = None) -> AsyncClient:
    return AsyncClient(
        "http://testserver",
        gateway.api_key,
        transport=transport or httpx.ASGITransport(app=gateway.app),
    )


async def in_thread(work: Callable[[], T]) -> T:
    return await anyio.to_thread.run_sync(work)


async def test_async_client_sends_and_pages_through_typed_messages(gateway: Gateway) -> None:
    async with sdk(gateway) as client:
        sent = [
            await client.send_message(f"+1415555330{n}", f"hello {n}", metadata={"n": n})
            for n in range(5)
        ]
        first = await client.list_messages(limit=2)
        every = [message.id async for message in client.iter_messages(limit=2)]
        one = await client.get_message(sent[0].id)

    assert [m.status for m in sent] == ["queued"] * 5
    assert one.to == "+14155553300"
    assert one.body == "hello 0"
    assert one.metadata == {"n": 0}
    assert one.from_ == OURS
    assert one.conversation_id is not None
    assert [m.id for m in first.data] == [sent[4].id, sent[3].id]
    assert first.next_cursor == sent[3].id
    assert every == [m.id for m in reversed(sent)]  # three pages, newest first


async def test_api_errors_raise_with_the_problem_detail(gateway: Gateway) -> None:
    async with sdk(gateway) as client:
        with pytest.raises(NotFoundError) as missing:
            await client.get_message("msg_01NOSUCHMESSAGE0000000000")
        with pytest.raises(UnprocessableError) as invalid:
            await client.send_message("not a number", "hi", validity_seconds=0)
    bad_key = AsyncClient(
        "http://testserver", "ask_wrong", transport=httpx.ASGITransport(app=gateway.app)
    )
    async with bad_key:
        with pytest.raises(AuthenticationError) as refused:
            await bad_key.list_numbers()

    assert missing.value.status == 404
    assert missing.value.code == "not_found"
    assert invalid.value.status == 422
    assert invalid.value.code == "validation_failed"
    assert {e.field for e in invalid.value.errors} == {"validity_seconds"}
    problem = invalid.value.problem()
    assert problem["errors"] == [
        {"field": e.field, "message": e.message} for e in invalid.value.errors
    ]
    assert problem["type"].endswith("validation_failed")
    assert problem["detail"]
    assert refused.value.status == 401
    assert await message_rows(gateway) == []


async def test_a_send_whose_answer_was_lost_is_retried_with_the_same_key(
    gateway: Gateway,
) -> None:
    transport = LoseFirstAnswer(gateway.app)
    async with sdk(gateway, transport) as client:
        message = await client.send_message("+14155553310", "only once")

    assert [(m, p, s) for m, p, _, s in transport.seen] == [("POST", "/v1/messages", 202)] * 2
    keys = {key for _, _, key, _ in transport.seen}
    assert len(keys) == 1
    (key,) = keys
    assert key is not None
    assert key.startswith("sdk-")
    rows = await message_rows(gateway)
    assert [row["id"] for row in rows] == [message.id]  # the retry replayed, sent nothing
    assert await idempotency_row(gateway, key) is not None


async def test_a_post_without_idempotency_is_not_resent_after_a_lost_answer(
    gateway: Gateway,
) -> None:
    async with sdk(gateway) as client:
        sent = await client.send_message("+14155553311", "hi")
    assert sent.conversation_id is not None
    transport = LoseFirstAnswer(gateway.app)
    async with sdk(gateway, transport) as client:
        with pytest.raises(ConnectionFailed):
            await client.send_in_conversation(sent.conversation_id, "a human writes")

    assert len(transport.seen) == 1  # a human's text could otherwise go out twice


async def test_rate_limited_calls_wait_for_retry_after_and_go_through(gateway: Gateway) -> None:
    patched = await gateway.client.patch(
        "/v1/project", json={"settings": {"rate_limit_per_second": 2}}
    )
    assert patched.status_code == 200
    transport = LoseFirstAnswer(gateway.app, lose=0)
    async with sdk(gateway, transport) as client:
        sent = [await client.send_message("+14155553320", f"n{n}") for n in range(4)]

    statuses = [status for *_, status in transport.seen]
    assert 429 in statuses
    assert statuses.count(202) == 4
    limited_keys = {key for *_, key, status in transport.seen if status == 429}
    accepted_keys = {key for *_, key, status in transport.seen if status == 202}
    assert limited_keys <= accepted_keys  # each refused call was resent with its own key
    assert len(await message_rows(gateway)) == len(sent) == 4


async def test_blocking_client_over_http_pages_errors_and_retries(gateway: Gateway) -> None:
    people = ["+14155553331", "+14155553332", "+14155553333"]
    async with serve(gateway.app) as url:

        def scenario() -> dict[str, Any]:
            lossy = LoseFirstAnswerSync()
            with Client(url, gateway.api_key, transport=lossy) as client:
                sent = [client.send_message(person, "hi") for person in people]
            with Client(url, gateway.api_key) as client:
                conversations = [c.user_number for c in client.iter_conversations(limit=2)]
                shown = client.get_conversation(str(sent[0].conversation_id))
                try:
                    client.get_conversation("conv_01NOSUCHCONVERSATION00000")
                except NotFoundError as error:
                    missing = error
            return {
                "keys": lossy.keys,
                "sent": sent,
                "conversations": conversations,
                "shown": shown,
                "missing": missing,
            }

        result = await in_thread(scenario)

    keys = result["keys"]
    assert len(keys) == 4
    assert keys[0] == keys[1]
    assert len(set(keys)) == 3
    assert len(await message_rows(gateway)) == 3
    assert result["conversations"] == list(reversed(people))
    shown = result["shown"]
    assert shown.user_number == people[0]
    assert [m.id for m in shown.messages] == [result["sent"][0].id]
    assert result["missing"].status == 404
    assert result["missing"].code == "not_found"


async def test_async_client_streams_message_events_over_http(gateway: Gateway) -> None:
    async with (
        serve(gateway.app) as url,
        AsyncClient(url, gateway.api_key) as client,
        client.open_stream(read_timeout=10) as events,
    ):
        sent = await client.send_message("+14155553340", "watch me")
        await gateway.drain()  # the worker moves it on
        with anyio.fail_after(10):
            first = await anext(e async for e in events if e.message_id == sent.id)

    # The acceptance (seq 0: intake stores no event row) comes if the message was made after
    # the stream started where it starts; "sending" is later, from the event log.
    assert (first.status, first.seq > 0) in {("queued", False), ("sending", True)}
