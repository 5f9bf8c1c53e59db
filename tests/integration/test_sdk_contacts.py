"""The SDK's typed contact calls, through the app (httpx ASGI transport)."""

from __future__ import annotations

import httpx
import pytest

from agentsms.client import (
    AsyncClient,
    ConflictError,
    Contact,
    NotFoundError,
    UnprocessableError,
)
from tests.conftest import Gateway


async def test_create_list_update_delete(gateway: Gateway) -> None:
    async with AsyncClient(
        "http://testserver", gateway.api_key, transport=httpx.ASGITransport(app=gateway.app)
    ) as client:
        ana = await client.create_contact(
            "+1 212 555 6501", "Ana", timezone="America/Los_Angeles", metadata={"tier": "gold"}
        )
        assert isinstance(ana, Contact)
        assert (ana.phone_number, ana.timezone, ana.metadata) == (
            "+12125556501",
            "America/Los_Angeles",
            {"tier": "gold"},
        )
        with pytest.raises(ConflictError):
            await client.create_contact("+12125556501", "Ana again")
        with pytest.raises(UnprocessableError) as refused:
            await client.create_contact("+12125556502", "Bo", timezone="Pacific Time")
        assert [p.field for p in refused.value.errors] == ["timezone"]
        bo = await client.create_contact("+12125556502", "Bo")

        page = await client.list_contacts(limit=1)
        assert [c.id for c in page.data] == [bo.id]
        every = [c.id async for c in client.iter_contacts(limit=1)]
        assert every == [bo.id, ana.id]
        only = await client.list_contacts(phone_number="+12125556501")
        assert [c.id for c in only.data] == [ana.id]

        renamed = await client.update_contact(ana.id, name="Ana R.", timezone=None)
        assert (renamed.name, renamed.timezone, renamed.metadata) == (
            "Ana R.",
            None,
            {"tier": "gold"},
        )
        assert (await client.get_contact(ana.id)).timezone is None

        await client.delete_contact(ana.id)
        with pytest.raises(NotFoundError):
            await client.get_contact(ana.id)
