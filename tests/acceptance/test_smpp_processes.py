"""An SMPP operator account with real processes: ``agentsms serve --no-worker`` checks the
credentials with one bind and never holds a session; a separate ``agentsms worker`` binds,
sends through the fake SMSC, stores its receipts and inbound texts, and unbinds when the
account is deleted through the API process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.acceptance.processes import Cluster, client, wait_for
from tests.fakes.smsc import FakeSmsc

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(120)]

OURS = "+14155550166"
PERSON = "+4915112345699"
SYNC_SECONDS = 0.2


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    made = Cluster(
        tmp_path,
        f"sqlite+aiosqlite:///{tmp_path / 'agentsms.db'}",
        extra_env={"AGENTSMS_SMPP_SYNC_SECONDS": str(SYNC_SECONDS)},
    )
    made.migrate()
    try:
        yield made
    finally:
        made.close()


async def status_of(api: httpx.AsyncClient, message_id: str) -> str:
    return str((await api.get(f"/v1/messages/{message_id}")).json()["status"])


async def test_only_the_worker_process_binds_and_it_follows_the_accounts(
    cluster: Cluster,
) -> None:
    server = await cluster.start_api()
    async with FakeSmsc() as smsc, client(server) as api:
        body: dict[str, Any] = {
            "provider": "smpp",
            "name": "operator",
            "credentials": {"system_id": smsc.system_id, "password": "wrong"},
            "api_base_url": smsc.url,
        }
        wrong = await api.post("/v1/provider-accounts", json=body)
        assert wrong.status_code == 422, wrong.text
        body["credentials"]["password"] = smsc.password
        created = await api.post("/v1/provider-accounts", json=body)
        assert created.status_code == 201, created.text
        account_id = created.json()["id"]
        number = await api.post(
            "/v1/numbers", json={"number": OURS, "provider_account_id": account_id}
        )
        assert number.status_code == 201, number.text
        sent = await api.post(
            "/v1/messages", json={"to": PERSON, "from": OURS, "body": "Grüße aus Köln ☕"}
        )
        assert sent.status_code == 202, sent.text
        message_id = sent.json()["id"]

        # Many sync periods later the API process still holds no session: only the two
        # credential checks ever bound, and the message waits for a worker.
        await asyncio.sleep(10 * SYNC_SECONDS)
        assert [status for *_, status in smsc.binds] == [0x0E, 0]
        assert smsc.bound_sessions == []
        assert await status_of(api, message_id) == "queued"

        worker = await cluster.start_worker()

        async def delivered() -> bool:
            return await status_of(api, message_id) == "delivered"

        await wait_for(delivered, within=30, what="the message delivered over SMPP")
        assert [m.text for m in smsc.messages] == ["Grüße aus Köln ☕"]
        assert len(smsc.bound_sessions) == 1

        assert await smsc.inject(PERSON, OURS, "Danke!") == [0]

        async def replied() -> bool:
            page = (await api.get("/v1/messages", params={"from": PERSON})).json()
            return [m["body"] for m in page["data"]] == ["Danke!"]

        await wait_for(replied, within=30, what="the inbound text stored")

        assert (await api.delete(f"/v1/numbers/{number.json()['id']}")).status_code == 204
        assert (await api.delete(f"/v1/provider-accounts/{account_id}")).status_code == 204

        async def unbound() -> bool:
            return smsc.bound_sessions == []

        await wait_for(unbound, within=30, interval=0.05, what="the worker to unbind")
        assert worker.alive
        assert "smpp_sessions.stopped" in worker.log_text()
