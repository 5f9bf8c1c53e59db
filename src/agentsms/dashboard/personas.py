"""Personas and pathways in the dashboard: list, upload a pathway (JSON or YAML) with its
validation errors naming the node, create a persona on a pathway, publish a version, and
each pathway drawn as a graph."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Request, UploadFile
from starlette.responses import RedirectResponse, Response

from agentsms.agents.pathway import edges, parse_pathway
from agentsms.core import llm_credentials
from agentsms.core import personas as service
from agentsms.dashboard import graph
from agentsms.dashboard.web import (
    PREFIX,
    DashboardRoute,
    Protected,
    SignedIn,
    errors_by_field,
    form_page,
)
from agentsms.errors import AgentsmsError, FieldError, ValidationFailed, invalid
from agentsms.numeric import INT32_MAX, whole_number
from agentsms.webhooks.ssrf import url_problem

router = APIRouter(prefix=PREFIX, route_class=DashboardRoute, include_in_schema=False)

MAX_UPLOAD = 1_000_000


async def _list_page(
    request: Request, viewer: SignedIn, extra: dict[str, Any], status_code: int = 200
) -> Response:
    async with viewer.state.db.read() as conn:
        llm_key = await llm_credentials.key_status(conn, viewer.project.id)
        personas = [
            (row, await service.persona_versions_of(conn, row["id"]))
            for row in await service.list_personas(conn, viewer.project.id)
        ]
        pathways = [
            (row, await service.pathway_versions_of(conn, row["id"]))
            for row in await service.list_pathways(conn, viewer.project.id)
        ]
    context = {"personas": personas, "pathways": pathways, "llm_key": llm_key}
    return form_page(
        request, "personas.html", context, extra, status_code=status_code, nav="personas"
    )


def _url_problem(viewer: SignedIn) -> service.UrlProblem:
    return partial(url_problem, settings=viewer.state.settings)


def _back(path: str, notice: str) -> Response:
    return RedirectResponse(f"{PREFIX}{path}?{urlencode({'notice': notice})}", status_code=303)


@router.get("/personas")
async def personas_page(request: Request, viewer: SignedIn) -> Response:
    return await _list_page(request, viewer, {})


async def _document_text(file: UploadFile | None, text: str) -> str:
    if file is not None and file.filename:
        raw = await file.read(MAX_UPLOAD + 1)
        if len(raw) > MAX_UPLOAD:
            raise invalid("document", f"the file is larger than {MAX_UPLOAD // 1000} kB")
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise invalid("document", "the file is not UTF-8 text") from None
    if not text.strip():
        raise invalid("document", "choose a JSON or YAML file, or paste the pathway")
    return text


def _by_field(error: AgentsmsError) -> dict[str, list[str]]:
    """Errors by form field; a pathway's own errors all show beside the document, each
    naming its place (``nodes.<node id>.next: unknown node 'x'``)."""
    found: dict[str, list[str]] = {}
    for item in error.errors or [FieldError("document", error.detail)]:
        if item.field.startswith("document."):
            where = item.field.removeprefix("document.").removeprefix("pathway.")
            found.setdefault("document", []).append(f"{where}: {item.message}")
        else:
            found.setdefault(item.field, []).append(item.message)
    return found


@router.post("/pathways", dependencies=[Protected])
async def upload_pathway(
    request: Request,
    viewer: SignedIn,
    name: Annotated[str, Form()] = "",
    document: Annotated[str, Form()] = "",
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    try:
        errors: list[FieldError] = []
        if not name.strip():
            errors.append(FieldError("name", "must not be empty"))
        text = await _document_text(file, document)
        if errors:
            raise ValidationFailed("name: must not be empty", errors=errors)
        async with viewer.state.db.write() as conn:
            row, _ = await service.create_pathway(
                conn, viewer.project.id, name, text, url_problem=_url_problem(viewer)
            )
    except AgentsmsError as error:
        form = {"name": name, "document": document}
        return await _list_page(request, viewer, {"errors": _by_field(error), "form": form}, 422)
    return _back(f"/pathways/{row['id']}", f"Pathway {row['name']} saved as version 1.")


@router.get("/pathways/{pathway_id}")
async def pathway_page(
    request: Request, viewer: SignedIn, pathway_id: str, version: int | None = None
) -> Response:
    return await _pathway_page(request, viewer, pathway_id, version, {})


async def _pathway_page(
    request: Request,
    viewer: SignedIn,
    pathway_id: str,
    version: int | None,
    extra: dict[str, Any],
    status_code: int = 200,
) -> Response:
    async with viewer.state.db.read() as conn:
        row = await service.get_pathway(conn, viewer.project.id, pathway_id)
        versions = await service.pathway_versions_of(conn, pathway_id)
    chosen = next((v for v in versions if v["version"] == version), versions[-1])
    parsed = parse_pathway(chosen["document"])
    drawing = graph.svg(
        parsed.start,
        [(node.id, node.type) for node in parsed.nodes.values()],
        edges(parsed),
        title=f"{row['name']}, version {chosen['version']}",
    )
    context = {"p": row, "versions": versions, "chosen": chosen, "drawing": drawing}
    return form_page(
        request, "pathway.html", context, extra, status_code=status_code, nav="personas"
    )


@router.post("/pathways/{pathway_id}/versions", dependencies=[Protected])
async def upload_version(
    request: Request,
    viewer: SignedIn,
    pathway_id: str,
    document: Annotated[str, Form()] = "",
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    try:
        text = await _document_text(file, document)
        async with viewer.state.db.write() as conn:
            version = await service.add_pathway_version(
                conn, viewer.project.id, pathway_id, text, url_problem=_url_problem(viewer)
            )
    except AgentsmsError as error:
        if error.status == 404:
            raise
        extra = {"errors": _by_field(error), "form": {"document": document}}
        return await _pathway_page(request, viewer, pathway_id, None, extra, 422)
    return _back(f"/pathways/{pathway_id}", f"Saved as version {version['version']}.")


@router.post("/personas", dependencies=[Protected])
async def create_persona(
    request: Request,
    viewer: SignedIn,
    name: Annotated[str, Form()] = "",
    pathway_id: Annotated[str, Form()] = "",
    publish: Annotated[str, Form()] = "",
) -> Response:
    config: dict[str, Any] = {"pathway_id": pathway_id} if pathway_id else {}
    try:
        if not pathway_id:
            raise invalid("pathway_id", "choose a pathway (upload one first)")
        async with viewer.state.db.write() as conn:
            row, _ = await service.create_persona(
                conn, viewer.project.id, name, config, publish=bool(publish)
            )
    except AgentsmsError as error:
        found = errors_by_field(error.errors) or {"name": [error.detail]}
        form = {"persona_name": name, "pathway_id": pathway_id}
        return await _list_page(request, viewer, {"errors": found, "form": form}, 422)
    state = "in production" if publish else "as a draft"
    return _back("/personas", f"Persona {row['name']} created {state}.")


@router.post("/personas/llm-key", dependencies=[Protected])
async def set_llm_key(
    request: Request,
    viewer: SignedIn,
    api_key: Annotated[str, Form()] = "",
    remove: Annotated[str, Form()] = "",
) -> Response:
    """Store, replace or forget the project's LLM API key (never shown again)."""
    try:
        async with viewer.state.db.write() as conn:
            if remove:
                await llm_credentials.remove_key(conn, viewer.project.id)
            else:
                await llm_credentials.set_key(
                    conn, viewer.project.id, api_key, viewer.state.settings
                )
    except AgentsmsError as error:
        found = errors_by_field(error.errors) or {"api_key": [error.detail]}
        return await _list_page(request, viewer, {"errors": found}, 422)
    return _back("/personas", "LLM API key removed." if remove else "LLM API key saved.")


@router.post("/personas/{persona_id}/publish", dependencies=[Protected])
async def publish_persona(
    request: Request, viewer: SignedIn, persona_id: str, version: Annotated[str, Form()] = ""
) -> Response:
    number = whole_number(version, INT32_MAX)
    if number is None:
        errors = {f"version-{persona_id}": ["choose a version"]}
        return await _list_page(request, viewer, {"errors": errors}, 422)
    async with viewer.state.db.write() as conn:
        row = await service.publish(conn, viewer.project.id, persona_id, number)
    return _back("/personas", f"{row['name']}: version {version} is in production.")
