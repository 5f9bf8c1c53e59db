"""``{{variable}}`` placeholders in message bodies, and stored message templates.

A stored template (``POST /v1/templates``) is a named body with placeholders; a send names
it by ``template_id`` (its id, or the caller's own ``key`` for it, e.g. a Twilio content
SID) and gives the ``variables`` that fill it. The placeholders are those of
:mod:`agentsms.templating` (the language pathways use too), rendered strictly: a missing
variable is an error. Names are letters, digits, ``_ . -``, so Twilio-style ``{{1}}``
placeholders work too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import Field, replace
from typing import Any, ClassVar, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms.errors import Conflict, FieldError, NotFound, invalid
from agentsms.ids import new_id
from agentsms.store.repositories import Row
from agentsms.store.repositories import templates as repo
from agentsms.store.types import utcnow
from agentsms.templating import MissingVariableError as MissingVariableError
from agentsms.templating import has_placeholders as has_placeholders
from agentsms.templating import placeholders as placeholders
from agentsms.templating import render

MAX_BODY_CHARS = 1600


def fill(body: str, variables: Mapping[str, Any]) -> str:
    """Replace each ``{{name}}`` with its value (see :mod:`agentsms.templating`); raise
    :class:`MissingVariableError` for the first one without a value."""
    return render(body, variables, strict=True)


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


class Templated(Protocol):
    """What ``resolve`` needs of a send's spec (``core.messages.OutboundSpec``): a dataclass
    naming a ``template_id`` or giving a ``body``. (A protocol, so that this module does not
    import the sending code that imports it.)"""

    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    @property
    def template_id(self) -> str | None: ...

    @property
    def body(self) -> str | None: ...


Spec = TypeVar("Spec", bound=Templated)


async def resolve(
    conn: AsyncConnection,
    project_id: str,
    specs: Sequence[Spec],
    prefixes: Sequence[str],
) -> tuple[list[Spec], list[FieldError]]:
    """Specs whose ``template_id`` is replaced by the template's body (to be filled with
    their ``variables``), and the errors of those naming no template of the project or
    giving a body as well."""
    found: dict[str, Row | None] = {}
    resolved: list[Spec] = []
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
