"""``/v1/contacts``: the project's address book (the people it texts, by number, with their
time zone)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from agentsms.api import render, schemas
from agentsms.api.deps import CurrentProject, State
from agentsms.core import address_book as service

router = APIRouter(prefix="/v1/contacts", tags=["contacts"])
_PROBLEMS: dict[int | str, dict[str, object]] = {
    404: {"model": schemas.Problem},
    422: {"model": schemas.Problem},
}
_WRITE_PROBLEMS: dict[int | str, dict[str, object]] = {
    **_PROBLEMS,
    409: {"model": schemas.Problem},
}


@router.get("", response_model=schemas.ContactPage, summary="List contacts, newest first")
async def list_contacts(
    project: CurrentProject,
    state: State,
    phone_number: Annotated[str | None, Query(description="Only this person's contact")] = None,
    cursor: str | None = Query(default=None, description="next_cursor of the previous page"),
    limit: int = Query(default=50, ge=1, le=500),
) -> schemas.ContactPage:
    """The project's contacts, newest first; ``phone_number`` (any format) finds one person,
    ``next_cursor`` pages on."""
    async with state.db.read() as conn:
        rows, next_cursor = await service.page_contacts(
            conn, project.id, phone_number=phone_number, cursor=cursor, limit=limit
        )
    return schemas.ContactPage(data=[render.contact(r) for r in rows], next_cursor=next_cursor)


@router.post(
    "",
    status_code=201,
    response_model=schemas.Contact,
    responses=_WRITE_PROBLEMS,
    summary="Add a contact",
)
async def create_contact(
    body: schemas.ContactCreate, project: CurrentProject, state: State
) -> schemas.Contact:
    """One contact per number (``409 contact_exists`` otherwise). ``timezone``, an IANA name,
    is the zone the person's replies are read in and their quiet hours kept in."""
    spec = service.ContactInput(
        phone_number=body.phone_number,
        name=body.name,
        email=body.email,
        notes=body.notes,
        timezone=body.timezone,
        metadata=body.metadata,
    )
    async with state.db.write() as conn:
        row = await service.create_contact(conn, project.id, spec)
    return render.contact(row)


@router.get(
    "/{contact_id}", response_model=schemas.Contact, responses=_PROBLEMS, summary="Get a contact"
)
async def get_contact(contact_id: str, project: CurrentProject, state: State) -> schemas.Contact:
    """The contact; ``404`` when the project has no such contact."""
    async with state.db.read() as conn:
        return render.contact(await service.get_contact(conn, project.id, contact_id))


@router.patch(
    "/{contact_id}",
    response_model=schemas.Contact,
    responses=_WRITE_PROBLEMS,
    summary="Change a contact",
)
async def update_contact(
    contact_id: str, body: schemas.ContactUpdate, project: CurrentProject, state: State
) -> schemas.Contact:
    """Only the fields given change; ``null`` empties ``email``, ``notes``, ``timezone`` or
    ``metadata``."""
    given = body.model_fields_set
    spec = service.ContactInput(
        phone_number=body.phone_number,
        name=body.name,
        email=body.email,
        notes=body.notes,
        timezone=body.timezone,
        metadata=body.metadata,
        cleared=frozenset(name for name in given if getattr(body, name) is None),
    )
    async with state.db.write() as conn:
        row = await service.update_contact(conn, project.id, contact_id, spec)
    return render.contact(row)


@router.delete("/{contact_id}", status_code=204, responses=_PROBLEMS, summary="Delete a contact")
async def delete_contact(contact_id: str, project: CurrentProject, state: State) -> Response:
    """``204``; messages to and from the number stay. ``404`` when unknown."""
    async with state.db.write() as conn:
        await service.delete_contact(conn, project.id, contact_id)
    return Response(status_code=204)
