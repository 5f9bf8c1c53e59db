"""An SMPP operator account with real processes: ``agentsms serve --no-worker`` checks the
credentials with one bind and never holds a session; a separate ``agentsms worker`` binds,
sends through the fake SMSC, stores its receipts and inbound texts, and unbinds when the
account is deleted through the API process."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.acceptance.processes import API_KEY, Api, Cluster, agentsms_command, client, wait_for
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
        extra_env={
            "AGENTSMS_SMPP_SYNC_SECONDS": str(SYNC_SECONDS),
            "AGENTSMS_TRUSTED_PRIVATE_HOSTS": "127.0.0.1",  # the fake SMSC's address
        },
    )
    made.migrate()
    try:
        yield made
    finally:
        made.close()


async def cli(server: Api, *args: str) -> str:
    """Run the ``agentsms`` CLI without blocking the loop the fake SMSC answers on."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTSMS_")} | {
        "AGENTSMS_URL": server.url,
        "AGENTSMS_API_KEY": API_KEY,
    }
    process = await asyncio.create_subprocess_exec(
        *agentsms_command(),
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, output.decode()
    return output.decode()


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
        # The way a person adds it: the CLI, against the API process.
        added = await cli(
            server,
            "accounts", "add", "--provider", "smpp", "--name", "operator",
            "--api-base-url", smsc.url,
            "--credential", f"system_id={smsc.system_id}",
            "--credential", f"password={smsc.password}",
        )  # fmt: skip
        assert "come over the carrier's own session" in added
        assert smsc.password not in added
        match = re.search(r"\bacct_\w+", added)
        assert match is not None, added
        account_id = match.group(0)
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
