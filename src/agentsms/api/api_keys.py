"""``/v1/api-keys``: create (the secret is shown once), list and revoke the project's keys."""

from __future__ import annotations

from fastapi import APIRouter, Response

from agentsms.api import render, schemas
from agentsms.api.deps import CurrentProject, State
from agentsms.core import projects as service

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"])


@router.post(
    "",
    status_code=201,
    response_model=schemas.ApiKeyCreated,
    responses={422: {"model": schemas.Problem}},
    summary="Create an API key (its secret is in this answer only)",
)
async def create_api_key(
    body: schemas.ApiKeyCreate, project: CurrentProject, state: State
) -> schemas.ApiKeyCreated:
    """Create a named API key for this project. The secret is in this answer only (it is stored
    hashed); list calls show its prefix.
    """
    async with state.db.write() as conn:
        row, key = await service.create_api_key(conn, project.id, body.name)
    return schemas.ApiKeyCreated(**render.api_key(row).model_dump(), key=key)


@router.get("", response_model=schemas.ApiKeyList, summary="The project's API keys")
async def list_api_keys(project: CurrentProject, state: State) -> schemas.ApiKeyList:
    """The project's API keys: name, prefix (the first 8 characters), creation and revocation time.
    Secrets are never shown.
    """
    async with state.db.read() as conn:
        rows = await service.list_api_keys(conn, project.id)
    return schemas.ApiKeyList(data=[render.api_key(row) for row in rows])


@router.delete(
    "/{key_id}",
    status_code=204,
    responses={404: {"model": schemas.Problem}, 409: {"model": schemas.Problem}},
    summary="Revoke an API key (at once in this process; within seconds in others)",
)
async def revoke_api_key(key_id: str, project: CurrentProject, state: State) -> Response:
    """Revoke a key: it stops working at once in this process and within seconds in others. ``409``
    ``last_api_key`` for the project's last active key; ``404`` for a key of another project.
    """
    async with state.db.write() as conn:
        await service.revoke_api_key(conn, project.id, key_id)
    state.key_cache.clear()
    return Response(status_code=204)
