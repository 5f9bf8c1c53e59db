"""``agentsms opt-outs list|add|remove|import|export``: the suppression list of a running
agentsms, through the SDK."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from agentsms.api.schemas import OptOut
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

optouts_app = typer.Typer(
    help="The suppression list: people no text but compliance answers reaches.",
    no_args_is_help=True,
)
PhoneArgument = Annotated[str, typer.Argument(help="The person, +country code", show_default=False)]


def register(app: typer.Typer) -> None:
    """Add ``opt-outs`` to ``app``."""
    app.add_typer(optouts_app, name="opt-outs")


def _json(entry: OptOut) -> dict[str, object]:
    return entry.model_dump(mode="json")


def _line(verb: str, entry: OptOut) -> None:
    out.print(Text(f"{verb} {entry.phone_number}", style="bold") + Text(f"  ({entry.source})"))


@optouts_app.command("list")
def list_opt_outs(
    phone_number: Annotated[str | None, typer.Option("--phone", help="Only this person")] = None,
    source: Annotated[
        str | None, typer.Option("--source", help="keyword, api, import, dashboard")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many, newest first")] = 50,
    output: OutputOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    profile: ProfileOption = None,
) -> None:
    """List the suppression list, newest first."""
    with _session(url, api_key, profile) as client:
        found = _first(
            limit,
            lambda size: client.iter_opt_outs(phone_number=phone_number, source=source, limit=size),
        )
    _print_list(
        output,
        as_json,
        found,
        title=f"{len(found)} opted out",
        columns=("phone number", "since", "source", "keyword", "to our number"),
        row=lambda entry: (
            entry.phone_number,
            _when(entry.created_at),
            entry.source,
            entry.keyword or "-",
            entry.number or "-",
        ),
    )


@optouts_app.command("add")
def add_opt_out(
    phone_number: PhoneArgument,
    keyword: Annotated[
        str | None, typer.Option("--keyword", help="What the person said, for the record")
    ] = None,
    output: OutputOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    profile: ProfileOption = None,
) -> None:
    """Opt a person out (their active conversations end)."""
    with _session(url, api_key, profile) as client:
        entry = client.add_opt_out(phone_number, keyword=keyword)
    if _emit(output, as_json, _json(entry)):
        return
    _line("opted out", entry)


@optouts_app.command("remove")
def remove_opt_out(
    phone_number: PhoneArgument,
    output: OutputOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    profile: ProfileOption = None,
) -> None:
    """Opt a person back in."""
    with _session(url, api_key, profile) as client:
        entry = client.remove_opt_out(phone_number)
    if _emit(output, as_json, _json(entry)):
        return
    _line("opted back in", entry)


@optouts_app.command("import")
def import_opt_outs(
    file: Annotated[
        Path, typer.Argument(help="A CSV file with a phone_number column, or - for stdin")
    ],
    output: OutputOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    profile: ProfileOption = None,
) -> None:
    """Add the people of a CSV file: all of them, or (one bad row) none."""
    try:
        text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        _fail(f"cannot read {file}: {error}")
    with _session(url, api_key, profile) as client:
        done = client.import_opt_outs(text)
    if _emit(output, as_json, done.model_dump(mode="json")):
        return
    out.print(f"imported {done.added} new, {done.already} already opted out")


@optouts_app.command("export")
def export_opt_outs(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (default: stdout)")
    ] = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    profile: ProfileOption = None,
) -> None:
    """Write the whole suppression list as CSV (which ``import`` reads back)."""
    with _session(url, api_key, profile) as client:
        text = client.export_opt_outs()
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    output.write_text(text, encoding="utf-8")
    out.print(f"wrote {max(len(text.splitlines()) - 1, 0)} entries to {output}")
