"""How many SQL statements a conversation's jobs take: the person's reply (inbound), the
agent's turn and its reply, and a delivery receipt, with a webhook endpoint listening.

Each is CPU on the worker for every message of the soak (``benchmarks/
bench_turn_statements.py`` prints the same counts and the CPU per job). The bounds are the
counts as they are now: a change that adds a read to one of these paths fails here.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import event

from agentsms.core.conversations import TURN_JOB
from agentsms.core.simulator import PERSON_REPLY_JOB, REPORT_JOB
from agentsms.jobs.queue import Job
from tests.conftest import Gateway
from tests.integration.conversation_helpers import (
    REMINDED,
    RESCHEDULE,
    demo_persona,
    forget_deliveries,
    script_replies,
    wait_for,
)

# The most statements one handler call of one job may take (the same on both backends).
OPENING_TURN_BOUND = 17  # the agent writes the opening: 8 to prepare, 9 to fill it in
ENDING_TURN_BOUND = 33  # the agent replies and ends: +the reply's intake and the end's events
INBOUND_BOUND = 18  # the person's reply: received, its events, the turn queued
RECEIPT_BOUND = 9  # a report of one message in a conversation, its event and webhook
SINGLE_RECEIPT_BOUND = 9  # a single send's report (a conversation of its own, no agent)

Handler = Callable[[Sequence[Job]], Awaitable[None]]
_counter: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("counter", default=None)


@dataclass
class Calls:
    """Per job kind, each handler call's (jobs, statements)."""

    by_kind: dict[str, list[tuple[int, int]]] = field(default_factory=dict)

    def seen(self, *args: Any) -> None:
        counter = _counter.get()
        if counter is not None:
            counter[0] += 1

    def wrap(self, kind: str, handler: Handler) -> Handler:
        async def counted(jobs: Sequence[Job]) -> None:
            counter = [0]
            token = _counter.set(counter)
            try:
                await handler(jobs)
            finally:
                _counter.reset(token)
                self.by_kind.setdefault(kind, []).append((len(jobs), counter[0]))

        return counted


@contextmanager
def counting_by_kind(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> Iterator[Calls]:
    """The statements of each handler call the gateway's worker makes while inside."""
    calls = Calls()
    for kind, handler in list(gateway.worker.handlers.items()):
        monkeypatch.setitem(gateway.worker.handlers, kind, calls.wrap(kind, handler))
    engines = [engine.sync_engine for engine in gateway.db.engines]
    for engine in engines:
        event.listen(engine, "before_cursor_execute", calls.seen)
    try:
        yield calls
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", calls.seen)


async def test_a_reply_its_turn_and_their_receipts_take_few_statements(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = await gateway.client.post(
        "/v1/webhook-endpoints",
        json={
            "url": "https://hooks.example.com/turns",
            "event_types": ["message.*", "conversation.*"],
        },
    )
    assert hook.status_code == 201, hook.text
    persona = await demo_persona(gateway, name="Turn statements")
    person = "+14155557001"
    await script_replies(gateway, person, RESCHEDULE)
    with counting_by_kind(gateway, monkeypatch) as calls:
        opened = await gateway.client.post(
            "/v1/messages",
            json={
                "to": person,
                "conversation": {"persona_id": persona["id"], "metadata": REMINDED},
            },
        )
        assert opened.status_code == 202, opened.text
        conversation_id = opened.json()["conversation_id"]
        # The opening written, sent and delivered; the person's reply answered.
        await wait_for(gateway, conversation_id, lambda c: c["status"] == "ended")
        await gateway.drain()
    turns = calls.by_kind[TURN_JOB]
    replies = calls.by_kind[PERSON_REPLY_JOB]
    receipts = calls.by_kind[REPORT_JOB]
    # The opening turn first, then the one that replies and ends; on a loaded machine a turn
    # may also be tried again (taken over once its lease ran out, or stepped back behind an
    # earlier turn still pending), each try within the bounds.
    assert len(turns) >= 2, calls.by_kind
    assert all(jobs == 1 for jobs, _ in turns), turns
    assert 0 < turns[0][1] <= OPENING_TURN_BOUND, turns
    assert all(0 < count <= ENDING_TURN_BOUND for _, count in turns), turns
    assert replies, calls.by_kind
    assert all(jobs == 1 for jobs, _ in replies), replies
    assert 0 < max(count for _, count in replies) <= INBOUND_BOUND, replies
    assert receipts, calls.by_kind
    assert all(jobs == 1 for jobs, _ in receipts), receipts
    assert 0 < max(count for _, count in receipts) <= RECEIPT_BOUND, receipts
    await forget_deliveries(gateway)


async def test_a_delivery_report_of_a_single_send_takes_few_statements(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = await gateway.client.post(
        "/v1/webhook-endpoints",
        json={"url": "https://hooks.example.com/receipts", "event_types": ["message.*"]},
    )
    assert hook.status_code == 201, hook.text
    sent = await gateway.client.post(
        "/v1/messages", json={"to": "+14155557002", "body": "Your order shipped"}
    )
    assert sent.status_code == 202, sent.text
    with counting_by_kind(gateway, monkeypatch) as calls:
        await gateway.drain()
    receipts = calls.by_kind[REPORT_JOB]
    assert [jobs for jobs, _ in receipts] == [1], receipts
    assert 0 < receipts[0][1] <= SINGLE_RECEIPT_BOUND, receipts
    shown = (await gateway.client.get(f"/v1/messages/{sent.json()['id']}")).json()
    assert shown["status"] == "delivered", shown
    await forget_deliveries(gateway)
