"""A worker delivers webhooks in every registered format without loading the HTTP API.

The vendor surfaces' webhook bodies are pure translations registered at start-up
(``runtime.register_webhook_formats``); a worker process builds its handlers, and with them
the formats, without importing FastAPI, Starlette or any router module.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# What a worker may load of ``agentsms.api``: the package markers, the resource models the
# SDK shares, and the vendors' pure webhook bodies. No router, no FastAPI.
ALLOWED_API_MODULES = {
    "agentsms.api",
    "agentsms.api.schemas",
    "agentsms.api.compat",
    "agentsms.api.compat.agentphone_webhooks",
    "agentsms.api.compat.bland_webhooks",
}

WORKER = """
import json, sys
from agentsms.config import Settings
from agentsms.core.sending import Outbox, SendPolicy
from agentsms.runtime import build_providers, build_worker
from agentsms.store.db import Database
from agentsms.webhooks import formats

settings = Settings(database_url=sys.argv[1])
db = Database(settings.database_url)
outbox = Outbox(SendPolicy.from_settings(settings))
build_worker(db, build_providers(db, settings, outbox), settings, outbox=outbox)
event = {
    "id": "evt_1",
    "type": "message.received",
    "created_at": "2026-12-06T12:00:00Z",
    "data": {"message": {"id": "msg_1", "body": "hi"}, "conversation": {"id": "conv_1"}},
}
print(json.dumps({
    "formats": formats.names(),
    "endpoint_formats": formats.endpoint_format_names(),
    "bland": formats.apply("bland", event),
    "agentphone": formats.render("agentphone", event, {}),
    "modules": sorted(sys.modules),
}))
"""


def test_worker_formats_webhooks_without_loading_the_http_api(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'worker.db'}"
    out = subprocess.run(
        [sys.executable, "-c", WORKER, url], capture_output=True, text=True, check=True
    ).stdout
    found = json.loads(out)
    # The formats are there, and they shape bodies (so the check below is not vacuous).
    assert "bland" in found["formats"]
    assert "agentphone" in found["endpoint_formats"]
    assert found["bland"]["message_id"] == "msg_1"
    assert found["agentphone"]["event"] == "agent.message"
    modules = set(found["modules"])
    frameworks = sorted(
        m for m in modules if m.split(".")[0] in {"fastapi", "starlette", "fastapi_offline"}
    )
    assert frameworks == []
    assert {m for m in modules if m.startswith("agentsms.api")} <= ALLOWED_API_MODULES
    assert "agentsms.app" not in modules


FIRST_POST = """
import asyncio, json, sys
import httpx
from agentsms.runtime import warm_up_worker

warm_up_worker()


async def main() -> list[str]:
    async def answer(reader, writer):
        await reader.readuntil(b"\\r\\n\\r\\n")
        writer.write(b"HTTP/1.1 204 No Content\\r\\n\\r\\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    before = set(sys.modules)
    async with httpx.AsyncClient() as client:
        status = (await client.post(f"http://127.0.0.1:{port}/hook", content=b"{}")).status_code
    server.close()
    assert status == 204, status
    return sorted(set(sys.modules) - before)


print(json.dumps(asyncio.run(main())))
"""


def test_after_warm_up_a_first_webhook_post_imports_nothing_on_the_loop() -> None:
    """httpx loads anyio's asyncio backend at its first request: ``warm_up_worker`` loads it
    before the worker's event loop starts, not at the first webhook delivery."""
    out = subprocess.run(
        [sys.executable, "-c", FIRST_POST], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == []
