"""The pathway gallery: the pathways agentsms ships (``agents/pathways/*.yaml``).

Each document's own header gives the template's ``id``, ``name`` and ``description``; a
persona created from a template runs a copy of its document as a flow agent.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

APPOINTMENT_REMINDER = "appointment_reminder"


@dataclass(frozen=True, slots=True)
class PathwayTemplate:
    """A shipped pathway."""

    id: str
    name: str
    description: str
    document: dict[str, Any]

    def agent_config(self) -> dict[str, Any]:
        """A flow agent config running a fresh copy of the document."""
        return {"kind": "flow", "pathway": copy.deepcopy(self.document)}


@cache
def _load() -> dict[str, PathwayTemplate]:
    folder = resources.files("agentsms.agents").joinpath("pathways")
    found: dict[str, PathwayTemplate] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        document = yaml.safe_load(entry.read_text(encoding="utf-8"))
        assert isinstance(document, dict), entry.name
        template_id = str(document["id"])
        found[template_id] = PathwayTemplate(
            id=template_id,
            name=str(document["name"]),
            description=" ".join(str(document.get("description", "")).split()),
            document=document,
        )
    return found


def pathway_templates() -> list[PathwayTemplate]:
    """Every shipped pathway, by id."""
    return list(_load().values())


def pathway_template(template_id: str) -> PathwayTemplate | None:
    """The shipped pathway ``template_id``, or ``None``."""
    return _load().get(template_id)


def template_document(template_id: str) -> dict[str, Any]:
    """A fresh copy of the shipped pathway ``template_id``'s document (it must exist)."""
    template = pathway_template(template_id)
    assert template is not None, template_id
    return copy.deepcopy(template.document)
