"""AgentPhone's published Python SDK (``agentphone``, pinned in the dev extra), unchanged,
as the client of ``/compat/agentphone`` on a real loopback server: every method of its
messaging resources, and ``construct_event`` / ``verify_webhook`` on the webhooks agentsms
really delivers. The SDK is synchronous (``requests``): each call runs in a thread while the
server runs on the test's event loop."""

from __future__ import annotations

import asyncio
import functools
import http.server
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import agentphone
import pytest
from agentphone import (
    AgentPhone,
    AgentPhoneError,
    NotFoundError,
    WebhookVerificationError,
    construct_event,
    verify_webhook,
)
from fastapi import FastAPI

from agentsms.app import create_app
from tests.compat.servers import serving
from tests.conftest import Gateway, open_gateway
from tests.conftest import test_settings as settings_for

SENDER = "+14155550100"  # every gateway project's simulator number (all channels)
PERSON = "+14155552671"
T = TypeVar("T")


@pytest.fixture(scope="module")
async def sdk_app(backend_url: str) -> AsyncIterator[FastAPI]:
    """Local development settings: webhooks may go to a loopback http receiver."""
    app = create_app(settings_for(backend_url, allow_insecure_urls=True))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture(scope="module")
async def port(sdk_app: FastAPI) -> AsyncIterator[int]:
    async with serving(sdk_app) as bound:
        yield bound


@pytest.fixture
async def gateway(sdk_app: FastAPI) -> AsyncIterator[Gateway]:
    async with open_gateway(sdk_app, "agentphone-sdk") as opened:
        yield opened


@pytest.fixture
def client(gateway: Gateway, port: int) -> Iterator[AgentPhone]:
    """The SDK exactly as published, only its base URL and key changed."""
    with AgentPhone(
        api_key=gateway.api_key, base_url=f"http://127.0.0.1:{port}/compat/agentphone"
    ) as sdk:
        yield sdk


