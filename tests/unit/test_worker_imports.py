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
