"""The suppression list in the dashboard: the list (filter, pages), add one person, opt one
back in, import a CSV file (all or nothing, each bad row named) and export it."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Request, UploadFile
from starlette.responses import RedirectResponse, Response

from agentsms.core import optouts as service
from agentsms.dashboard.web import PREFIX, DashboardRoute, Protected, SignedIn, form_page
from agentsms.errors import AgentsmsError, FieldError, invalid

router = APIRouter(prefix=PREFIX, route_class=DashboardRoute, include_in_schema=False)

PAGE_SIZE = 50
MAX_UPLOAD = 8_000_000


def _back(notice: str) -> Response:
    return RedirectResponse(f"{PREFIX}/opt-outs?{urlencode({'notice': notice})}", status_code=303)


async def _list_page(
    request: Request, viewer: SignedIn, extra: dict[str, Any], status_code: int = 200
) -> Response:
    query = request.query_params
    phone = (query.get("phone") or "").strip() or None
    source = query.get("source") or None
    context: dict[str, Any] = {
        "rows": [],
        "next_cursor": None,
        "phone": phone or "",
        "source": source or "",
        "sources": service.SOURCES,
        "import_errors": [],
    }
    try:
        async with viewer.state.db.read() as conn:
            rows, next_cursor = await service.list_opt_outs(
                conn,
                viewer.project.id,
                phone_number=phone,
                source=source if source in service.SOURCES else None,
                cursor=query.get("cursor") or None,
                limit=PAGE_SIZE,
            )
        context.update(rows=rows, next_cursor=next_cursor)
    except AgentsmsError as error:
        context["errors"] = {"filter": [e.message for e in error.errors] or [error.detail]}
    return form_page(
        request, "optouts.html", context, extra, status_code=status_code, nav="optouts"
    )


@router.get("/opt-outs")
async def optouts_page(request: Request, viewer: SignedIn) -> Response:
    return await _list_page(request, viewer, {})


@router.post("/opt-outs", dependencies=[Protected])
async def add_opt_out(
    request: Request,
    viewer: SignedIn,
    phone_number: Annotated[str, Form()] = "",
    keyword: Annotated[str, Form()] = "",
) -> Response:
    try:
        async with viewer.state.db.write() as conn:
            row, added = await service.add_opt_out(
                conn,
                viewer.project.id,
                phone_number,
                source="dashboard",
                keyword=keyword.strip()[:40] or None,
            )
    except AgentsmsError as error:
        extra = {
            "errors": {"phone_number": [e.message for e in error.errors] or [error.detail]},
            "form": {"phone_number": phone_number, "keyword": keyword},
        }
        return await _list_page(request, viewer, extra, 422)
    verb = "Opted out" if added else "Already opted out:"
    return _back(f"{verb} {row['recipient']}.")


@router.post("/opt-outs/remove", dependencies=[Protected])
async def remove_opt_out(
    request: Request, viewer: SignedIn, phone_number: Annotated[str, Form()] = ""
) -> Response:
    async with viewer.state.db.write() as conn:
        row = await service.remove_opt_out(
            conn, viewer.project.id, phone_number, source="dashboard"
        )
    return _back(f"{row['recipient']} opted back in.")


async def _csv_text(file: UploadFile | None) -> str:
    if file is None or not file.filename:
        raise invalid("file", "choose a CSV file")
    raw = await file.read(MAX_UPLOAD + 1)
    if len(raw) > MAX_UPLOAD:
        raise invalid("file", f"the file is larger than {MAX_UPLOAD // 1_000_000} MB")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise invalid("file", "the file is not UTF-8 text") from None


@router.post("/opt-outs/import", dependencies=[Protected])
async def import_opt_outs(
    request: Request,
    viewer: SignedIn,
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    try:
        text = await _csv_text(file)
        async with viewer.state.db.write() as conn:
            done = await service.import_csv(conn, viewer.project.id, text)
    except AgentsmsError as error:
        extra = {"import_errors": error.errors or [FieldError("file", error.detail)]}
        return await _list_page(request, viewer, extra, 422)
    return _back(f"Imported {done.added} new, {done.already} already opted out.")


@router.get("/opt-outs/export.csv")
async def export_opt_outs(viewer: SignedIn) -> Response:
    async with viewer.state.db.read() as conn:
        rows = await service.every_opt_out(conn, viewer.project.id)
    return Response(
        service.export_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="opt-outs.csv"'},
    )
