"""``/v1/project``: the calling key's project."""

from __future__ import annotations

from fastapi import APIRouter

from agentsms import agents
from agentsms.api import schemas
from agentsms.api.deps import CurrentProject, State
from agentsms.core import projects as service
from agentsms.core.personas import DEFAULT_PERSONA

router = APIRouter(prefix="/v1/project", tags=["project"])


def _out(project: service.Project) -> schemas.Project:
    settings = dict(project.settings)
    default = settings.pop(DEFAULT_PERSONA, None)
    return schemas.Project(
        id=project.id,
        name=project.name,
        settings=agents.without_secrets(settings),
        default_persona_id=default,
    )


@router.get("", response_model=schemas.Project, summary="The calling key's project")
async def get_project(project: CurrentProject) -> schemas.Project:
    return _out(project)


@router.patch("", response_model=schemas.Project, summary="Change project settings")
async def update_project(
    body: schemas.ProjectUpdate, project: CurrentProject, state: State
) -> schemas.Project:
    changes = dict(body.settings)
    async with state.db.write() as conn:
        if "default_persona_id" in body.model_fields_set:
            project = await service.set_default_persona(conn, project, body.default_persona_id)
        updated = await service.update_project(conn, project, changes, name=body.name)
    state.key_cache.clear()
    return _out(updated)
