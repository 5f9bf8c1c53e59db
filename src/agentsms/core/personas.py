"""Personas (named, versioned agent configurations), pathways, dispositions, extraction schemas.

A persona version's config is either an agent config (``{"agent": {"kind": ...}}``) or a
reference to a stored pathway (``{"pathway_id": ..., "pathway_version": n}``). A persona
has draft versions and at most one ``production`` version; a send names
``persona_version`` ``"production"`` (the default), ``"draft"`` (the newest) or a number.

Which agent a conversation gets (``resolve_agent_config``), highest first: the send's
``persona_settings`` (merged over what follows), its ``pathway_id``, its persona (its agent
or pathway), each falling back to the sender number's and then the project's defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from agentsms import agents
from agentsms.agents import gallery
from agentsms.agents.pathway import LlmNode, load_pathway_text, parse_pathway
from agentsms.core.storable import json_problems
from agentsms.errors import Conflict, FieldError, NotFound, ValidationFailed, invalid
from agentsms.ids import new_id
from agentsms.numeric import INT32_MAX, whole_number
from agentsms.store.repositories import Row
from agentsms.store.repositories import personas as repo
from agentsms.store.tables import (
    dispositions,
    extraction_schemas,
    pathway_versions,
    persona_versions,
)
from agentsms.store.types import utcnow

DEFAULT_PERSONA = "default_persona_id"
"""The project setting naming the persona that answers conversations that name no agent."""

UrlProblem = Callable[[str], str | None]
"""Why a URL may never be called (``webhooks.url_problem`` with the settings), or None."""


def _check_agent(config: Mapping[str, Any], field: str) -> None:
    """``agents.validate_agent_config`` with its field paths moved under ``field``."""
    try:
        agents.validate_agent_config(config)
    except ValidationFailed as failed:
        errors = [
            FieldError(field + e.field.removeprefix("agent"), e.message) for e in failed.errors
        ]
        raise ValidationFailed(
            "; ".join(f"{e.field}: {e.message}" for e in errors) or failed.detail,
            errors=errors or [FieldError(field, failed.detail)],
            code=failed.code,
        ) from None


def _called_urls(agent: Mapping[str, Any], field: str) -> list[tuple[str, str]]:
    """The URLs agentsms itself calls for an agent config, by field path (an invalid
    pathway has none here: its validation reports it)."""
    if agent.get("kind") == "flow":
        try:
            nodes = parse_pathway(agent.get("pathway")).nodes.values()
        except ValidationFailed:
            return []
        return [
            (f"{field}.pathway.nodes.{node.id}.agent.base_url", str(node.agent["base_url"]))
            for node in nodes
            if isinstance(node, LlmNode) and node.agent.get("base_url")
        ]
    return [(f"{field}.{key}", agent[key]) for key in ("url", "base_url") if agent.get(key)]


def check_agent_urls(agent: Mapping[str, Any], field: str, url_problem: UrlProblem) -> None:
    """Refuse (422 ``unsafe_url`` naming each field) an agent config whose webhook URL or LLM
    ``base_url`` may never be called: refused when saved, not at each turn (the guard still
    checks every connection)."""
    errors = [
        FieldError(path, problem)
        for path, url in _called_urls(agent, field)
        if (problem := url_problem(str(url))) is not None
    ]
    if errors:
        raise ValidationFailed(
            "; ".join(f"{e.field}: {e.message}" for e in errors), errors=errors, code="unsafe_url"
        )


# --- pathways ---------------------------------------------------------------------------


def _document(document: Mapping[str, Any] | str) -> dict[str, Any]:
    """A pathway given as an object, or as JSON or YAML text."""
    if isinstance(document, str):
        loaded = load_pathway_text(document, "document")
        if not isinstance(loaded, Mapping):
            raise invalid("document", "must be a pathway object (JSON or YAML)")
        document = loaded
    problem = next(json_problems(dict(document), "document"), None)
    if problem is not None:
        raise invalid(problem.field, problem.message)
    return dict(document)


def _check_pathway(document: Mapping[str, Any], url_problem: UrlProblem | None) -> None:
    agent = {"kind": "flow", "pathway": dict(document)}
    _check_agent(agent, "document")
    if url_problem is not None:
        check_agent_urls(agent, "document", url_problem)


async def create_pathway(
    conn: AsyncConnection,
    project_id: str,
    name: str,
    document: Mapping[str, Any] | str,
    *,
    url_problem: UrlProblem | None = None,
) -> tuple[Row, Row]:
    """A pathway and its version 1, validated (errors name the node; ``url_problem`` says
    why an llm node's ``base_url`` may never be called)."""
    if not name.strip():
        raise invalid("name", "must not be empty")
    document = _document(document)
    _check_pathway(document, url_problem)
    now = utcnow()
    row = {"id": new_id("pw"), "project_id": project_id, "name": name.strip(), "created_at": now}
    await repo.insert_pathway(conn, row)
    version = {"pathway_id": row["id"], "version": 1, "document": dict(document), "created_at": now}
    await repo.insert_version(conn, pathway_versions, version)
    return row, version


async def add_pathway_version(
    conn: AsyncConnection,
    project_id: str,
    pathway_id: str,
    document: Mapping[str, Any] | str,
    *,
    url_problem: UrlProblem | None = None,
) -> Row:
    """A new version of a pathway, validated as for ``create_pathway``."""
    await get_pathway(conn, project_id, pathway_id)
    document = _document(document)
    _check_pathway(document, url_problem)
    number = await repo.latest_version(conn, pathway_versions, pathway_id) + 1
    version = {
        "pathway_id": pathway_id,
        "version": number,
        "document": dict(document),
        "created_at": utcnow(),
    }
    await repo.insert_version(conn, pathway_versions, version)
    return version


async def get_pathway(conn: AsyncConnection, project_id: str, pathway_id: str) -> Row:
    row = await repo.get_pathway(conn, project_id, pathway_id)
    if row is None:
        raise NotFound(f"pathway {pathway_id} not found")
    return row


async def pathway_versions_of(conn: AsyncConnection, pathway_id: str) -> Sequence[Row]:
    return await repo.versions(conn, pathway_versions, pathway_id)


async def list_pathways(conn: AsyncConnection, project_id: str) -> Sequence[Row]:
    return await repo.list_pathways(conn, project_id)


async def _pathway_document(
    conn: AsyncConnection, project_id: str, pathway_id: str, version: int | None, field: str
) -> dict[str, Any]:
    if await repo.get_pathway(conn, project_id, str(pathway_id)) is None:
        raise invalid(field, f"no pathway {pathway_id} in this project")
    number = version or await repo.latest_version(conn, pathway_versions, str(pathway_id))
    found = await repo.get_version(conn, pathway_versions, str(pathway_id), int(number))
    if found is None:
        raise invalid(field, f"pathway {pathway_id} has no version {number}")
    return dict(found["document"])


# --- personas ---------------------------------------------------------------------------


def template_config(template_id: str, given: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The config of a persona made from the shipped pathway ``template_id`` (``given`` must
    name no other agent), and the template's name."""
    if given:
        raise invalid("pathway_template", "give one of agent, pathway_id or pathway_template")
    template = gallery.pathway_template(template_id)
    if template is None:
        known = ", ".join(t.id for t in gallery.pathway_templates())
        raise invalid("pathway_template", f"no shipped pathway {template_id!r}; one of {known}")
    return {"agent": template.agent_config()}, template.name


def _check_persona_config(config: Mapping[str, Any], url_problem: UrlProblem | None) -> None:
    if "agent" in config and "pathway_id" in config:
        raise invalid("pathway_id", "give either agent or pathway_id, not both")
    if "agent" in config:
        if not isinstance(config["agent"], Mapping):
            raise invalid("agent", "must be an object with a kind")
        _check_agent(config["agent"], "agent")
        if url_problem is not None:
            check_agent_urls(config["agent"], "agent", url_problem)
    elif not config.get("pathway_id"):
        raise invalid("agent", "give an agent config or a pathway_id")


async def _check_persona_refs(
    conn: AsyncConnection, project_id: str, config: Mapping[str, Any]
) -> None:
    if config.get("pathway_id"):
        await _pathway_document(
            conn, project_id, config["pathway_id"], config.get("pathway_version"), "pathway_id"
        )


async def create_persona(
    conn: AsyncConnection,
    project_id: str,
    name: str,
    config: Mapping[str, Any],
    *,
    publish: bool = False,
    alias: int | None = None,
    url_problem: UrlProblem | None = None,
) -> tuple[Row, Row]:
    """A persona and its version 1 (a draft, or production with ``publish``).

    ``alias`` is its numeric alias (unique in the project; the next free one if absent),
    for APIs that name agents by integer (Vida's ``agentId``). ``url_problem`` says why a
    webhook agent's URL or an LLM's ``base_url`` may never be called (``webhooks.url_problem``).
    """
    if not name.strip():
        raise invalid("name", "must not be empty")
    if alias is not None:
        if alias < 1:
            raise invalid("alias", "must be a whole number of at least 1")
        if await repo.get_persona(conn, project_id, str(alias)) is not None:
            raise Conflict(f"alias {alias} is taken by another persona", code="alias_taken")
    _check_persona_config(config, url_problem)
    await _check_persona_refs(conn, project_id, config)
    now = utcnow()
    row = {
        "id": new_id("persona"),
        "project_id": project_id,
        "alias": alias if alias is not None else await repo.next_alias(conn, project_id),
        "name": name.strip(),
        "production_version": 1 if publish else None,
        "created_at": now,
        "updated_at": now,
    }
    await repo.insert_persona(conn, row)
    version = {"persona_id": row["id"], "version": 1, "config": dict(config), "created_at": now}
    await repo.insert_version(conn, persona_versions, version)
    return row, version


async def add_persona_version(
    conn: AsyncConnection,
    project_id: str,
    persona_ref: str,
    config: Mapping[str, Any],
    *,
    url_problem: UrlProblem | None = None,
) -> Row:
    """A new draft version of a persona (``url_problem`` as for ``create_persona``)."""
    persona = await get_persona(conn, project_id, persona_ref)
    _check_persona_config(config, url_problem)
    await _check_persona_refs(conn, project_id, config)
    number = await repo.latest_version(conn, persona_versions, persona["id"]) + 1
    version = {
        "persona_id": persona["id"],
        "version": number,
        "config": dict(config),
        "created_at": utcnow(),
    }
    await repo.insert_version(conn, persona_versions, version)
    await repo.update_persona(conn, persona["id"], {"updated_at": version["created_at"]})
    return version


async def publish(conn: AsyncConnection, project_id: str, persona_ref: str, version: int) -> Row:
    """Make ``version`` the persona's production version."""
    persona = await get_persona(conn, project_id, persona_ref)
    if await repo.get_version(conn, persona_versions, persona["id"], version) is None:
        raise NotFound(f"persona {persona['id']} has no version {version}")
    await repo.update_persona(
        conn, persona["id"], {"production_version": version, "updated_at": utcnow()}
    )
    return await get_persona(conn, project_id, persona["id"])


async def get_persona(conn: AsyncConnection, project_id: str, persona_ref: str) -> Row:
    row = await repo.get_persona(conn, project_id, str(persona_ref))
    if row is None:
        raise NotFound(f"persona {persona_ref} not found")
    return row


async def rename_persona(
    conn: AsyncConnection, project_id: str, persona_ref: str, name: str
) -> Row:
    if not name.strip():
        raise invalid("name", "must not be empty")
    persona = await get_persona(conn, project_id, persona_ref)
    await repo.update_persona(conn, persona["id"], {"name": name.strip(), "updated_at": utcnow()})
    return await get_persona(conn, project_id, persona["id"])


async def delete_persona(conn: AsyncConnection, project_id: str, persona_ref: str) -> None:
    """Delete a persona and its versions (conversations that named it keep their messages;
    a later agent turn of theirs reports the persona missing)."""
    persona = await get_persona(conn, project_id, persona_ref)
    await repo.delete_persona(conn, persona["id"])


async def list_personas(conn: AsyncConnection, project_id: str) -> Sequence[Row]:
    return await repo.list_personas(conn, project_id)


async def persona_versions_of(conn: AsyncConnection, persona_id: str) -> Sequence[Row]:
    return await repo.versions(conn, persona_versions, persona_id)


async def _persona_config(
    conn: AsyncConnection, project_id: str, persona_ref: str, wanted: Any, field: str
) -> dict[str, Any]:
    persona = await repo.get_persona(conn, project_id, str(persona_ref))
    if persona is None:
        raise invalid(f"{field}persona_id", f"no persona {persona_ref} in this project")
    if wanted in (None, "production"):
        number = persona["production_version"]
        if number is None:
            raise invalid(
                f"{field}persona_version",
                f"persona {persona['id']} has no production version; publish one or ask "
                "for 'draft'",
            )
    elif wanted == "draft":
        number = await repo.latest_version(conn, persona_versions, persona["id"])
    else:
        try:
            number = int(wanted)
        except (TypeError, ValueError):
            raise invalid(
                f"{field}persona_version", "must be 'production', 'draft' or a version number"
            ) from None
    found = await repo.get_version(conn, persona_versions, persona["id"], int(number))
    if found is None:
        raise invalid(f"{field}persona_version", f"persona {persona['id']} has no version {number}")
    config = dict(found["config"])
    if config.get("pathway_id"):
        document = await _pathway_document(
            conn, project_id, config["pathway_id"], config.get("pathway_version"), field
        )
        return {"kind": "flow", "pathway": document}
    return dict(config["agent"])


async def resolve_agent_config(
    conn: AsyncConnection, project_id: str, settings: Mapping[str, Any], *, field: str = ""
) -> dict[str, Any] | None:
    """The agent config for a conversation's effective settings, or ``None`` (no agent).

    Raises ``ValidationFailed`` naming ``<field>persona_id`` etc. when a reference is bad.
    """
    base: dict[str, Any] | None = None
    if settings.get("pathway_id"):
        document = await _pathway_document(
            conn,
            project_id,
            settings["pathway_id"],
            settings.get("pathway_version"),
            f"{field}pathway_id",
        )
        base = {"kind": "flow", "pathway": document}
    elif settings.get("persona_id"):
        base = await _persona_config(
            conn, project_id, settings["persona_id"], settings.get("persona_version"), field
        )
    overrides = settings.get("persona_settings")
    if overrides:
        base = {**(base or {}), **dict(overrides)}
        _check_agent(base, f"{field}persona_settings")
    return base


# --- dispositions and extraction schemas -------------------------------------------------


async def create_disposition(
    conn: AsyncConnection, project_id: str, name: str, description: str | None
) -> Row:
    if not name.strip():
        raise invalid("name", "must not be empty")
    if await repo.named_by_name(conn, dispositions, project_id, name.strip()):
        raise Conflict(f"disposition {name.strip()!r} already exists", code="disposition_exists")
    row = {
        "id": new_id("disp"),
        "project_id": project_id,
        "name": name.strip(),
        "description": description,
        "created_at": utcnow(),
    }
    await repo.insert_named(conn, dispositions, row)
    return row


async def create_extraction_schema(
    conn: AsyncConnection, project_id: str, name: str, schema: Mapping[str, Any]
) -> Row:
    """A JSON-schema extraction definition: an object schema whose properties are extracted."""
    if not name.strip():
        raise invalid("name", "must not be empty")
    if schema.get("type") != "object" or not isinstance(schema.get("properties"), Mapping):
        raise invalid("schema", 'must be a JSON schema with "type": "object" and "properties"')
    if await repo.named_by_name(conn, extraction_schemas, project_id, name.strip()):
        raise Conflict(f"extraction schema {name.strip()!r} already exists", code="schema_exists")
    row = {
        "id": new_id("xs"),
        "project_id": project_id,
        "name": name.strip(),
        "schema": dict(schema),
        "created_at": utcnow(),
    }
    await repo.insert_named(conn, extraction_schemas, row)
    return row


async def list_dispositions(conn: AsyncConnection, project_id: str) -> Sequence[Row]:
    return await repo.list_named(conn, dispositions, project_id)


async def list_extraction_schemas(conn: AsyncConnection, project_id: str) -> Sequence[Row]:
    return await repo.list_named(conn, extraction_schemas, project_id)


async def check_references(
    conn: AsyncConnection, project_id: str, settings: Mapping[str, Any], prefix: str
) -> list[FieldError]:
    """Errors for ids in a send's settings that name nothing in the project."""
    errors: list[FieldError] = []
    for key, table in (
        ("disposition_ids", dispositions),
        ("citation_schema_ids", extraction_schemas),
    ):
        ids = settings.get(key) or []
        found = await repo.named_by_ids(conn, table, project_id, ids)
        errors.extend(
            FieldError(f"{prefix}{key}[{i}]", f"no {key.removesuffix('_ids')} {value} here")
            for i, value in enumerate(ids)
            if value not in found
        )
    try:
        await resolve_agent_config(conn, project_id, settings, field=prefix)
    except ValidationFailed as failed:
        errors.extend(failed.errors)
    return errors


async def default_persona_id(conn: AsyncConnection, project_id: str, ref: str) -> str:
    """The id of the persona ``ref`` (id or alias) may become the project's default: one of
    the project's personas with a production version (a 422 naming ``default_persona_id``)."""
    persona = await repo.get_persona(conn, project_id, ref)
    if persona is None:
        raise invalid(DEFAULT_PERSONA, f"no persona {ref} in this project")
    if persona["production_version"] is None:
        raise invalid(
            DEFAULT_PERSONA, f"persona {persona['id']} has no production version; publish one"
        )
    return str(persona["id"])


async def canonical_persona_id(
    conn: AsyncConnection, project_id: str, settings: dict[str, Any]
) -> None:
    """Store a persona named by its numeric alias under its id (listing by persona finds it)."""
    ref = settings.get("persona_id")
    if isinstance(ref, str) and whole_number(ref, INT32_MAX) is not None:
        persona = await repo.get_persona(conn, project_id, ref)
        if persona is not None:
            settings["persona_id"] = persona["id"]


async def agent_inputs(
    conn: AsyncConnection, project_id: str, settings: Mapping[str, Any]
) -> tuple[list[str], list[dict[str, Any]]]:
    """The allowed outcomes (names) and extraction schemas an agent gets."""
    disp = await repo.named_by_ids(
        conn, dispositions, project_id, list(settings.get("disposition_ids") or [])
    )
    schemas = await repo.named_by_ids(
        conn, extraction_schemas, project_id, list(settings.get("citation_schema_ids") or [])
    )
    names = [disp[i]["name"] for i in settings.get("disposition_ids") or [] if i in disp]
    defs = [
        {"title": schemas[i]["name"], **dict(schemas[i]["schema"])}
        for i in settings.get("citation_schema_ids") or []
        if i in schemas
    ]
    return names, defs