async def call(method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run one (blocking) SDK call off the event loop that serves it."""
    return await asyncio.to_thread(functools.partial(method, *args, **kwargs))


async def fails(status: int, method: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
    """The SDK raises ``AgentPhoneError`` with ``status``; returns its message (for a 422,
    the SDK's message is the ``detail`` list, here as text)."""
    with pytest.raises(AgentPhoneError) as raised:
        await call(method, *args, **kwargs)
    assert raised.value.status == status, raised.value
    return str(raised.value.message)


def is_iso(value: str | None) -> bool:
    assert value is not None
    return datetime.fromisoformat(value).tzinfo is not None


async def reply(gateway: Gateway, body: str, *, to: str = SENDER) -> str:
    """The person texts the line (the simulator's inbound); returns the message id."""
    response = await gateway.client.post(
        "/v1/simulator/inbound", json={"from": PERSON, "to": to, "body": body}
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def pause_agent(gateway: Gateway, conversation_id: str) -> None:
    """The customer's own server answers here: the persona's LLM stays out of it."""
    paused = await gateway.client.post(
        f"/v1/conversations/{conversation_id}/agent", json={"paused": True}
    )
    assert paused.status_code == 200, paused.text


# -- numbers ---------------------------------------------------------------------------------


async def test_numbers_list_available_buy_get_update_messages_release(
    gateway: Gateway, client: AgentPhone
) -> None:
    listed = await call(client.numbers.list)
    assert isinstance(listed, agentphone.PhoneNumberList)
    assert listed.total == 1
    assert listed.has_more is False
    [line] = listed.data
    assert line.phone_number == SENDER
    assert line.country == "US"
    assert line.status == "active"
    assert is_iso(line.created_at)

    fetched = await call(client.numbers.get, line.id)
    assert fetched == line

    offered = await call(client.numbers.available, area_code="415", limit=3)
    assert len(offered) == 3
    assert all(isinstance(n, agentphone.AvailableNumber) for n in offered)
    assert all(n.phone_number.startswith("+1415555") for n in offered)
    assert SENDER not in [n.phone_number for n in offered]  # already in the pool
    assert all(n.area_code == "415" for n in offered)

    agent = await call(client.agents.create, name="Front desk", system_prompt="Be brief.")
    bought = await call(
        client.numbers.buy, country="US", area_code="415", agent_id=agent.id, external_id="crm-7"
    )
    assert isinstance(bought, agentphone.PhoneNumber)
    assert bought.phone_number == offered[0].phone_number
    assert bought.agent_id == agent.id
    assert bought.external_id == "crm-7"
    assert bought.country == "US"
    assert (await call(client.numbers.list)).total == 2

    updated = await call(
        client.numbers.update, bought.id, external_id="crm-8", expires_at="2030-01-01T00:00:00Z"
    )
    assert updated.external_id == "crm-8"
    assert updated.expires_at == "2030-01-01T00:00:00Z"
    assert (await call(client.numbers.get, bought.id)).external_id == "crm-8"

    sent = await call(
        client.messages.send,
        agent_id=agent.id,
        to_number=PERSON,
        body="Your table is ready",
        number_id=bought.id,
    )
    assert sent["from_number"] == bought.phone_number
    await reply(gateway, "On my way", to=bought.phone_number)
    messages = await call(client.numbers.get_messages, bought.id)
    assert isinstance(messages, agentphone.MessageList)
    assert [m.body for m in messages.data] == ["On my way", "Your table is ready"]
    assert [m.direction for m in messages.data] == ["inbound", "outbound"]
    assert all(is_iso(m.received_at) for m in messages.data)
    assert messages.data[1].from_number == bought.phone_number
    assert messages.data[1].to_number == PERSON
    assert messages.has_more is False
    later = await call(client.numbers.get_messages, bought.id, limit=1)
    assert [m.body for m in later.data] == ["On my way"]
    assert later.has_more is True
    # The line's own messages only: the project's other number has none of these.
    assert (await call(client.numbers.get_messages, line.id)).data == []

    assert await call(client.numbers.release, bought.id) == {"success": True}
    with pytest.raises(NotFoundError):
        await call(client.numbers.get, bought.id)
    assert "country" in await fails(422, client.numbers.buy, country="FR")
    assert "city" in await fails(422, client.numbers.available, city="Paris")


# -- contacts --------------------------------------------------------------------------------


async def test_contacts_create_list_search_get_update_delete(client: AgentPhone) -> None:
    ada = await call(
        client.contacts.create, phone_number="+1 415 555 2671", name="Ada", email="ada@example.com"
    )
    assert isinstance(ada, agentphone.Contact)
    assert ada.phone_number == PERSON  # normalised to E.164
    assert ada.name == "Ada"
    assert ada.email == "ada@example.com"
    assert ada.notes is None
    assert is_iso(ada.created_at)
    bob = await call(client.contacts.create, phone_number="+14155552672", name="Bob")
    everyone = await call(client.contacts.list)
    assert [c.name for c in everyone.data] == ["Ada", "Bob"]
    assert (everyone.total, everyone.has_more) == (2, False)
    found = await call(client.contacts.list, search="ada@")
    assert [c.id for c in found.data] == [ada.id]
    assert (await call(client.contacts.list, limit=1)).has_more is True
    assert await call(client.contacts.get, bob.id) == bob
    changed = await call(client.contacts.update, bob.id, notes="Prefers texts", name="Robert")
    assert (changed.name, changed.notes, changed.phone_number) == (
        "Robert",
        "Prefers texts",
        "+14155552672",
    )
    assert "already" in await fails(409, client.contacts.create, phone_number=PERSON, name="A2")
    await fails(422, client.contacts.create, phone_number="+1 555 12", name="Nobody")
    assert await call(client.contacts.delete, bob.id) == {"success": True}
    with pytest.raises(NotFoundError):
        await call(client.contacts.get, bob.id)


async def test_contact_capabilities_say_which_channels_reach_a_line(client: AgentPhone) -> None:
    mobile = await call(client.contacts.get_capabilities, "+44 7400 123456")
    assert mobile["phoneNumber"] == "+447400123456"
    assert mobile["lineType"] == "mobile"
    # The pool's simulator number carries every channel, and a mobile line takes them all.
    assert mobile["channels"] == ["sms", "mms", "whatsapp", "imessage"]
    assert (mobile["sms"], mobile["mms"], mobile["imessage"]) == (True, True, True)
    landline = await call(client.contacts.get_capabilities, "+44 20 7123 4567")
    assert landline["lineType"] == "landline"
    assert landline["channels"] == ["sms"]
    assert (landline["mms"], landline["imessage"]) == (False, False)
    assert "phone_number" in await fails(422, client.contacts.get_capabilities, "+1 555 12")


# -- agents ----------------------------------------------------------------------------------


async def test_agents_create_get_update_attach_conversations_detach_delete(
    gateway: Gateway, client: AgentPhone
) -> None:
    created = await call(
        client.agents.create,
        name="Scheduler",
        description="Books tables",
        system_prompt="Be brief.",
        begin_message="Hi!",
    )
    assert isinstance(created, agentphone.Agent)
    assert (created.name, created.description, created.system_prompt) == (
        "Scheduler",
        "Books tables",
        "Be brief.",
    )
    assert created.numbers == []
    listed = await call(client.agents.list)
    assert [a.id for a in listed.data] == [created.id]
    line = (await call(client.numbers.list)).data[0]
    attached = await call(client.agents.attach_number, created.id, line.id)
    assert attached["agentId"] == created.id
    got = await call(client.agents.get, created.id)
    assert [(n.id, n.phone_number, n.type) for n in got.numbers] == [(line.id, SENDER, "imessage")]
    updated = await call(
        client.agents.update, created.id, name="Booker", system_prompt="Be very brief."
    )
    assert (updated.name, updated.system_prompt, updated.description) == (
        "Booker",
        "Be very brief.",
        "Books tables",
    )
    await call(client.messages.send, agent_id=created.id, to_number=PERSON, body="Hello")
    threads = await call(client.agents.list_conversations, created.id)
    assert isinstance(threads, agentphone.ConversationList)
    assert [(c.participant, c.agent_id, c.message_count) for c in threads.data] == [
        (PERSON, created.id, 1)
    ]
    detached = await call(client.agents.detach_number, created.id, line.id)
    assert detached["agentId"] is None
    assert (await call(client.agents.get, created.id)).numbers == []
    await fails(422, client.agents.detach_number, created.id, line.id)
    assert await call(client.agents.delete, created.id) == {"success": True}
    with pytest.raises(NotFoundError):
        await call(client.agents.get, created.id)


async def test_voice_methods_answer_agentphones_error_shape(
    client: AgentPhone, gateway: Gateway
) -> None:
    agent = await call(client.agents.create, name="Voice")
    line = (await call(client.numbers.list)).data[0]
    for method, args in (
        (client.calls.list, ()),
        (client.calls.make, (agent.id, PERSON)),
        (client.calls.get, ("call_1",)),
        (client.agents.list_voices, ()),
        (client.agents.list_calls, (agent.id,)),
        (client.numbers.list_calls, (line.id,)),
    ):
        await fails(501, method, *args)
    response = await gateway.client.get(
        "/compat/agentphone/v1/calls", headers={"Authorization": f"Bearer {gateway.api_key}"}
    )
    assert response.status_code == 501
    error = response.json()["error"]
    assert set(error) == {"message", "code", "type", "details"}
    assert error["code"] == "NOT_IMPLEMENTED"
    assert "voice" in error["message"]


# -- messages and conversations --------------------------------------------------------------


async def test_messages_and_conversations(gateway: Gateway, client: AgentPhone) -> None:
    agent = await call(client.agents.create, name="Concierge", system_prompt="Help.")
    sent = await call(client.messages.send, agent_id=agent.id, to_number=PERSON, body="Hi there")
    assert set(sent) == {
        "id",
        "status",
        "channel",
        "from_number",
        "to_number",
        "media_urls",
        "reply_to_message_id",
        "reply_parent_unresolved",
    }
    assert (sent["channel"], sent["from_number"], sent["to_number"]) == ("sms", SENDER, PERSON)
    await reply(gateway, "Hello back")
    page = await call(client.conversations.list)
    assert (page.total, page.has_more) == (1, False)
    [summary] = page.data
    assert (summary.participant, summary.phone_number, summary.agent_id) == (
        PERSON,
        SENDER,
        agent.id,
    )
    assert summary.message_count == 2
    assert summary.last_message_preview == "Hello back"
    assert is_iso(summary.last_message_at)
    assert summary.messages == []  # the list leaves messages out

    thread = await call(client.conversations.get, summary.id)
    assert isinstance(thread, agentphone.Conversation)
    assert thread.message_count == 2
    assert [m.body for m in thread.messages] == ["Hi there", "Hello back"]
    assert [m.direction for m in thread.messages] == ["outbound", "inbound"]
    assert all(is_iso(m.received_at) for m in thread.messages)
    assert thread.messages[0].from_number == SENDER
    assert thread.messages[1].from_number == PERSON
    newest = await call(client.conversations.get, summary.id, message_limit=1)
    assert [m.body for m in newest.messages] == ["Hello back"]

    history = await call(client.conversations.get_messages, summary.id)
    assert isinstance(history, agentphone.MessageList)
    assert [m.body for m in history.data] == ["Hi there", "Hello back"]
    assert all(m.conversation_id == summary.id for m in history.data)
    assert all(m.channel == "sms" for m in history.data)
    first = history.data[0].received_at
    after = await call(client.conversations.get_messages, summary.id, after=first)
    assert [m.body for m in after.data] == ["Hello back"]

    updated = await call(client.conversations.update, summary.id, metadata={"tier": "gold"})
    assert updated.metadata == {"tier": "gold"}
    assert updated.message_count == 2
    assert "iMessage" in await fails(422, client.conversations.send_typing, summary.id)
    with pytest.raises(NotFoundError):
        await call(client.conversations.get, "conv_nope")


async def test_imessage_reaction_and_typing(client: AgentPhone) -> None:
    agent = await call(client.agents.create, name="Gallery")
    urls = ["https://cdn.example.com/1.jpg", "https://cdn.example.com/2.jpg"]
    sent = await call(
        client.messages.send, agent_id=agent.id, to_number=PERSON, body="", media_urls=urls
    )
    assert (sent["channel"], sent["media_urls"]) == ("imessage", urls)
    reaction = await call(client.messages.react, sent["id"], "love")
    assert reaction["reaction_type"] == "love"
    assert reaction["message_id"] == sent["id"]
    [thread] = (await call(client.conversations.list)).data
    assert thread.channel == "imessage"
    assert await call(client.conversations.send_typing, thread.id) == {"success": True}


# -- webhooks --------------------------------------------------------------------------------


@dataclass
class Hook:
    headers: dict[str, str]
    body: bytes


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[Hook]]]:
    with receiving() as server:
        yield server


@pytest.fixture
def second_receiver() -> Iterator[tuple[str, list[Hook]]]:
    with receiving() as server:
        yield server


@contextmanager
def receiving() -> Iterator[tuple[str, list[Hook]]]:
    """A real HTTP server on 127.0.0.1 recording what it is sent."""
    got: list[Hook] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            got.append(Hook({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks", got
    server.shutdown()


def parse(hook: Hook, secret: str) -> agentphone.WebhookEvent:
    """What the SDK's documented handler does with a delivery."""
    return construct_event(
        hook.body,
        hook.headers["x-webhook-signature"],
        secret,
        hook.headers["x-webhook-timestamp"],
    )


async def test_webhooks_and_construct_event_on_real_deliveries(
    gateway: Gateway, client: AgentPhone, receiver: tuple[str, list[Hook]]
) -> None:
    url, got = receiver
    hook = await call(client.webhooks.set, url, context_limit=5, timeout=10)
    assert isinstance(hook, agentphone.Webhook)
    assert hook.secret.startswith("whsec_")
    assert (hook.url, hook.context_limit, hook.timeout, hook.status) == (url, 5, 10, "active")
    fetched = await call(client.webhooks.get)
    assert fetched is not None
    assert fetched.secret == hook.secret  # what verify_webhook is documented to take

    agent = await call(client.agents.create, name="Hooks")
    await call(client.messages.send, agent_id=agent.id, to_number=PERSON, body="Table for 2?")
    [thread] = (await call(client.conversations.list)).data
    await call(client.conversations.update, thread.id, metadata={"step": "booking"})
    await pause_agent(gateway, thread.id)
    inbound_id = await reply(gateway, "Yes please, 7pm")
    await gateway.drain()
    assert len(got) == 1, got

    event = parse(got[0], hook.secret)
    assert isinstance(event, agentphone.WebhookEvent)
    assert (event.event, event.channel, event.agent_id) == ("agent.message", "sms", agent.id)
    assert is_iso(event.timestamp)
    data = event.data
    assert (data.message_id, data.conversation_id) == (inbound_id, thread.id)
    assert (data.from_number, data.to_number, data.message) == (PERSON, SENDER, "Yes please, 7pm")
    assert data.direction == "inbound"
    assert data.number_id == (await call(client.numbers.list)).data[0].id
    assert is_iso(data.received_at)
    assert event.conversation_state == {"step": "booking"}
    assert [(h.content, h.direction, h.channel) for h in event.recent_history] == [
        ("Table for 2?", "outbound", "sms"),
        ("Yes please, 7pm", "inbound", "sms"),
    ]
    assert all(is_iso(h.at) for h in event.recent_history)
    assert set(json.loads(got[0].body)["recentHistory"][0]) == {
        "content",
        "direction",
        "channel",
        "at",
    }
    assert event.test is None

    verify_webhook(
        got[0].body,
        got[0].headers["x-webhook-signature"],
        hook.secret,
        got[0].headers["x-webhook-timestamp"],
    )
    with pytest.raises(WebhookVerificationError):
        verify_webhook(
            got[0].body + b" ",
            got[0].headers["x-webhook-signature"],
            hook.secret,
            got[0].headers["x-webhook-timestamp"],
        )
    with pytest.raises(WebhookVerificationError):
        parse(got[0], "whsec_someone_else")

    tested = await call(client.webhooks.test, message="ping", channel="imessage")
    assert tested["success"] is True
    await gateway.drain()
    assert len(got) == 2
    trial = parse(got[1], hook.secret)
    assert (trial.event, trial.test, trial.channel) == ("agent.message", True, "imessage")
    assert trial.data.message == "ping"

    deliveries = await call(client.webhooks.list_deliveries)
    assert len(deliveries) == 2
    assert all(isinstance(d, agentphone.WebhookDelivery) for d in deliveries)
    assert [d.status for d in deliveries] == ["success", "success"]
    assert [d.http_status for d in deliveries] == [200, 200]
    assert [d.event_type for d in deliveries] == ["agent.message", "agent.message"]
    assert deliveries[1].message_id == inbound_id
    assert len(await call(client.webhooks.list_deliveries, limit=1, hours=1)) == 1
    stats = await call(client.webhooks.get_delivery_stats, hours=1)
    assert isinstance(stats, agentphone.WebhookDeliveryStats)
    assert (stats.total, stats.success, stats.failed, stats.pending) == (2, 2, 0, 0)
    assert stats.success_rate == 100.0
    assert stats.by_event_type == {"agent.message": 2}

    assert await call(client.webhooks.delete) == {"success": True}
    with pytest.raises(NotFoundError):
        await call(client.webhooks.get)
    await fails(404, client.webhooks.test)


async def test_an_agents_own_webhook_takes_its_events_instead_of_the_accounts(
    gateway: Gateway,
    client: AgentPhone,
    receiver: tuple[str, list[Hook]],
    second_receiver: tuple[str, list[Hook]],
) -> None:
    (account_url, account_got), (agent_url, agent_got) = receiver, second_receiver
    account = await call(client.webhooks.set, account_url)
    booker = await call(client.agents.create, name="Booker")
    other = await call(client.agents.create, name="Other")
    assert await call(client.agents.get_webhook, booker.id) is None
    own = await call(client.agents.set_webhook, booker.id, agent_url, context_limit=1)
    assert (own.url, own.context_limit) == (agent_url, 1)
    assert own.secret != account.secret
    fetched = await call(client.agents.get_webhook, booker.id)
    assert fetched is not None
    assert fetched.secret == own.secret
    assert (await call(client.webhooks.get)).id == account.id  # the account's stays

    line = (await call(client.numbers.list)).data[0]
    await call(client.messages.send, agent_id=booker.id, to_number=PERSON, body="Booked?")
    [thread] = (await call(client.agents.list_conversations, booker.id)).data
    await pause_agent(gateway, thread.id)
    await reply(gateway, "Yes")
    await gateway.drain()
    assert (len(agent_got), len(account_got)) == (1, 0)
    event = parse(agent_got[0], own.secret)
    assert (event.agent_id, event.data.message, event.data.number_id) == (booker.id, "Yes", line.id)
    assert [h.content for h in event.recent_history] == ["Yes"]  # its contextLimit: 1

    await call(client.messages.send, agent_id=other.id, to_number="+14155552672", body="Hi")
    [other_thread] = (await call(client.agents.list_conversations, other.id)).data
    await pause_agent(gateway, other_thread.id)
    response = await gateway.client.post(
        "/v1/simulator/inbound", json={"from": "+14155552672", "to": SENDER, "body": "Hello"}
    )
    assert response.status_code == 202, response.text
    await gateway.drain()
    assert (len(agent_got), len(account_got)) == (1, 1)
    assert parse(account_got[0], account.secret).agent_id == other.id

    tested = await call(client.agents.test_webhook, booker.id)
    assert tested["success"] is True
    await gateway.drain()
    assert parse(agent_got[1], own.secret).test is True
    deliveries = await call(client.agents.list_webhook_deliveries, booker.id)
    assert [d.status for d in deliveries] == ["success", "success"]

    assert await call(client.agents.delete_webhook, booker.id) == {"success": True}
    assert await call(client.agents.get_webhook, booker.id) is None
    await reply(gateway, "Still there?")
    await gateway.drain()
    assert (len(agent_got), len(account_got)) == (2, 2)  # back to the account's webhook
    assert parse(account_got[1], account.secret).data.message == "Still there?"


# -- usage -----------------------------------------------------------------------------------


async def test_usage_summary_daily_monthly_by_number_and_agent(
    gateway: Gateway, client: AgentPhone
) -> None:
    agent = await call(client.agents.create, name="Counter")
    for body in ("one", "two"):
        await call(client.messages.send, agent_id=agent.id, to_number=PERSON, body=body)
    await reply(gateway, "three")
    summary = await call(client.usage.get)
    assert isinstance(summary, agentphone.Usage)
    assert summary.numbers.used == 1
    assert summary.numbers.remaining == summary.numbers.limit - 1
    stats = summary.stats
    assert (stats.total_messages, stats.messages_last_24h, stats.messages_last_30d) == (3, 3, 3)
    assert stats.sms_segments_last_30d == 2
    assert (stats.total_calls, stats.calls_last_30d) == (0, 0)
    assert is_iso(summary.period_start)
    assert is_iso(summary.period_end)

    daily = await call(client.usage.get_daily, days=7)
    assert daily.days == 7
    assert len(daily.data) == 7
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    assert (daily.data[-1].date, daily.data[-1].messages) == (today, 3)
    assert sum(p.messages for p in daily.data) == 3
    monthly = await call(client.usage.get_monthly, months=2)
    assert monthly.months == 2
    assert monthly.data[-1].month == today[:7]
    assert monthly.data[-1].messages == 3

    by_number = await call(client.usage.get_by_number)
    assert [(n["phoneNumber"], n["outbound"], n["inbound"]) for n in by_number] == [(SENDER, 2, 1)]
    by_agent = await call(client.usage.get_by_agent, period="7d")
    assert by_agent["period"] == "7d"
    assert [(a["agentId"], a["messages"]) for a in by_agent["data"]] == [(agent.id, 3)]
    await fails(422, client.usage.get_by_agent, period="1y")
