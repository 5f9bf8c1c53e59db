"""``{{variable}}`` placeholders in message bodies, and stored message templates.

A stored template (``POST /v1/templates``) is a named body with placeholders; a send names
it by ``template_id`` (its id, or the caller's own ``key`` for it, e.g. a Twilio content
SID) and gives the ``variables`` that fill it. Names are letters, digits, ``_ . -``, so
Twilio-style ``{{1}}`` placeholders work too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.core.errors import Conflict, FieldError, NotFound, invalid
from agentsms.ids import new_id
from agentsms.store.repositories import Row
from agentsms.store.repositories import templates as repo
from agentsms.store.types import utcnow

if TYPE_CHECKING:
    from agentsms.core.sending.specs import OutboundSpec

MAX_BODY_CHARS = 1600

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_][A-Za-z0-9_.-]*)\s*\}\}")


class MissingVariableError(KeyError):
    """A placeholder had no value."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def has_placeholders(body: str) -> bool:
    return "{{" in body and _PLACEHOLDER.search(body) is not None


def fill(body: str, variables: Mapping[str, Any]) -> str:
    """Replace each ``{{name}}`` with ``variables[name]``; raise for the first missing one."""
    if "{{" not in body:
        return body

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in variables or variables[name] is None:
            raise MissingVariableError(name)
        return str(variables[name])

    return _PLACEHOLDER.sub(substitute, body)


async def create_template(
    conn: AsyncConnection, project_id: str, *, name: str, body: str, key: str | None = None
) -> Row:
    """Store a template; ``Conflict`` when the project already has one with ``key``."""
    if not body.strip():
        raise invalid("body", "must not be empty")
    if len(body) > MAX_BODY_CHARS:
        raise invalid("body", f"is {len(body)} characters; the limit is {MAX_BODY_CHARS}")
    if key is not None and await repo.key_taken(conn, project_id, key):
        raise Conflict(f"a template with key {key} exists already", code="template_key_taken")
    row = {
        "id": new_id("tpl"),
        "project_id": project_id,
        "name": name,
        "key": key,
        "body": body,
        "created_at": utcnow(),
    }
    await repo.insert(conn, row)
    return row


async def get_template(conn: AsyncConnection, project_id: str, id_or_key: str) -> Row:
    """The project's template by id or key; ``NotFound`` otherwise."""
    row = await repo.get(conn, project_id, id_or_key)
    if row is None:
        raise NotFound(f"template {id_or_key} not found")
    return row


async def list_templates(
    conn: AsyncConnection, project_id: str, *, before_id: str | None = None, limit: int = 50
) -> Sequence[Row]:
    """The project's templates, newest first."""
    return await repo.list_templates(conn, project_id, before_id=before_id, limit=limit)


async def delete_template(conn: AsyncConnection, project_id: str, id_or_key: str) -> None:
    """Delete a template (messages already sent from it keep their text)."""
    row = await get_template(conn, project_id, id_or_key)
    await repo.delete_one(conn, project_id, str(row["id"]))


def placeholders(body: str) -> list[str]:
    """The placeholder names of ``body``, in order of first use."""
    return list(dict.fromkeys(m.group(1) for m in _PLACEHOLDER.finditer(body)))


async def resolve(
    conn: AsyncConnection,
    project_id: str,
    specs: Sequence[OutboundSpec],
    prefixes: Sequence[str],
) -> tuple[list[OutboundSpec], list[FieldError]]:
    """Specs whose ``template_id`` is replaced by the template's body (to be filled with
    their ``variables``), and the errors of those naming no template of the project or
    giving a body as well."""
    found: dict[str, Row | None] = {}
    resolved: list[OutboundSpec] = []
    errors: list[FieldError] = []
    for spec, prefix in zip(specs, prefixes, strict=True):
        if spec.template_id is None:
            resolved.append(spec)
            continue
        if spec.body:
            errors.append(FieldError(f"{prefix}template_id", "give body or template_id, not both"))
            resolved.append(spec)
            continue
        if spec.template_id not in found:
            found[spec.template_id] = await repo.get(conn, project_id, spec.template_id)
        template = found[spec.template_id]
        if template is None:
            errors.append(FieldError(f"{prefix}template_id", f"no template {spec.template_id}"))
            resolved.append(spec)
            continue
        resolved.append(replace(spec, body=str(template["body"]), literal=False))
    return resolved, errors
