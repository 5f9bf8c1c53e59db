"""Running a POST under an ``Idempotency-Key``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.responses import Response

from agentsms.api.state import AppState
from agentsms.core import idempotency

JSON = "application/json"


async def accept(
    state: AppState,
    project_id: str,
    key: str | None,
    request_body: BaseModel,
    path: str,
    work: Callable[[AsyncConnection], Awaitable[BaseModel]],
    *,
    status: int = 202,
) -> Response:
    """Run ``work`` in one write transaction and answer ``status`` with its result.

    With a key, the response is stored in that same transaction and replayed byte for
    byte for a repeat of the same request.
    """
    if key is None:
        async with state.db.write() as conn:
            result = await work(conn)
        return answer(status, result.model_dump_json(by_alias=True))
    digest = request_digest(request_body, path)
    async with idempotency.claim(project_id, key), state.db.write() as conn:
        replay = await idempotency.check(conn, project_id, key, digest)
        if replay is not None:
            return answer(replay.status, replay.body, replayed=True)
        body = (await work(conn)).model_dump_json(by_alias=True)
        await idempotency.record(conn, project_id, key, digest, status=status, body=body)
    return answer(status, body)


def request_digest(request_body: BaseModel, path: str) -> str:
    """The digest an ``Idempotency-Key`` binds: the POST to ``path`` with this body."""
    return idempotency.request_hash(
        "POST", path, request_body.model_dump(mode="json", by_alias=True)
    )


def answer(status: int, body: str, *, replayed: bool = False) -> Response:
    """A JSON answer; a replayed one says so in ``Idempotent-Replayed``."""
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return Response(body, status_code=status, media_type=JSON, headers=headers)
