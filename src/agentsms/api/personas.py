"""Personas, pathways, dispositions and extraction schemas of a project."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Path
from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms import agents, webhooks
from agentsms.api import schemas
from agentsms.api.deps import CurrentProject, State
from agentsms.core import personas as service
from agentsms.numeric import INT32_MAX
from agentsms.store.repositories import Row

router = APIRouter(prefix="/v1", tags=["agents"])
_PROBLEMS: dict[int | str, dict[str, Any]] = {
    404: {"model": schemas.Problem},
    409: {"model": schemas.Problem},
    422: {"model": schemas.Problem},
}


def _persona_config(body: schemas.PersonaVersionCreate) -> dict[str, Any]:
    return body.model_dump(exclude_none=True, include={"agent", "pathway_id", "pathway_version"})


def _persona(row: Row, versions: Sequence[Row]) -> schemas.Persona:
    return schemas.Persona(
        id=row["id"],
        alias=row["alias"],
        name=row["name"],
        production_version=row["production_version"],
        versions=[
            schemas.PersonaVersion(
                version=v["version"],
                config=agents.without_secrets(v["config"]),
                created_at=v["created_at"],
            )
            for v in versions
        ],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def _persona_of(conn: AsyncConnection, row: Row) -> schemas.Persona:
    """The persona ``row`` with every version."""
    return _persona(row, await service.persona_versions_of(conn, row["id"]))


def _pathway(row: Row, versions: Sequence[Row]) -> schemas.Pathway:
    return schemas.Pathway(
        id=row["id"],
        name=row["name"],
        versions=[
            schemas.PathwayVersion(
                version=v["version"], document=dict(v["document"]), created_at=v["created_at"]
            )
            for v in versions
        ],
        created_at=row["created_at"],
    )


async def _pathway_of(conn: AsyncConnection, row: Row) -> schemas.Pathway:
    """The pathway ``row`` with every version of its document."""
    return _pathway(row, await service.pathway_versions_of(conn, row["id"]))


@router.post(
    "/personas",
    status_code=201,
    response_model=schemas.Persona,
    responses=_PROBLEMS,
    summary="Create a persona (an agent, versioned)",
)
async def create_persona(
    body: schemas.PersonaCreate, project: CurrentProject, state: State
) -> schemas.Persona:
    """A persona and its version 1 (a draft unless ``publish``)."""
    config, name = _persona_config(body), body.name
    if body.pathway_template is not None:
        config, named = service.template_config(body.pathway_template, config)
        name = name or named
    async with state.db.write() as conn:
        row, version = await service.create_persona(
            conn,
            project.id,
            name or "",
            config,
            publish=body.publish,
            alias=body.alias,
            url_problem=partial(webhooks.url_problem, settings=state.settings),
        )
    return _persona(row, [version])


@router.get("/personas", response_model=schemas.PersonaList, summary="List personas")
async def list_personas(project: CurrentProject, state: State) -> schemas.PersonaList:
    """The project's personas with every version, the production one marked."""
    async with state.db.read() as conn:
        rows = await service.list_personas(conn, project.id)
        data = [await _persona_of(conn, r) for r in rows]
    return schemas.PersonaList(data=data)


@router.get(
    "/personas/{persona_id}",
    response_model=schemas.Persona,
    responses=_PROBLEMS,
    summary="Get a persona with its versions",
)
async def get_persona(persona_id: str, project: CurrentProject, state: State) -> schemas.Persona:
    """By id or numeric alias."""
    async with state.db.read() as conn:
        row = await service.get_persona(conn, project.id, persona_id)
        return await _persona_of(conn, row)


@router.post(
    "/personas/{persona_id}/versions",
    status_code=201,
    response_model=schemas.Persona,
    responses=_PROBLEMS,
    summary="Add a draft version",
)
async def add_persona_version(
    persona_id: str, body: schemas.PersonaVersionCreate, project: CurrentProject, state: State
) -> schemas.Persona:
    """Add a draft version: an agent config (``agent``) or a stored pathway (``pathway_id``).
    Production keeps its version until this one is published. Returns the persona; an invalid agent
    or pathway is ``422`` naming the field.
    """
    async with state.db.write() as conn:
        await service.add_persona_version(
            conn,
            project.id,
            persona_id,
            _persona_config(body),
            url_problem=partial(webhooks.url_problem, settings=state.settings),
        )
        row = await service.get_persona(conn, project.id, persona_id)
        return await _persona_of(conn, row)


@router.post(
    "/personas/{persona_id}/versions/{version}/publish",
    response_model=schemas.Persona,
    responses=_PROBLEMS,
    summary="Make a version the production version",
)
async def publish_persona(
    persona_id: str,
    version: Annotated[int, Path(ge=1, le=INT32_MAX)],
    project: CurrentProject,
    state: State,
) -> schemas.Persona:
    """Make ``version`` the persona's production version. Returns the persona; ``404`` for an
    unknown persona or version.
    """
    async with state.db.write() as conn:
        row = await service.publish(conn, project.id, persona_id, version)
        return await _persona_of(conn, row)


