"""Project A for the cross-project sweep: one of every kind of thing a project owns, made
through the API where it can be, with distinctive values whose appearance in any answer to
project B would be a leak."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import String, or_, select

from agentsms.agents import load_demo_pathway
from agentsms.core import projects
from agentsms.core import provider_accounts as accounts
from agentsms.core.numbers import add_simulator_number
from agentsms.store import tables
from agentsms.store.db import Database
from tests.integration.dashboard_helpers import Browser

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
# .invalid never resolves (RFC 6761): deliveries fail at once and leave a delivery row.
UNREACHABLE = "https://hooks.agentsms.invalid/tenant-a"


@dataclass
class Tenant:
    """A project, its API key, a client for its native API and the ids of what it owns."""

    project_id: str
    api_key: str
    client: httpx.AsyncClient
    sender: str
    ids: dict[str, str] = field(default_factory=dict)
    # Values of this project that no other project may ever be shown.
    secrets: set[str] = field(default_factory=set)

    async def made(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """Call the native API as this project; the JSON answer of a 2xx."""
        response = await self.client.request(method, path, **kwargs)
        assert response.status_code < 300, (method, path, response.text)
        body: dict[str, Any] = response.json()
        return body


async def open_tenant(app: FastAPI, name: str, sender: str) -> Tenant:
    """A new project with one simulator number (``sender``) and a client for it."""
    db: Database = app.state.agentsms.db
    async with db.write() as conn:
        project, key = await projects.create_project(conn, name)
        await add_simulator_number(conn, project.id, sender)
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {key}"},
    )
    return Tenant(project.id, key, client, sender, secrets={project.id, key, sender})


async def seed(app: FastAPI, tenant: Tenant, drain: Any) -> None:
    """Give ``tenant`` one of everything (``drain`` runs due jobs, for webhook deliveries)."""
    a = tenant
    person, other_person = "+14155557301", "+14155557302"
    body = "tenant A private body kq3v"
    a.secrets |= {person, other_person, body, "tenant A template hx7w", "HXtenantA7w"}
    number = await a.made("POST", "/v1/numbers", json={"number": "+14155557399"})
    template = await a.made(
        "POST",
        "/v1/templates",
        json={"name": "a-template", "body": "tenant A template hx7w", "key": "HXtenantA7w"},
    )
    media = await a.made("POST", "/v1/media", content=PNG, headers={"Content-Type": "image/png"})
    endpoint = await a.made(
        "POST",
        "/v1/webhook-endpoints",
        json={"url": UNREACHABLE, "event_types": ["*"], "description": "tenant A hook"},
    )
    pathway = await a.made(
        "POST", "/v1/pathways", json={"name": "a-pathway", "document": load_demo_pathway()}
    )
    persona = await a.made(
        "POST",
        "/v1/personas",
        json={"name": "tenant A persona", "pathway_id": pathway["id"], "publish": True},
    )
    disposition = await a.made("POST", "/v1/dispositions", json={"name": "a-disposition"})
    schema = await a.made(
        "POST",
        "/v1/extraction-schemas",
        json={"name": "a-schema", "schema": {"type": "object", "properties": {}}},
    )
    key = await a.made("POST", "/v1/api-keys", json={"name": "tenant A second key"})
    await a.made("PUT", f"/v1/simulator/people/{person}", json={"replies": ["tenant A reply"]})
    message = await a.made(
        "POST",
        "/v1/messages",
        json={
            "to": person,
            "body": body,
            "media_urls": [media["url"]],
            "conversation": {"persona_id": persona["id"]},
            "new_conversation": True,
        },
        headers={"Idempotency-Key": "tenant-a-idem"},
    )
    scheduled = await a.made(
        "POST",
        "/v1/messages",
        json={"to": other_person, "body": body, "send_at": "2099-01-01T00:00:00Z"},
    )
    batch = await a.made(
        "POST",
        "/v1/batches",
        json={"recipients": [other_person], "body": body, "send_at": "2099-01-01T00:00:00Z"},
    )
    chat = await a.made(
        "POST", "/v1/messages", json={"to": person, "body": body, "channel": "imessage"}
    )
    await a.made(
        "POST", "/v1/simulator/reactions", json={"message_id": chat["id"], "reaction": "like"}
    )
    account = await _provider_account(app, a)
    opted_out = await a.made("POST", "/v1/opt-outs", json={"phone_number": "+14155557303"})
    contact = await a.made(
        "POST",
        "/compat/agentphone/v1/contacts",
        json={"phoneNumber": "+14155557304", "name": "tenant A contact"},
    )
    await a.made("PUT", "/v1/llm-credentials", json={"api_key": "sk-tenantA-llm-q7kz"})
    await drain()
    delivery = await _first_delivery(app.state.agentsms.db, endpoint["id"])
    a.secrets |= {
        endpoint["secret"],
        key["key"],
        media["url"].rsplit("/", 1)[1],
        "tenant A persona",
        "tenant A contact",
        "sk-tenantA-llm-q7kz",
        "q7kz",
    }
    a.ids.update(
        message_id=message["id"],
        scheduled_id=scheduled["id"],
        batch_id=batch["id"],
        conversation_id=message["conversation_id"],
        number_id=number["id"],
        key_id=key["id"],
        template_id=template["id"],
        media_token=media["url"].rsplit("/", 1)[1],
        endpoint_id=endpoint["id"],
        delivery_id=delivery,
        pathway_id=pathway["id"],
        persona_id=persona["id"],
        disposition_id=disposition["id"],
        schema_id=schema["id"],
        account_id=account,
        opted_out=opted_out["phone_number"],
        contact_id=contact["id"],
        person=person,
        telegent_id="TMID-" + batch["id"].removeprefix("batch_"),
    )
    a.secrets |= set(a.ids.values()) | await _event_ids(app.state.agentsms.db, a.project_id)


async def _provider_account(app: FastAPI, tenant: Tenant) -> str:
    """A Twilio account of the tenant, stored as the API stores one (not checked with Twilio,
    which is not on this machine)."""
    settings = app.state.agentsms.settings
    spec = accounts.AccountInput(
        "twilio", "tenant A carrier", {"account_sid": "ACtenantA", "auth_token": "tokenA9z"}
    )
    account = accounts.validate(tenant.project_id, spec, settings)
    async with app.state.agentsms.db.write() as conn:
        await accounts.store(conn, tenant.project_id, account, settings)
    tenant.secrets |= {"ACtenantA", "tokenA9z"}
    return account.id


async def _event_ids(db: Database, project_id: str) -> set[str]:
    """The ids of the webhook events of ``project_id`` (delivered to its endpoints only)."""
    query = select(tables.webhook_events.c.id).where(
        tables.webhook_events.c.project_id == project_id
    )
    async with db.read() as conn:
        return {str(found) for found in (await conn.execute(query)).scalars()}


async def _first_delivery(db: Database, endpoint_id: str) -> str:
    query = select(tables.webhook_deliveries.c.id).where(
        tables.webhook_deliveries.c.endpoint_id == endpoint_id
    )
    for _ in range(100):
        async with db.read() as conn:
            found = (await conn.execute(query)).scalars().first()
        if found is not None:
            return str(found)
        await asyncio.sleep(0.05)
    raise AssertionError("no webhook delivery was attempted for tenant A's endpoint")


async def snapshot(db: Database, tenant: Tenant) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored row of ``tenant``: rows carrying its project id, and rows of tables without
    one that name one of its ids."""
    owned = sorted(set(tenant.ids.values()) | {tenant.project_id})
    found: dict[str, list[tuple[Any, ...]]] = {}
    async with db.read() as conn:
        for table in tables.metadata.sorted_tables:
            if "project_id" in table.c:
                where = table.c.project_id == tenant.project_id
            elif table.name == "projects":
                where = table.c.id == tenant.project_id
            else:
                text_columns = [c for c in table.c if isinstance(c.type, String)]
                if not text_columns:
                    continue
                where = or_(*(c.in_(owned) for c in text_columns))
            rows = (await conn.execute(select(table).where(where))).all()
            found[table.name] = sorted((tuple(map(repr, row)) for row in rows), key=str)
    return found


async def sign_in(app: FastAPI, api_key: str) -> Browser:
    """A dashboard browser signed in with ``api_key`` (the caller closes ``browser.http``)."""
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    browser = Browser(http)
    await browser.sign_in(api_key)
    await browser.get("/dashboard")
    return browser
