"""``/v1/pathway-templates``: the pathways agentsms ships, to start a persona from."""

from __future__ import annotations

from fastapi import APIRouter

from agentsms.agents import gallery
from agentsms.api import schemas
from agentsms.api.deps import CurrentProject
from agentsms.errors import NotFound

router = APIRouter(prefix="/v1/pathway-templates", tags=["agents"])


def _out(template: gallery.PathwayTemplate) -> schemas.PathwayTemplate:
    return schemas.PathwayTemplate(
        id=template.id,
        name=template.name,
        description=template.description,
        document=template.document,
    )


@router.get("", response_model=schemas.PathwayTemplateList, summary="The shipped pathways")
async def list_templates(_: CurrentProject) -> schemas.PathwayTemplateList:
    """Create a persona from one with ``POST /v1/personas {"pathway_template": id}``."""
    return schemas.PathwayTemplateList(data=[_out(t) for t in gallery.pathway_templates()])


@router.get(
    "/{template_id}",
    response_model=schemas.PathwayTemplate,
    responses={404: {"model": schemas.Problem}},
    summary="A shipped pathway",
)
async def get_template(template_id: str, _: CurrentProject) -> schemas.PathwayTemplate:
    """One shipped pathway by its id (e.g. ``appointment-reminder``), ready to copy into
    ``POST /v1/pathways``; ``404`` for an id the gallery does not ship."""
    template = gallery.pathway_template(template_id)
    if template is None:
        raise NotFound(f"no shipped pathway {template_id}")
    return _out(template)