@router.post(
    "/pathways",
    status_code=201,
    response_model=schemas.Pathway,
    responses=_PROBLEMS,
    summary="Store a pathway (a flow agent's graph)",
)
async def create_pathway(
    body: schemas.PathwayCreate, project: CurrentProject, state: State
) -> schemas.Pathway:
    """Validated on upload; errors name the node (``document.nodes.<id>...``)."""
    async with state.db.write() as conn:
        row, version = await service.create_pathway(
            conn,
            project.id,
            body.name,
            body.document,
            url_problem=partial(webhooks.url_problem, settings=state.settings),
        )
    return _pathway(row, [version])


@router.get("/pathways", response_model=schemas.PathwayList, summary="List pathways")
async def list_pathways(project: CurrentProject, state: State) -> schemas.PathwayList:
    """The project's stored pathways with their versions."""
    async with state.db.read() as conn:
        rows = await service.list_pathways(conn, project.id)
        data = [await _pathway_of(conn, r) for r in rows]
    return schemas.PathwayList(data=data)


@router.get(
    "/pathways/{pathway_id}",
    response_model=schemas.Pathway,
    responses=_PROBLEMS,
    summary="Get a pathway with its versions",
)
async def get_pathway(pathway_id: str, project: CurrentProject, state: State) -> schemas.Pathway:
    """A stored pathway with every version of its document.

    ``404`` when it is not in this project.
    """
    async with state.db.read() as conn:
        row = await service.get_pathway(conn, project.id, pathway_id)
        return await _pathway_of(conn, row)


@router.post(
    "/pathways/{pathway_id}/versions",
    status_code=201,
    response_model=schemas.Pathway,
    responses=_PROBLEMS,
    summary="Add a version of a pathway's document",
)
async def add_pathway_version(
    pathway_id: str, body: schemas.PathwayVersionCreate, project: CurrentProject, state: State
) -> schemas.Pathway:
    """Store a new version of the pathway's document (JSON or YAML), checked like a new pathway.
    Returns the pathway; an invalid document is ``422`` ``invalid_pathway`` naming each node at
    fault.
    """
    async with state.db.write() as conn:
        await service.add_pathway_version(
            conn,
            project.id,
            pathway_id,
            body.document,
            url_problem=partial(webhooks.url_problem, settings=state.settings),
        )
        row = await service.get_pathway(conn, project.id, pathway_id)
        return await _pathway_of(conn, row)


@router.post(
    "/dispositions",
    status_code=201,
    response_model=schemas.Disposition,
    responses=_PROBLEMS,
    summary="Add a disposition (an outcome a conversation ends with)",
)
async def create_disposition(
    body: schemas.DispositionCreate, project: CurrentProject, state: State
) -> schemas.Disposition:
    """An outcome a conversation may end with."""
    async with state.db.write() as conn:
        row = await service.create_disposition(conn, project.id, body.name, body.description)
    return schemas.Disposition(**row)


@router.get("/dispositions", response_model=schemas.DispositionList, summary="List dispositions")
async def list_dispositions(project: CurrentProject, state: State) -> schemas.DispositionList:
    """The outcomes a conversation of this project can end with."""
    async with state.db.read() as conn:
        rows = await service.list_dispositions(conn, project.id)
    return schemas.DispositionList(
        data=[
            schemas.Disposition(
                id=r["id"], name=r["name"], description=r["description"], created_at=r["created_at"]
            )
            for r in rows
        ]
    )


def _schema(row: Row) -> schemas.ExtractionSchema:
    return schemas.ExtractionSchema(
        id=row["id"], name=row["name"], definition=dict(row["schema"]), created_at=row["created_at"]
    )


@router.post(
    "/extraction-schemas",
    status_code=201,
    response_model=schemas.ExtractionSchema,
    responses=_PROBLEMS,
    summary="Add an extraction schema (what agents pull out of a conversation)",
)
async def create_extraction_schema(
    body: schemas.ExtractionSchemaCreate, project: CurrentProject, state: State
) -> schemas.ExtractionSchema:
    """A JSON-schema extraction definition (``citation_schema_ids`` on a send name these)."""
    async with state.db.write() as conn:
        row = await service.create_extraction_schema(conn, project.id, body.name, body.definition)
    return _schema(row)


@router.get(
    "/extraction-schemas",
    response_model=schemas.ExtractionSchemaList,
    summary="List extraction schemas",
)
async def list_extraction_schemas(
    project: CurrentProject, state: State
) -> schemas.ExtractionSchemaList:
    """The JSON schemas of what agents pull out of conversations."""
    async with state.db.read() as conn:
        rows = await service.list_extraction_schemas(conn, project.id)
    return schemas.ExtractionSchemaList(data=[_schema(r) for r in rows])
