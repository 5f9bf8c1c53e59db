"""Tenant URLs and secrets of agents: the LLM agent's ``base_url`` goes through the SSRF
guard (when saved and when connecting), the operator's allow-list is the only way to a
private server, a tenant never names a server environment variable, and no read returns a
secret (a project's LLM key, a webhook agent's signing secret)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import Connection, insert

from agentsms import store
from agentsms.agents import validate_agent_config
from agentsms.app import create_app
from agentsms.core import llm_credentials
from agentsms.store import tables
from agentsms.store.repositories import llm_credentials as llm_credentials_repo
from tests.conftest import Gateway, open_gateway
from tests.conftest import test_settings as settings_for
from tests.fakes.chat_completions import FakeChatCompletions
from tests.integration.conversation_helpers import SECRET, text_in, wait_for, webhook_agent
from tests.integration.helpers import problem_fields

PROJECT_KEY = "sk-project-4b1d9e7f0a2c5e8d3f6a"
OPERATOR_KEY = "sk-operator-never-leaves-9c8b7a"


@pytest.fixture
def fake() -> Iterator[FakeChatCompletions]:
    server = FakeChatCompletions().start()
    yield server
    server.stop()


@asynccontextmanager
async def gateway_with(gateway: Gateway, **overrides: object) -> AsyncIterator[Gateway]:
    """A gateway on the same database with other operator settings (a project of its own)."""
    app = create_app(settings_for(gateway.settings.database_url, **overrides))
    async with app.router.lifespan_context(app), open_gateway(app, "llm") as opened:
        yield opened


def llm_agent(base_url: str | None, **extra: Any) -> dict[str, Any]:
    agent = {"kind": "llm", "model": "gpt-test", "system_prompt": "You are Acme's assistant."}
    return {**agent, **({"base_url": base_url} if base_url else {}), **extra}


async def llm_conversation(gw: Gateway, person: str, base_url: str) -> str:
    """An LLM persona at ``base_url`` greets ``person``, who answers; the conversation id."""
    created = await gw.client.post(
        "/v1/personas", json={"name": "LLM", "agent": llm_agent(base_url), "publish": True}
    )
    assert created.status_code == 201, created.text
    sent = await gw.client.post(
        "/v1/messages",
        json={"to": person, "body": "Hi", "conversation": {"persona_id": created.json()["id"]}},
    )
    assert sent.status_code == 202, sent.text
    await text_in(gw, person, "Is Tuesday fine?")
    conversation_id: str = sent.json()["conversation_id"]
    return conversation_id


async def test_an_llm_base_url_on_loopback_is_never_connected_to(
    gateway: Gateway, fake: FakeChatCompletions
) -> None:
    """Saved while the operator trusted 127.0.0.1; the worker (no longer trusting it) refuses
    the connection: no request reaches the server and a human takes over at once."""
    fake.reply("must never be sent")
    async with gateway_with(gateway, trusted_private_hosts="127.0.0.1") as trusted:
        stored = await trusted.client.put("/v1/llm-credentials", json={"api_key": PROJECT_KEY})
        assert stored.status_code == 200, stored.text
        cid = await llm_conversation(trusted, "+14155557101", fake.base_url)
        untrusted_worker = dataclasses.replace(trusted, worker=gateway.worker)
        shown = await wait_for(untrusted_worker, cid, lambda c: c["status"] == "needs_attention")
    assert fake.requests == []
    assert [m["body"] for m in shown["messages"]] == ["Hi", "Is Tuesday fine?"]


async def test_the_operator_allow_list_reaches_a_private_llm_with_the_projects_key(
    gateway: Gateway, fake: FakeChatCompletions
) -> None:
    fake.reply("Tuesday at 10 is booked.")
    async with gateway_with(
        gateway, trusted_private_hosts="127.0.0.1", llm_api_key=OPERATOR_KEY
    ) as trusted:
        stored = await trusted.client.put("/v1/llm-credentials", json={"api_key": fake.api_key})
        assert stored.status_code == 200, stored.text
        cid = await llm_conversation(trusted, "+14155557102", fake.base_url)
        shown = await wait_for(trusted, cid, lambda c: len(c["messages"]) == 3)
    assert shown["messages"][-1]["body"] == "Tuesday at 10 is booked."
    [request] = fake.requests
    assert request.headers["authorization"] == f"Bearer {fake.api_key}"


async def test_the_operators_key_never_goes_to_a_personas_own_server(
    gateway: Gateway, fake: FakeChatCompletions
) -> None:
    async with gateway_with(
        gateway, trusted_private_hosts="127.0.0.1", llm_api_key=OPERATOR_KEY
    ) as trusted:
        cid = await llm_conversation(trusted, "+14155557103", fake.base_url)
        await wait_for(trusted, cid, lambda c: c["status"] == "needs_attention")  # a 401
    assert [r.headers["authorization"] for r in fake.requests] == ["Bearer not-needed"]


async def test_the_operators_key_goes_to_the_operators_server(
    gateway: Gateway, fake: FakeChatCompletions
) -> None:
    fake.reply("Hello from the operator's model.")
    operator = {"llm_base_url": fake.base_url, "llm_api_key": fake.api_key}
    async with gateway_with(gateway, trusted_private_hosts="127.0.0.1", **operator) as gw:
        created = await gw.client.post(
            "/v1/personas", json={"name": "Default", "agent": llm_agent(None), "publish": True}
        )
        person = "+14155557104"
        sent = await gw.client.post(
            "/v1/messages",
            json={"to": person, "body": "Hi", "conversation": {"persona_id": created.json()["id"]}},
        )
        await text_in(gw, person, "hello?")
        cid = sent.json()["conversation_id"]
        shown = await wait_for(gw, cid, lambda c: len(c["messages"]) == 3)
    assert shown["messages"][-1]["body"] == "Hello from the operator's model."
    assert fake.requests[0].headers["authorization"] == f"Bearer {fake.api_key}"


@pytest.mark.parametrize(
    "base_url",
    [
        "http://127.0.0.1:11434/v1",
        "https://127.0.0.1/v1",
        "https://[::ffff:127.0.0.1]/v1",
        "https://2130706433/v1",
        "https://0177.0.0.1/v1",
        "https://169.254.169.254/latest",
        "https://localhost/v1",
        "http://api.example.com/v1",
    ],
)
async def test_an_unsafe_base_url_is_refused_when_saved(gateway: Gateway, base_url: str) -> None:
    created = await gateway.client.post(
        "/v1/personas", json={"name": "x", "agent": llm_agent(base_url)}
    )
    assert created.status_code == 422, created.text
    assert created.json()["code"] == "unsafe_url"
    assert "agent.base_url" in problem_fields(created.json())

    pathway = {
        "start": "ai",
        "nodes": [{"id": "ai", "type": "llm", "agent": llm_agent(base_url, kind="llm")}],
    }
    uploaded = await gateway.client.post("/v1/pathways", json={"name": "p", "document": pathway})
    assert uploaded.status_code == 422, uploaded.text
    assert "document.pathway.nodes.ai.agent.base_url" in problem_fields(uploaded.json())

    sent = await gateway.client.post(
        "/v1/messages",
        json={
            "to": "+14155557105",
            "body": "Hi",
            "conversation": {"persona_settings": llm_agent(base_url)},
        },
    )
    assert sent.status_code == 422, sent.text
    assert "conversation.persona_settings.base_url" in problem_fields(sent.json())


async def test_a_trusted_private_base_url_is_accepted_when_saved(gateway: Gateway) -> None:
    async with gateway_with(gateway, trusted_private_hosts="10.0.0.0/8, ollama.lan") as gw:
        for base_url in ("http://10.1.2.3:11434/v1", "http://ollama.lan:11434/v1"):
            created = await gw.client.post(
                "/v1/personas", json={"name": "lan", "agent": llm_agent(base_url)}
            )
            assert created.status_code == 201, created.text


@pytest.mark.parametrize("name", ["AGENTSMS_BOOTSTRAP_API_KEY", "OPENAI_API_KEY", None])
async def test_a_persona_naming_an_environment_variable_is_refused(
    gateway: Gateway, name: str | None
) -> None:
    agent = llm_agent(None, api_key_env=name)
    created = await gateway.client.post("/v1/personas", json={"name": "x", "agent": agent})
    assert created.status_code == 422, created.text
    fields = problem_fields(created.json())
    assert "environment variable" in fields["agent.api_key_env"]

    sent = await gateway.client.post(
        "/v1/messages",
        json={"to": "+14155557106", "body": "Hi", "conversation": {"persona_settings": agent}},
    )
    assert sent.status_code == 422, sent.text
    assert "conversation.persona_settings.api_key_env" in problem_fields(sent.json())


async def test_no_read_returns_a_secret(gateway: Gateway) -> None:
    client = gateway.client
    first = await client.put("/v1/llm-credentials", json={"api_key": "sk-replaced-later-0000"})
    assert first.status_code == 200, first.text
    stored = await client.put("/v1/llm-credentials", json={"api_key": PROJECT_KEY})
    assert stored.status_code == 200, stored.text
    assert stored.json()["api_key_set"] is True
    assert stored.json()["api_key_hint"] == "…" + PROJECT_KEY[-4:]
    async with gateway.db.read() as conn:
        sealed = await llm_credentials_repo.get(conn, gateway.project_id)
        key = await llm_credentials.project_key(conn, gateway.project_id, gateway.settings)
    assert sealed is not None
    assert PROJECT_KEY not in sealed["api_key"]  # encrypted at rest
    assert key == PROJECT_KEY

    agent = webhook_agent("https://agent.example/turn")
    persona = await client.post(
        "/v1/personas", json={"name": "Hook", "agent": agent, "publish": True}
    )
    assert persona.status_code == 201, persona.text
    pid = persona.json()["id"]
    shown_agent = persona.json()["versions"][0]["config"]["agent"]
    assert shown_agent == {**{k: v for k, v in agent.items() if k != "secret"}, "secret_set": True}
    sent = await client.post(
        "/v1/messages",
        json={"to": "+14155557107", "body": "Hi", "conversation": {"persona_settings": agent}},
    )
    assert sent.status_code == 202, sent.text
    defaults = {"conversation": {"persona_settings": agent}}
    assert (await client.patch("/v1/project", json={"settings": defaults})).status_code == 200
    gateway.app.state.agentsms.key_cache.clear()

    reads = [
        stored,
        persona,
        await client.get("/v1/llm-credentials"),
        await client.get("/v1/personas"),
        await client.get(f"/v1/personas/{pid}"),
        await client.get(f"/v1/conversations/{sent.json()['conversation_id']}"),
        await client.get("/v1/conversations"),
        await client.get("/v1/project"),
        await client.get("/compat/agentphone/v1/agents"),
    ]
    for read in reads:
        assert read.status_code in (200, 201), (read.request.url, read.text)
        assert PROJECT_KEY not in read.text, read.request.url
        assert SECRET not in read.text, read.request.url
        assert SECRET.removeprefix("whsec_") not in read.text, read.request.url

    removed = await client.delete("/v1/llm-credentials")
    assert removed.json() == {
        "object": "llm_credentials",
        "api_key_set": False,
        "api_key_hint": None,
        "updated_at": None,
    }


def _migration() -> ModuleType:
    versions = Path(store.__file__).parent / "migrations" / "versions"
    [path] = versions.glob("*_llm_credentials.py")  # whatever number it is chained under
    spec = importlib.util.spec_from_file_location("llm_credentials_migration", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _drop_env_names(conn: Connection) -> None:
    with Operations.context(MigrationContext.configure(conn)):
        _migration()._drop_env_names()


async def test_the_migration_drops_env_names_from_stored_agent_configs(gateway: Gateway) -> None:
    """A persona stored before the change stays valid: without ``api_key_env`` it uses the
    operator's server and key (or, with its own ``base_url``, the project's key)."""
    now = datetime.now(UTC)
    pid = f"persona_envname{gateway.project_id[-12:]}"
    old = llm_agent(None, api_key_env="AGENTSMS_BOOTSTRAP_API_KEY")
    node = {"id": "ai", "type": "llm", "agent": {**old, "base_url": "https://llm.example/v1"}}
    async with gateway.db.write() as conn:
        await conn.execute(
            insert(tables.personas).values(
                id=pid,
                project_id=gateway.project_id,
                alias=9001,
                name="old",
                production_version=2,
                created_at=now,
                updated_at=now,
            )
        )
        for version, config in ((1, {"agent": old}), (2, {"agent": flow([node])})):
            await conn.execute(
                insert(tables.persona_versions).values(
                    persona_id=pid, version=version, config=config, created_at=now
                )
            )
        await conn.run_sync(_drop_env_names)
    shown = (await gateway.client.get(f"/v1/personas/{pid}")).json()
    assert "api_key_env" not in json.dumps(shown)
    assert shown["versions"][0]["config"]["agent"] == llm_agent(None)
    for version in shown["versions"]:
        validate_agent_config(version["config"]["agent"])


def flow(nodes: list[dict[str, Any]]) -> dict[str, Any]:
    return {"kind": "flow", "pathway": {"start": nodes[0]["id"], "nodes": nodes}}
