"""``agentsms contacts list|add|update|delete``: the address book of a running agentsms,
through the SDK."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.text import Text

from agentsms.api.schemas import Contact
from agentsms.cli.client import (
    ApiKeyOption,
    JsonOption,
    OutputOption,
    ProfileOption,
    UrlOption,
    _emit,
    _fail,
    _first,
    _print_list,
    _session,
    _when,
    out,
)
from agentsms.client import ContactFields

contacts_app = typer.Typer(
    help="The address book: people by number, with the time zone their replies are read in.",
    no_args_is_help=True,
)
ContactArgument = Annotated[str, typer.Argument(help="The contact's id (ct_...)")]
NameOption = Annotated[str | None, typer.Option("--name", help="What to call the person")]
TimezoneOption = Annotated[
    str | None,
    typer.Option(
        "--timezone", "--tz", help="IANA zone, e.g. America/Los_Angeles (before the number's)"
    ),
]
EmailOption = Annotated[str | None, typer.Option("--email", help="Their email address")]
NotesOption = Annotated[str | None, typer.Option("--notes", help="Free text")]
MetadataOption = Annotated[
    str | None, typer.Option("--metadata", help='A JSON object, e.g. \'{"customer": "c-1"}\'')
]
CLEARABLE = ("timezone", "email", "notes", "metadata")


def register(app: typer.Typer) -> None:
    """Add ``contacts`` to ``app``."""
    app.add_typer(contacts_app, name="contacts")


def _json(contact: Contact) -> dict[str, object]:
    return contact.model_dump(mode="json")


def _metadata(raw: str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as error:
        _fail(f"--metadata is not JSON: {error.msg}")
    if not isinstance(value, dict):
        _fail("--metadata must be a JSON object")
    return value


def _line(verb: str, contact: Contact) -> None:
    zone = contact.timezone or "zone from the number"
    out.print(
        Text(f"{verb} {contact.id}", style="bold")
        + Text(f"  {contact.name} {contact.phone_number} ({zone})")
    )


@contacts_app.command("list")
def list_contacts(
    phone_number: Annotated[
        str | None, typer.Option("--phone", help="Only this person's contact")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many, newest first")] = 50,
    output: OutputOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    profile: ProfileOption = None,
) -> None:
    """List the contacts, newest first."""
    with _session(url, api_key, profile) as client:
        found = _first(
            limit, lambda size: client.iter_contacts(phone_number=phone_number, limit=size)
        )
    _print_list(
        output,
        as_json,
        found,
        title=f"{len(found)} contacts",
        columns=("id", "name", "phone number", "time zone", "email", "updated"),
        row=lambda contact: (
            contact.id,
            contact.name,
            contact.phone_number,
            contact.timezone or "-",
            contact.email or "-",
            _when(contact.updated_at),
        ),
    )


@contacts_app.command("add")
def add_contact(
    phone_number: Annotated[str, typer.Argument(help="The person, +country code")],
    name: Annotated[str, typer.Argument(help="What to call the person")],
    timezone: TimezoneOption = None,
    email: EmailOption = None,
    notes: NotesOption = None,
    metadata: MetadataOption = None,
    output: OutputOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    profile: ProfileOption = None,
) -> None:
    """Add a person to the address book."""
    extra = _metadata(metadata)
    with _session(url, api_key, profile) as client:
        contact = client.create_contact(
            phone_number, name, timezone=timezone, email=email, notes=notes, metadata=extra
        )
    if _emit(output, as_json, _json(contact)):
        return
    _line("added", contact)


@contacts_app.command("update")
def update_contact(
    contact_id: ContactArgument,
    phone_number: Annotated[str | None, typer.Option("--phone", help="A new number")] = None,
    name: NameOption = None,
    timezone: TimezoneOption = None,
    email: EmailOption = None,
    notes: NotesOption = None,
    metadata: MetadataOption = None,
    clear: Annotated[
        list[str] | None,
        typer.Option("--clear", help=f"Empty a field: {', '.join(CLEARABLE)} (repeatable)"),
    ] = None,
    output: OutputOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    profile: ProfileOption = None,
) -> None:
    """Change the fields given; --clear timezone reads the person's zone from their number."""
    changes: ContactFields = {}
    given = {
        "phone_number": phone_number,
        "name": name,
        "timezone": timezone,
        "email": email,
        "notes": notes,
        "metadata": _metadata(metadata),
    }
    for key, value in given.items():
        if value is not None:
            changes[key] = value  # type: ignore[literal-required]
    for key in clear or ():
        if key not in CLEARABLE:
            _fail(f"--clear {key}: only {', '.join(CLEARABLE)} can be emptied")
        if key in changes:
            _fail(f"--clear {key} and --{key} together: choose one")
        changes[key] = None  # type: ignore[literal-required]
    if not changes:
        _fail("nothing to change: give --name, --phone, --timezone, ... or --clear")
    with _session(url, api_key, profile) as client:
        contact = client.update_contact(contact_id, **changes)
    if _emit(output, as_json, _json(contact)):
        return
    _line("updated", contact)


@contacts_app.command("delete")
def delete_contact(
    contact_id: ContactArgument,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    profile: ProfileOption = None,
) -> None:
    """Remove a contact from the address book (its messages stay)."""
    with _session(url, api_key, profile) as client:
        client.delete_contact(contact_id)
    out.print(Text(f"deleted {contact_id}", style="bold"))
