"""``/v1/opt-outs``: the suppression list (list, add, remove = opt back in, CSV in and out)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from agentsms.api import render, schemas
from agentsms.api.deps import CurrentProject, State
from agentsms.core import optouts as service
from agentsms.errors import invalid

router = APIRouter(prefix="/v1/opt-outs", tags=["compliance"])
_PROBLEMS: dict[int | str, dict[str, object]] = {
    404: {"model": schemas.Problem},
    422: {"model": schemas.Problem},
}


@router.get("", response_model=schemas.OptOutPage, summary="The suppression list, newest first")
async def list_opt_outs(
    project: CurrentProject,
    state: State,
    phone_number: Annotated[str | None, Query(description="Only this person")] = None,
    source: schemas.OptOutSource | None = None,
    cursor: str | None = Query(default=None, description="next_cursor of the previous page"),
    limit: int = Query(default=50, ge=1, le=500),
) -> schemas.OptOutPage:
    """The people opted out of this project, newest first: ``phone_number`` and ``source``
    filter, ``next_cursor`` pages on."""
    async with state.db.read() as conn:
        rows, next_cursor = await service.list_opt_outs(
            conn,
            project.id,
            phone_number=phone_number,
            source=source,
            cursor=cursor,
            limit=limit,
        )
    return schemas.OptOutPage(data=[render.opt_out(r) for r in rows], next_cursor=next_cursor)


@router.post(
    "",
    status_code=201,
    response_model=schemas.OptOut,
    responses={200: {"model": schemas.OptOut, "description": "Already opted out"}, **_PROBLEMS},
    summary="Opt a person out",
)
async def add_opt_out(
    body: schemas.OptOutCreate, project: CurrentProject, state: State, response: Response
) -> schemas.OptOut:
    """``201`` when added (the person's active conversations end), ``200`` with the entry
    as it was when the person was already on the list."""
    async with state.db.write() as conn:
        row, added = await service.add_opt_out(
            conn, project.id, body.phone_number, source="api", keyword=body.keyword
        )
    if not added:
        response.status_code = 200
    return render.opt_out(row)


@router.get(
    "/export",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
    summary="The whole list as CSV",
)
async def export_opt_outs(project: CurrentProject, state: State) -> Response:
    """Every entry as a CSV attachment (``phone_number,scope,source,keyword,number,created_at``),
    which ``POST /v1/opt-outs/import`` takes back as it is."""
    async with state.db.read() as conn:
        rows = await service.every_opt_out(conn, project.id)
    return Response(
        service.export_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="opt-outs.csv"'},
    )


@router.post(
    "/import",
    response_model=schemas.OptOutImport,
    responses=_PROBLEMS,
    summary="Add the people of a CSV file, all or nothing",
    openapi_extra={
        "requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}
    },
)
async def import_opt_outs(
    request: Request, project: CurrentProject, state: State
) -> schemas.OptOutImport:
    """A header naming ``phone_number`` (``keyword`` and ``created_at`` optional; an export
    imports as it is) or a bare column of numbers. One bad row and nothing is added: the
    422 names each one as ``rows[<line>].<column>``."""
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError:
        raise invalid("file", "is not UTF-8 text") from None
    async with state.db.write() as conn:
        done = await service.import_csv(conn, project.id, text)
    return schemas.OptOutImport(added=done.added, already=done.already)


@router.get(
    "/{phone_number}",
    response_model=schemas.OptOut,
    responses=_PROBLEMS,
    summary="A person's entry",
)
async def get_opt_out(phone_number: str, project: CurrentProject, state: State) -> schemas.OptOut:
    """The person's entry; ``404`` when the person is not opted out."""
    async with state.db.read() as conn:
        return render.opt_out(await service.get_opt_out(conn, project.id, phone_number))


@router.delete(
    "/{phone_number}",
    response_model=schemas.OptOut,
    responses=_PROBLEMS,
    summary="Opt a person back in",
)
async def remove_opt_out(
    phone_number: str, project: CurrentProject, state: State
) -> schemas.OptOut:
    """The entry removed; ``recipient.opted_in`` is emitted. ``404`` when not opted out."""
    async with state.db.write() as conn:
        return render.opt_out(
            await service.remove_opt_out(conn, project.id, phone_number, source="api")
        )
