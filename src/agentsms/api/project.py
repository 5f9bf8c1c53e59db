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
    """The project the API key belongs to: its id (the ``AccountKey`` / ``X-TOKEN-ID`` of the
    vendor-compatible surfaces), name and settings (secrets left out).
    """
    return _out(project)


@router.patch("", response_model=schemas.Project, summary="Change project settings")
async def update_project(
    body: schemas.ProjectUpdate, project: CurrentProject, state: State
) -> schemas.Project:
    """Rename the project or change its settings (``rate_limit_per_second``, ``daily_segment_cap``,
    ``daily_spend_cap``, ...); settings not named keep their value. Returns the project; an unknown
    or invalid setting is ``422``.
    """
    changes = dict(body.settings)
    async with state.db.write() as conn:
        if "default_persona_id" in body.model_fields_set:
            project = await service.set_default_persona(conn, project, body.default_persona_id)
        updated = await service.update_project(conn, project, changes, name=body.name)
    state.key_cache.clear()
    return _out(updated)
