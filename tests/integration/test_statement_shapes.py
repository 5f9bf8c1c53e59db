"""The soak's mix (``benchmarks/bench_sustained.py``) compiles each statement it runs once.

A statement shape SQLAlchemy has not compiled before is compiled on the event loop that
runs it (~1 ms for a small one, 0.1-0.5 s for a union of a hundred arms): a shape that
depends on how many rows, conversations or requests a step takes keeps stalling the loop
long after start-up. So a second round of the mix, every count in it different from the
first's, must find every statement in the compiled cache.
"""

from __future__ import annotations

import asyncio

from tests.compilations import counting_compilations
from tests.conftest import Gateway
from tests.integration.conversation_helpers import (
    demo_persona,
    forget_deliveries,
    start_reminder,
    text_in,
    wait_for,
)

SUBSCRIBED = [
    "message.delivered",
    "message.failed",
    "message.undelivered",
    "message.received",
    "recipient.opted_out",
    "conversation.ended",
]


async def mix(gateway: Gateway, persona_id: str, size: int, offset: int) -> None:
    """``size`` concurrent single sends (one group commit), a batch of ``size + 1``,
    ``size`` demo-pathway conversations answered by their person, ``size`` opt-outs; then
    every job run."""
    singles = [
        gateway.client.post(
            "/v1/messages",
            json={"to": f"+1415555{3000 + offset + i:04d}", "body": f"Reminder {i}"},
            headers={"Idempotency-Key": f"shapes-{offset}-{i}"},
        )
        for i in range(size)
    ]
    for answer in await asyncio.gather(*singles):
        assert answer.status_code == 202, answer.text
    batch = await gateway.client.post(
        "/v1/batches",
        json={
            "body": "Your order shipped",
            "recipients": [{"to": f"+1415555{4000 + offset + i:04d}"} for i in range(size + 1)],
        },
    )
    assert batch.status_code == 202, batch.text
    started = [
        await start_reminder(gateway, f"+1415555{5000 + offset + i:04d}", persona_id)
        for i in range(size)
    ]
    for i in range(size):
        await text_in(gateway, f"+1415555{6000 + offset + i:04d}", "STOP")
    for opening in started:
        await wait_for(gateway, opening["conversation_id"], lambda c: c["status"] == "ended")
    await gateway.drain()


async def test_a_second_round_of_the_mix_compiles_no_statement(gateway: Gateway) -> None:
    hook = await gateway.client.post(
        "/v1/webhook-endpoints",
        json={"url": "https://hooks.example.com/shapes", "event_types": SUBSCRIBED},
    )
    assert hook.status_code == 201, hook.text
    persona = await demo_persona(gateway, name="Shapes")
    await mix(gateway, persona["id"], size=1, offset=0)
    with counting_compilations(gateway.db) as compiled:
        await mix(gateway, persona["id"], size=3, offset=100)
    assert compiled == []
    await forget_deliveries(gateway)
