"""The SDK's typed opt-out calls, through the app (httpx ASGI transport)."""

from __future__ import annotations

import httpx
import pytest

from agentsms.client import AsyncClient, NotFoundError, OptOut, UnprocessableError
from tests.conftest import Gateway


async def test_list_add_remove_import_export(gateway: Gateway) -> None:
    async with AsyncClient(
        "http://testserver", gateway.api_key, transport=httpx.ASGITransport(app=gateway.app)
    ) as client:
        added = await client.add_opt_out("+14155556501", keyword="by email")
        assert isinstance(added, OptOut)
        assert (added.phone_number, added.source, added.keyword) == (
            "+14155556501",
            "api",
            "by email",
        )
        done = await client.import_opt_outs("phone_number\n+14155556502\n+14155556501\n")
        assert (done.added, done.already) == (1, 1)
        with pytest.raises(UnprocessableError) as refused:
            await client.import_opt_outs("phone_number\n+14155556503\nnope\n")
        assert [p.field for p in refused.value.errors] == ["rows[3].phone_number"]

        page = await client.list_opt_outs(limit=1)
        assert len(page.data) == 1
        assert page.next_cursor is not None
        every = [e.phone_number async for e in client.iter_opt_outs(limit=1)]
        assert sorted(every) == ["+14155556501", "+14155556502"]
        only = await client.list_opt_outs(source="import")
        assert [e.phone_number for e in only.data] == ["+14155556502"]
        exported = await client.export_opt_outs()
        assert exported.startswith("phone_number,scope,source,keyword,number,created_at\n")
        assert "+14155556502,project,import,,," in exported

        removed = await client.remove_opt_out("+14155556501")
        assert removed.phone_number == "+14155556501"
        with pytest.raises(NotFoundError):
            await client.remove_opt_out("+14155556501")
