"""CPU per read of conversations' recent history, as a message event's webhook payload reads it.

Every webhook event of a message in a conversation carries the conversation's recent
history (``core.conversations.webhook_contexts``: ``recent_messages`` of the conversations
of a change at once). This times ``recent_messages`` for 1, 3, 12 and 50 conversations on
an in-memory SQLite database with the schema and ``--messages`` messages in each of them,
in this one process (``time.process_time``), so that the statement's own cost (building,
keying, compiling, reading rows) shows beside nothing else.

    .venv/bin/python benchmarks/bench_conversation_context.py [--calls 300] [--messages 20]

Run it against another checkout with ``PYTHONPATH=<checkout>/src`` to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_note

import agentsms
from agentsms.core.conversations import HISTORY_FOR_WEBHOOKS
from agentsms.store.repositories import conversations as repo
from agentsms.store.tables import messages, metadata

SIZES = (1, 3, 12, 50)


def _message(conversation: int, n: int) -> dict[str, object]:
    now = datetime.now(UTC)
    return {
        "id": f"msg_{conversation:013d}{n:013d}",
        "project_id": "proj_bench",
        "conversation_id": f"conv_{conversation:026d}",
        "direction": "outbound" if n % 2 else "inbound",
        "to_number": "+14155550100",
        "from_number": "+14155550199",
        "contact": "+14155550100",
        "body": f"Message {n} of conversation {conversation}",
        "media_urls": [],
        "channel": "sms",
        "status": "delivered",
        "segments": 1,
        "encoding": "GSM-7",
        "price_estimate": Decimal("0.0079"),
        "currency": "USD",
        "metadata": {"order": n},
        "provider": "simulator",
        "in_flight": False,
        "attempts": 1,
        "created_at": now,
        "updated_at": now,
    }


async def run(args: argparse.Namespace) -> None:
    engine = create_async_engine("sqlite+aiosqlite:///:memory:")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        rows = [_message(c, n) for c in range(max(SIZES)) for n in range(args.messages)]
        await conn.execute(insert(messages), rows)
    print(machine_note())
    print(f"agentsms package measured: {Path(agentsms.__file__).parent}")
    print(f"{args.messages} messages a conversation, {args.calls} calls a size")
    print("conversations   us CPU per call")
    async with engine.connect() as conn:
        for size in SIZES:
            ids = [f"conv_{c:026d}" for c in range(size)]
            for _ in range(20):  # the statement compiled and cached first
                await repo.recent_messages(conn, ids, limit=HISTORY_FOR_WEBHOOKS)
            started = time.process_time()
            for _ in range(args.calls):
                found = await repo.recent_messages(conn, ids, limit=HISTORY_FOR_WEBHOOKS)
            cpu = time.process_time() - started
            assert len(found) == size
            print(f"{size:13d}   {cpu / args.calls * 1e6:15,.0f}")
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--messages", type=int, default=20)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
