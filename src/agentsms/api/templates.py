"""``/v1/templates``: stored message bodies with ``{{variable}}`` placeholders."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Query
from starlette.responses import Response

from agentsms.api import schemas
from agentsms.api.deps import CurrentProject, State
from agentsms.core import templates as service

router = APIRouter(prefix="/v1/templates", tags=["templates"])


def template(row: Mapping[str, Any]) -> schemas.Template:
    return schemas.Template(
        id=row["id"],
        name=row["name"],
        key=row["key"],
        body=row["body"],
        variables=service.placeholders(row["body"]),
        created_at=row["created_at"],
    )


@router.post(
    "",
    status_code=201,
    response_model=schemas.Template,
    responses={409: {"model": schemas.Problem}, 422: {"model": schemas.Problem}},
    summary="Store a message template",
)
async def create_template(
    body: schemas.TemplateCreate, project: CurrentProject, state: State
) -> schemas.Template:
    """Send it with ``template_id`` (its id or key) and ``variables`` on ``POST /v1/messages``."""
    async with state.db.write() as conn:
        row = await service.create_template(
            conn, project.id, name=body.name, body=body.body, key=body.key
        )
    return template(row)


@router.get("", response_model=schemas.TemplatePage, summary="List templates, newest first")
async def list_templates(
    project: CurrentProject,
    state: State,
    cursor: str | None = Query(default=None, description="next_cursor of the previous page"),
    limit: int = Query(default=50, ge=1, le=500),
) -> schemas.TemplatePage:
    """The project's templates, newest first, each with the ``{{variables}}`` it needs; cursor
    pagination.
    """
    async with state.db.read() as conn:
        rows = await service.list_templates(conn, project.id, before_id=cursor, limit=limit + 1)
    page = [template(row) for row in rows[:limit]]
    return schemas.TemplatePage(data=page, next_cursor=page[-1].id if len(rows) > limit else None)


@router.get("/{template_id}", response_model=schemas.Template, summary="Get a template")
async def get_template(template_id: str, project: CurrentProject, state: State) -> schemas.Template:
    """By id or by key."""
    async with state.db.read() as conn:
        return template(await service.get_template(conn, project.id, template_id))


@router.delete("/{template_id}", status_code=204, summary="Delete a template")
async def delete_template(template_id: str, project: CurrentProject, state: State) -> Response:
    """Delete a template by id or key. ``204``; ``404`` when unknown."""
    async with state.db.write() as conn:
        await service.delete_template(conn, project.id, template_id)
    return Response(status_code=204)
