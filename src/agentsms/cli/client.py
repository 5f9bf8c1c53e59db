"""CLI commands that talk to a running agentsms over HTTP (send, messages, numbers, tail).

Every command takes ``--url`` (``AGENTSMS_URL``) and ``--api-key`` (``AGENTSMS_API_KEY``), so
the same commands work against a server on this machine or a remote one.

Exit codes: 0 success; 1 an API error, a bad argument or an unreachable server; 3 a followed
message (or batch) ended in a final status other than ``delivered``; 130 interrupted.
"""

from __future__ import annotations

import csv
import json
import re
import sys
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from itertools import islice
from pathlib import Path
from typing import Annotated, Any, Final, NoReturn, TypeVar

import anyio
import typer
from pydantic import BaseModel
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from agentsms.api.schemas import Batch, Message, MessageEvent
from agentsms.client import (
    DEFAULT_URL,
    FINAL_STATUSES,
    ApiError,
    Client,
    ConnectionFailed,
    FieldProblem,
    follow_message,
    new_idempotency_key,
)
from agentsms.profiles import ProfileError, find_profile

EXIT_ERROR: Final = 1
EXIT_NOT_DELIVERED: Final = 3
EXIT_INTERRUPTED: Final = 130
BATCH_CHUNK: Final = 10_000
MAX_FIELD_ERRORS: Final = 20
MAX_PAGE: Final = 500
SUCCESS_STATUSES: Final = frozenset({"delivered", "received"})

NUMBER_COLUMNS: Final = ("to", "phone", "number")
RESERVED_COLUMNS: Final = frozenset({*NUMBER_COLUMNS, "body", "send_at", "external_id"})

STATUS_STYLES: Final = {
    "scheduled": "cyan",
    "queued": "cyan",
    "sending": "yellow",
    "sent": "blue",
    "delivered": "green",
    "received": "green",
    "undelivered": "red",
    "failed": "red",
    "canceled": "magenta",
    "expired": "magenta",
}
STATUS_ORDER: Final = tuple(STATUS_STYLES)

T = TypeVar("T")
Model = TypeVar("Model", bound=BaseModel)


class Channel(StrEnum):
    """The channels a message can go over."""

    sms = "sms"
    mms = "mms"
    whatsapp = "whatsapp"
    imessage = "imessage"


UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="AGENTSMS_URL",
        help=f"Base URL of the agentsms API [default: the profile's, else {DEFAULT_URL}]",
        show_default=False,
    ),
]
ApiKeyOption = Annotated[
    str | None,
    typer.Option(
        "--api-key", envvar="AGENTSMS_API_KEY", help="Project API key (ask_…)", show_default=False
    ),
]
ProfileOption = Annotated[
    str | None,
    typer.Option(
        "--profile",
        "-p",
        envvar="AGENTSMS_PROFILE",
        help="A profile saved by `agentsms login` [default: the default profile]",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Same as --output json")]


class Output(StrEnum):
    """How list and show commands print what they found."""

    table = "table"
    json = "json"
    csv = "csv"


OutputOption = Annotated[
    Output | None,
    typer.Option("--output", "-o", help="table (default), json or csv", show_default=False),
]

messages_app = typer.Typer(help="List and inspect messages.", no_args_is_help=True)
numbers_app = typer.Typer(help="The project's sender numbers.", no_args_is_help=True)
accounts_app = typer.Typer(
    help="The project's carrier accounts (Twilio, Telnyx, Vonage, Plivo, SMPP).",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add the HTTP client commands to ``app``."""
    app.command("send")(send)
    app.command("tail")(tail)
    app.command("mcp")(mcp)
    app.add_typer(messages_app, name="messages")
    app.add_typer(numbers_app, name="numbers")
    app.add_typer(accounts_app, name="accounts")


# -- output ---------------------------------------------------------------------------


def _console(*, stderr: bool = False) -> Console:
    console = Console(stderr=stderr, highlight=False)
    if not console.is_terminal:
        # Piped output: do not wrap ids and bodies at 80 columns.
        console = Console(stderr=stderr, highlight=False, width=max(console.width, 200))
    return console


out = _console()
err = _console(stderr=True)


def _clock(moment: datetime) -> str:
    """Local wall-clock time with milliseconds."""
    return moment.astimezone().strftime("%H:%M:%S.%f")[:-3]


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _status(status: str, width: int = 0) -> Text:
    return Text(status.ljust(width), style=STATUS_STYLES.get(status, ""))


def _details(data: dict[str, Any]) -> str:
    return "  ".join(f"{key}={value}" for key, value in data.items() if value not in (None, ""))


def _fail(message: str, fields: Sequence[FieldProblem] = ()) -> NoReturn:
    err.print(Text("error: ", style="bold red") + Text(message))
    for problem in fields[:MAX_FIELD_ERRORS]:
        err.print(Text(f"  {problem.field}: ", style="bold") + Text(problem.message))
    if len(fields) > MAX_FIELD_ERRORS:
        err.print(f"  … and {len(fields) - MAX_FIELD_ERRORS} more")
    raise typer.Exit(EXIT_ERROR)


def _credentials(url: str | None, api_key: str | None, profile: str | None) -> tuple[str, str]:
    """The server URL and API key: options and environment first, then the profile."""
    try:
        saved = find_profile(profile)
    except ProfileError as error:
        _fail(str(error))
    url = url or (saved.url if saved else DEFAULT_URL)
    api_key = api_key or (saved.api_key if saved else None)
    if not api_key:
        _fail("no API key: run `agentsms login`, pass --api-key or set AGENTSMS_API_KEY")
    return url, api_key


def _emit(output: Output | None, as_json: bool, value: Any) -> bool:
    """Print ``value`` as JSON or CSV when asked; False when the caller prints its table."""
    chosen = Output.json if as_json else (output or Output.table)
    if chosen is Output.json:
        _dump(value)
    elif chosen is Output.csv:
        _write_csv(value if isinstance(value, list) else [value])
    return chosen is not Output.table


def _plural(count: int, noun: str) -> str:
    """``1 message``, ``2 messages``: a table's title."""
    return f"{count} {noun}{'s' if count != 1 else ''}"


def _table(
    title: str, columns: Sequence[str], rows: Iterable[Sequence[str | Text]], wrap: Collection[str]
) -> Table:
    """A table of ``rows``; only the ``wrap`` columns may wrap, the others are cut short."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column, no_wrap=column not in wrap, overflow="ellipsis")
    for row in rows:
        table.add_row(*row)
    return table


def _print_list(
    output: Output | None,
    as_json: bool,
    items: Sequence[Model],
    *,
    title: str,
    columns: Sequence[str],
    row: Callable[[Model], Sequence[str | Text]],
    wrap: Collection[str] = (),
    by_alias: bool = False,
) -> None:
    """Print what a list command found: each item's JSON (its fields' aliases if ``by_alias``)
    as JSON or CSV when asked, else a table of ``columns`` with one ``row`` an item."""
    records = [item.model_dump(mode="json", by_alias=by_alias) for item in items]
    if _emit(output, as_json, records):
        return
    out.print(_table(title, columns, map(row, items), wrap))


def _first(limit: int, listing: Callable[[int], Iterator[T]]) -> list[T]:
    """The first ``limit`` items of an SDK ``iter_*`` listing; ``listing`` takes the page size
    (the API serves at most ``MAX_PAGE`` a page)."""
    return list(islice(listing(min(limit, MAX_PAGE)), limit))


def _write_csv(records: Sequence[Any]) -> None:
    """One row per record; nested values as JSON, so every cell is one field."""
    columns = list(dict.fromkeys(key for record in records for key in record))
    writer = csv.DictWriter(sys.stdout, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for record in records:
        writer.writerow(
            {
                key: json.dumps(value, default=str) if isinstance(value, dict | list) else value
                for key, value in record.items()
            }
        )
    sys.stdout.flush()


@contextmanager
def _session(url: str | None, api_key: str | None, profile: str | None) -> Iterator[Client]:
    """A client whose API and connection errors end the command with a clear message."""
    url, api_key = _credentials(url, api_key, profile)
    client = Client(url, api_key)
    try:
        yield client
    except ApiError as error:
        # A validation detail just joins the field errors: then the title reads better.
        restated = error.errors and all(
            f"{e.field}: {e.message}" in error.detail for e in error.errors
        )
        headline = error.title if restated else error.detail
        _fail(
            f"{_in_cli_terms(headline)} ({error.status} {error.code})",
            [FieldProblem(e.field, _in_cli_terms(e.message)) for e in error.errors],
        )
    except ConnectionFailed as error:
        _fail(
            f"cannot reach agentsms at {error.url} ({error.reason}). "
            "Is the server running? Set --url or AGENTSMS_URL."
        )
    finally:
        client.close()


CLI_TERMS: Final = {
    "POST /v1/provider-accounts": "`agentsms accounts add`",
    "GET /v1/provider-accounts": "`agentsms accounts list`",
    "POST /v1/numbers": "`agentsms numbers add`",
    "GET /v1/numbers": "`agentsms numbers list`",
}


def _in_cli_terms(text: str) -> str:
    """An API message with the API calls it names put as the CLI commands that make them."""
    for call, command in CLI_TERMS.items():
        text = text.replace(call, command)
    return text


def _dump(value: Any) -> None:
    """Print JSON for scripts (no rich markup, no wrapping)."""
    print(json.dumps(value, indent=2, default=str), flush=True)


def _message_json(message: Message) -> dict[str, Any]:
    return message.model_dump(mode="json", by_alias=True)


# -- argument parsing -----------------------------------------------------------------

_RELATIVE: Final = re.compile(r"^\+(\d+(?:\.\d+)?)([smhd])$")
_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_moment(value: str) -> datetime | None:
    """``+30s``/``+5m``/``+2h``/``+1d``, unix seconds or ISO 8601 with a zone; else None."""
    text = value.strip()
    relative = _RELATIVE.match(text)
    if relative:
        seconds = float(relative.group(1)) * _UNITS[relative.group(2)]
        return datetime.now(UTC) + timedelta(seconds=seconds)
    if text.replace(".", "", 1).isdigit():
        return datetime.fromtimestamp(float(text), UTC)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _send_at(value: str | None) -> str | None:
    """What to send as ``send_at``: relative times resolved; anything else for the API to judge."""
    if value is None:
        return None
    moment = parse_moment(value) if value.strip().startswith("+") else None
    return moment.isoformat() if moment is not None else value


def _metadata(pairs: Sequence[str] | None) -> dict[str, str]:
    result: dict[str, str] = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected key=value, got {pair!r}", param_hint="--metadata")
        result[key.strip()] = value
    return result


# -- send -----------------------------------------------------------------------------


def send(
    text: Annotated[
        str | None, typer.Argument(help="The message text (or --body)", show_default=False)
    ] = None,
    to: Annotated[
        str | None, typer.Option("--to", help="Recipient in E.164, e.g. +14155552671")
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            help="CSV of recipients: a to/phone/number column; other columns are {{variables}}",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ] = None,
    body: Annotated[
        str | None, typer.Option("--body", help="Text; may use {{variable}} placeholders")
    ] = None,
    from_: Annotated[
        str | None, typer.Option("--from", help="Sender: one of the project's numbers")
    ] = None,
    media_url: Annotated[
        list[str] | None, typer.Option("--media-url", help="Media to attach (repeatable)")
    ] = None,
    channel: Annotated[Channel | None, typer.Option("--channel", help="Channel")] = None,
    send_at: Annotated[
        str | None,
        typer.Option("--send-at", help="ISO 8601 with zone, unix seconds, or +30s/+5m/+2h/+1d"),
    ] = None,
    spacing_seconds: Annotated[
        float | None,
        typer.Option("--spacing-seconds", min=0, help="With --file: stagger sends by this much"),
    ] = None,
    metadata: Annotated[
        list[str] | None, typer.Option("--metadata", help="key=value, echoed back (repeatable)")
    ] = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option("--idempotency-key", help="Replays instead of resending (default: random)"),
    ] = None,
    no_follow: Annotated[
        bool, typer.Option("--no-follow", help="Print the id(s) and return at once")
    ] = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    profile: ProfileOption = None,
) -> None:
    """Send a text to one number (--to) or to everyone in a CSV file (--file), then follow it.

    Follows delivery live until every message is final; exits 3 if any was not delivered.
    """
    if (to is None) == (file is None):
        raise typer.BadParameter("give exactly one of --to or --file", param_hint="--to/--file")
    if text is not None and body is not None:
        raise typer.BadParameter("give the text once: as an argument or as --body")
    extra = _metadata(metadata)
    channel_name = channel.value if channel is not None else None
    with _session(url, api_key, profile) as client:
        if to is not None:
            if spacing_seconds is not None:
                raise typer.BadParameter("only with --file", param_hint="--spacing-seconds")
            code = _send_one(
                client,
                to,
                text if text is not None else body,
                from_=from_,
                media_urls=media_url or [],
                channel=channel_name,
                send_at=_send_at(send_at),
                metadata=extra,
                idempotency_key=idempotency_key,
                follow=not no_follow,
            )
        else:
            assert file is not None
            code = _send_file(
                client,
                file,
                text if text is not None else body,
                from_=from_,
                media_urls=media_url or [],
                channel=channel_name,
                send_at=send_at,
                spacing_seconds=spacing_seconds,
                metadata=extra,
                idempotency_key=idempotency_key,
                follow=not no_follow,
            )
    if code:
        raise typer.Exit(code)


def _send_one(
    client: Client,
    to: str,
    body: str | None,
    *,
    from_: str | None,
    media_urls: list[str],
    channel: str | None,
    send_at: str | None,
    metadata: dict[str, str],
    idempotency_key: str | None,
    follow: bool,
) -> int:
    message = client.send_message(
        to,
        body,
        from_=from_,
        media_urls=media_urls,
        channel=channel,
        send_at=send_at,
        metadata=metadata,
        idempotency_key=idempotency_key,
    )
    out.print(message.id, soft_wrap=True)
    segments = f"{message.segments} segment{'s' if message.segments != 1 else ''}"
    summary = (
        f"to {message.to} from {message.from_} · {message.channel} · {segments} "
        f"({message.encoding}) · est. {message.price_estimate} {message.currency}"
    )
    if message.send_at is not None:
        summary += f" · send at {_when(message.send_at)}"
    out.print(Text(summary, style="dim"), soft_wrap=True)
    if not follow:
        return 0
    try:
        final = _follow(client, message)
    except KeyboardInterrupt:
        err.print(f"stopped following; {message.id} carries on at the server")
        return EXIT_INTERRUPTED
    return 0 if final in SUCCESS_STATUSES else EXIT_NOT_DELIVERED


def _follow(client: Client, message: Message) -> str:
    """Print each status change of ``message`` until it is final; return the final status."""
    last: str | None = None
    final_event: MessageEvent | None = None
    for event in follow_message(client, message.id):
        if event.status == last:
            continue
        last = event.status
        details = _details(event.data)
        line = Text(f"{_clock(event.created_at)}  ") + _status(event.status, 12 if details else 0)
        line += Text(details)
        out.print(line, soft_wrap=True)
        final_event = event
    assert final_event is not None
    took = (final_event.created_at - message.created_at).total_seconds()
    out.print(
        Text(f"{final_event.status} after {took:.2f} s", style=STATUS_STYLES[final_event.status]),
        soft_wrap=True,
    )
    return final_event.status


# -- send --file ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CsvRecipient:
    """One CSV row as a batch recipient, with the line it came from (for error messages)."""

    line: int
    recipient: dict[str, Any]


def read_recipients(path: Path) -> list[CsvRecipient]:
    """Read a recipients CSV: ``to``/``phone``/``number``, optional ``body``/``send_at``/
    ``external_id``; every other column becomes one of the row's ``variables``."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        headers = [name for name in (reader.fieldnames or []) if name is not None]
        by_key = {name.strip().lower(): name for name in headers}
        number_column = next((by_key[c] for c in NUMBER_COLUMNS if c in by_key), None)
        if number_column is None:
            _fail(
                f"{path}: no recipient column; name one of {', '.join(NUMBER_COLUMNS)} "
                f"(found: {', '.join(headers) or 'no header'})"
            )
        optional = {key: by_key[key] for key in ("body", "send_at", "external_id") if key in by_key}
        variables = [
            name for name in headers if name.strip().lower() not in RESERVED_COLUMNS and name
        ]
        rows: list[CsvRecipient] = []
        for row in reader:
            values = {key: (value or "").strip() for key, value in row.items() if key is not None}
            if not any(values.values()):
                continue
            recipient: dict[str, Any] = {"to": values.get(number_column, "")}
            for key, column in optional.items():
                if values.get(column):
                    recipient[key] = values[column]
            if variables:
                recipient["variables"] = {name.strip(): values.get(name, "") for name in variables}
            rows.append(CsvRecipient(reader.line_num, recipient))
    return rows


_RECIPIENT_FIELD: Final = re.compile(r"^recipients\[(\d+)\]")


def _locate(errors: list[FieldProblem], chunk: Sequence[CsvRecipient], path: Path) -> None:
    """Name the CSV line beside each ``recipients[i]`` field error."""
    for position, problem in enumerate(errors):
        match = _RECIPIENT_FIELD.match(problem.field)
        if match and int(match.group(1)) < len(chunk):
            line = chunk[int(match.group(1))].line
            errors[position] = FieldProblem(
                f"{problem.field} ({path.name} line {line})", problem.message
            )


def _send_file(
    client: Client,
    path: Path,
    body: str | None,
    *,
    from_: str | None,
    media_urls: list[str],
    channel: str | None,
    send_at: str | None,
    spacing_seconds: float | None,
    metadata: dict[str, str],
    idempotency_key: str | None,
    follow: bool,
) -> int:
    rows = read_recipients(path)
    if not rows:
        _fail(f"{path}: no recipients")
    chunks = [rows[i : i + BATCH_CHUNK] for i in range(0, len(rows), BATCH_CHUNK)]
    base: datetime | None = None
    if spacing_seconds and len(chunks) > 1:
        base = parse_moment(send_at) if send_at else datetime.now(UTC)
        if base is None:
            _fail(f"--send-at {send_at!r}: not an ISO 8601 time with zone, unix seconds or +30s")
    key = idempotency_key or new_idempotency_key()
    batches: list[Batch] = []
    offset = 0
    for number, chunk in enumerate(chunks, start=1):
        chunk_send_at = _send_at(send_at)
        if base is not None and spacing_seconds:
            chunk_send_at = (base + timedelta(seconds=spacing_seconds * offset)).isoformat()
        try:
            batch = client.create_batch(
                [row.recipient for row in chunk],
                body=body,
                from_=from_,
                media_urls=media_urls,
                channel=channel,
                send_at=chunk_send_at,
                spacing_seconds=spacing_seconds,
                metadata=metadata,
                idempotency_key=key if len(chunks) == 1 else f"{key}:{number}",
            )
        except ApiError as error:
            _locate(error.errors, chunk, path)
            if batches:
                err.print(
                    f"{sum(b.total for b in batches)} recipients were accepted before this "
                    f"error, in {', '.join(b.id for b in batches)}"
                )
            raise
        batches.append(batch)
        offset += len(chunk)
        out.print(f"{batch.id}: {batch.total} messages accepted", soft_wrap=True)
    if not follow:
        return 0
    try:
        counts = _follow_batches(client, [b.id for b in batches], sum(b.total for b in batches))
    except KeyboardInterrupt:
        err.print("stopped following; the batch carries on at the server")
        return EXIT_INTERRUPTED
    out.print(Text("done: ") + _counts_text(counts), soft_wrap=True)
    delivered = sum(n for status, n in counts.items() if status in SUCCESS_STATUSES)
    return 0 if delivered == sum(counts.values()) else EXIT_NOT_DELIVERED


def _counts_text(counts: dict[str, int]) -> Text:
    known = [s for s in STATUS_ORDER if counts.get(s)]
    others = sorted(s for s in counts if s not in STATUS_STYLES and counts[s])
    text = Text()
    for index, status in enumerate([*known, *others]):
        if index:
            text += Text(" · ", style="dim")
        text += Text(f"{status} {counts[status]}", style=STATUS_STYLES.get(status, ""))
    return text


def _follow_batches(
    client: Client, batch_ids: list[str], total: int, interval: float = 0.5
) -> dict[str, int]:
    """Draw a progress bar from ``GET /v1/batches/{id}`` until every message is final."""
    latest: dict[str, Batch] = {}
    pending = list(batch_ids)
    progress = Progress(
        TextColumn("delivering"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
        console=out,
    )
    with progress:
        task = progress.add_task("delivering", total=total, counts="")
        while True:
            for batch_id in pending:
                latest[batch_id] = client.get_batch(batch_id)
            pending = [b for b in pending if latest[b].completed < latest[b].total]
            counts: dict[str, int] = {}
            for batch in latest.values():
                for status, number in batch.counts.items():
                    counts[status] = counts.get(status, 0) + number
            completed = sum(batch.completed for batch in latest.values())
            progress.update(task, completed=completed, counts=_counts_text(counts).markup)
            if not pending:
                return counts
            time.sleep(interval)


# -- messages -------------------------------------------------------------------------


@messages_app.command("list")
def list_messages(
    status: Annotated[str | None, typer.Option("--status", help="e.g. delivered")] = None,
    to: Annotated[str | None, typer.Option("--to", help="Recipient number")] = None,
    batch_id: Annotated[str | None, typer.Option("--batch-id", help="Only this batch")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many, newest first")] = 20,
    output: OutputOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    profile: ProfileOption = None,
) -> None:
    """List messages, newest first."""
    with _session(url, api_key, profile) as client:
        found = _first(
            limit,
            lambda size: client.iter_messages(status=status, to=to, batch_id=batch_id, limit=size),
        )
    _print_list(
        output,
        as_json,
        found,
        title=_plural(len(found), "message"),
        columns=("id", "created", "to", "from", "status", "seg", "body"),
        row=lambda message: (
            message.id,
            _when(message.created_at),
            message.to,
            message.from_,
            _status(message.status),
            str(message.segments),
            Text(_shorten(message.body, 60).replace("\n", " ")),
        ),
        wrap={"body"},
        by_alias=True,
    )


def _shorten(text: str, most: int) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"


@messages_app.command("show")
def show_message(
    message_id: Annotated[str, typer.Argument(help="msg_…", show_default=False)],
    output: OutputOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    profile: ProfileOption = None,
) -> None:
    """Show one message and its timeline of status changes."""
    with _session(url, api_key, profile) as client:
        message = client.get_message(message_id)
        events = client.message_events(message_id)
    if _emit(
        output,
        as_json,
        {
            "message": _message_json(message),
            "events": [e.model_dump(mode="json") for e in events],
        },
    ):
        return
    fields = Table.grid(padding=(0, 2))
    fields.add_column(style="bold")
    fields.add_column()
    values: list[tuple[str, str | Text]] = [
        ("id", message.id),
        ("status", _status(message.status)),
        ("direction", message.direction),
        ("to", message.to),
        ("from", message.from_),
        ("channel", message.channel),
        ("body", Text(message.body)),
        ("segments", f"{message.segments} ({message.encoding})"),
        ("price estimate", f"{message.price_estimate} {message.currency}"),
        ("created", _when(message.created_at)),
    ]
    optional: list[tuple[str, object]] = [
        ("media", ", ".join(message.media_urls)),
        ("batch", message.batch_id),
        ("conversation", message.conversation_id),
        ("send at", message.send_at and _when(message.send_at)),
        ("sent", message.sent_at and _when(message.sent_at)),
        ("delivered", message.delivered_at and _when(message.delivered_at)),
        ("expires", message.expires_at and _when(message.expires_at)),
        ("error", message.error_code and f"{message.error_code} {message.error_message or ''}"),
        ("provider", f"{message.provider} {message.provider_message_id or ''}".strip()),
        ("external id", message.external_id),
        ("metadata", message.metadata and json.dumps(message.metadata)),
        ("attempts", message.attempts or None),
    ]
    values += [(name, Text(str(value))) for name, value in optional if value]
    for name, value in values:
        fields.add_row(name, value)
    out.print(fields)
    timeline = Table(title="timeline")
    for column in ("time", "event", "status", "details"):
        timeline.add_column(column)
    for event in events:
        timeline.add_row(
            _when(event.created_at) + _clock(event.created_at)[8:],
            event.type,
            _status(event.status),
            Text(_details(event.data)),
        )
    out.print(timeline)


@messages_app.command("cancel")
def cancel_message(
    message_id: Annotated[str, typer.Argument(help="msg_…", show_default=False)],
    output: OutputOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    profile: ProfileOption = None,
) -> None:
    """Cancel a scheduled or queued message (one already handed to a carrier cannot be)."""
    with _session(url, api_key, profile) as client:
        message = client.cancel_message(message_id)
    if _emit(output, as_json, _message_json(message)):
        return
    out.print(f"{message.id}: ", _status(message.status))


# -- numbers --------------------------------------------------------------------------


@numbers_app.command("add")
def add_number(
    number: Annotated[
        str, typer.Option("--number", help="The number in E.164", show_default=False)
    ],
    provider: Annotated[
        str | None,
        typer.Option("--provider", help="simulator, twilio, telnyx, vonage, plivo or smpp"),
    ] = None,
    account: Annotated[
        str | None,
        typer.Option("--account", help="The carrier account (acct_…) the number belongs to"),
    ] = None,
    capability: Annotated[
        list[Channel] | None,
        typer.Option("--capability", help="sms, mms, whatsapp, imessage (repeatable)"),
    ] = None,
    throughput: Annotated[
        float | None,
        typer.Option("--throughput", min=0, help="Messages per second (server default: 1)"),
    ] = None,
    price: Annotated[
        str | None, typer.Option("--price", help="Price per segment, e.g. 0.0079")
    ] = None,
    currency: Annotated[str | None, typer.Option("--currency", help="e.g. USD")] = None,
    output: OutputOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    profile: ProfileOption = None,
) -> None:
    """Add a sender number to the project's pool."""
    price_value: Decimal | None = None
    if price is not None:
        try:
            price_value = Decimal(price)
        except InvalidOperation:
            raise typer.BadParameter(f"not a number: {price!r}", param_hint="--price") from None
    with _session(url, api_key, profile) as client:
        added = client.add_number(
            number,
            provider=provider,
            provider_account_id=account,
            capabilities=[c.value for c in capability] if capability else None,
            throughput_mps=throughput,
            price_per_segment=price_value,
            currency=currency,
        )
    if _emit(output, as_json, added.model_dump(mode="json")):
        return
    out.print(
        f"added {added.number} ({added.id}): {added.provider}, "
        f"{', '.join(added.capabilities)}, {added.throughput_mps:g} msg/s, "
        f"{added.price_per_segment} {added.currency}/segment",
        soft_wrap=True,
    )
    defaulted = [
        name
        for name, given in (("--capability", capability), ("--throughput", throughput))
        if not given
    ]
    if defaulted:
        out.print(
            f"(chosen by default: {', '.join(added.capabilities)} at "
            f"{added.throughput_mps:g} msg/s, a carrier long code's; set {' and '.join(defaulted)} "
            "to choose)",
            soft_wrap=True,
        )
    if added.callback_url:
        out.print(
            "In the carrier's console, set the messaging webhook (inbound and status) of "
            f"this number to:\n  {added.callback_url}",
            soft_wrap=True,
        )


@numbers_app.command("list")
def list_numbers(
    output: OutputOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    profile: ProfileOption = None,
) -> None:
    """List the project's sender numbers."""
    with _session(url, api_key, profile) as client:
        numbers = client.list_numbers()
    _print_list(
        output,
        as_json,
        numbers,
        title=_plural(len(numbers), "number"),
        columns=("id", "number", "provider", "country", "capabilities", "msg/s", "price/seg"),
        row=lambda item: (
            item.id,
            item.number,
            item.provider,
            item.country or "-",
            ", ".join(item.capabilities),
            f"{item.throughput_mps:g}",
            f"{item.price_per_segment} {item.currency}",
        ),
    )


@numbers_app.command("delete")
def delete_number(
    number_id: Annotated[
        str, typer.Argument(help="num_… or the number in E.164", show_default=False)
    ],
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    profile: ProfileOption = None,
) -> None:
    """Remove a sender number from the project's pool."""
    with _session(url, api_key, profile) as client:
        if not number_id.startswith("num_"):
            found = [n for n in client.list_numbers() if n.number == number_id]
            if not found:
                _fail(f"{number_id} is not a number of this project (see `agentsms numbers list`)")
            number_id = found[0].id
        client.delete_number(number_id)
    out.print(f"deleted {number_id}")


# -- accounts -------------------------------------------------------------------------


def parse_credentials(pairs: Sequence[str], file: Path | None) -> dict[str, str]:
    """``KEY=VALUE`` pairs (``KEY=@path`` reads the value from a file, e.g. a PEM key) over
    an optional JSON file of the same keys."""
    credentials: dict[str, str] = {}
    if file is not None:
        try:
            loaded = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise typer.BadParameter(str(error), param_hint="--credentials-file") from None
        if not isinstance(loaded, dict) or not all(isinstance(v, str) for v in loaded.values()):
            raise typer.BadParameter(
                "must be a JSON object of strings", param_hint="--credentials-file"
            )
        credentials.update(loaded)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {key!r}", param_hint="--credential")
        if value.startswith("@"):
            try:
                value = Path(value[1:]).read_text(encoding="utf-8")
            except OSError as error:
                raise typer.BadParameter(str(error), param_hint="--credential") from None
        credentials[key.strip()] = value
    return credentials


@accounts_app.command("add")
def add_account(
    provider: Annotated[
        str,
        typer.Option(
            "--provider", help="twilio, telnyx, vonage, plivo or smpp", show_default=False
        ),
    ],
    name: Annotated[str, typer.Option("--name", help="A name for the account")] = "default",
    credential: Annotated[
        list[str] | None,
        typer.Option(
            "--credential",
            help="KEY=VALUE, or KEY=@file to read the value (repeatable), e.g. "
            "account_sid=AC… auth_token=…",
        ),
    ] = None,
    credentials_file: Annotated[
        Path | None,
        typer.Option("--credentials-file", help="A JSON object of credentials"),
    ] = None,
    api_base_url: Annotated[
        str | None,
        typer.Option("--api-base-url", help="Default: the carrier's public API"),
    ] = None,
    output: OutputOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    profile: ProfileOption = None,
) -> None:
    """Add a carrier account; agentsms checks the credentials with the carrier first."""
    credentials = parse_credentials(credential or [], credentials_file)
    with _session(url, api_key, profile) as client:
        added = client.add_provider_account(provider, name, credentials, api_base_url=api_base_url)
    if _emit(output, as_json, added.model_dump(mode="json")):
        return
    out.print(
        f"added {added.provider} account {added.id} ({added.name}); credentials set: "
        f"{', '.join(added.credentials_set)}",
        soft_wrap=True,
    )
    if added.callback_url:
        out.print(
            f"callback URL (inbound texts and status):\n  {added.callback_url}", soft_wrap=True
        )
    else:
        out.print("inbound texts and status reports come over the carrier's own session")


@accounts_app.command("list")
def list_accounts(
    output: OutputOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    profile: ProfileOption = None,
) -> None:
    """List the project's carrier accounts (credentials are never shown)."""
    with _session(url, api_key, profile) as client:
        accounts = client.list_provider_accounts()
    _print_list(
        output,
        as_json,
        accounts,
        title=_plural(len(accounts), "account"),
        columns=("id", "provider", "name", "api", "credentials set", "callback URL"),
        row=lambda item: (
            item.id,
            item.provider,
            item.name,
            item.api_base_url,
            ", ".join(item.credentials_set),
            item.callback_url or "-",
        ),
        wrap={"provider", "name", "api", "credentials set"},
    )


@accounts_app.command("delete")
def delete_account(
    account_id: Annotated[str, typer.Argument(help="acct_…", show_default=False)],
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    profile: ProfileOption = None,
) -> None:
    """Remove a carrier account (its numbers must be removed first)."""
    with _session(url, api_key, profile) as client:
        client.delete_provider_account(account_id)
    out.print(f"deleted {account_id}")


# -- tail -----------------------------------------------------------------------------


class _Recipients:
    """Message id → recipient number, looked up once per message."""

    def __init__(self, client: Client, size: int = 50_000) -> None:
        self._client = client
        self._size = size
        self._known: dict[str, str] = {}

    def __call__(self, event: MessageEvent) -> str:
        given = event.data.get("to")
        if isinstance(given, str):
            return given
        if event.message_id not in self._known:
            if len(self._known) >= self._size:
                self._known.clear()
            try:
                self._known[event.message_id] = self._client.get_message(event.message_id).to
            except ApiError:
                self._known[event.message_id] = "?"
        return self._known[event.message_id]


def tail(
    after: Annotated[
        int | None,
        typer.Option("--after", min=0, help="Replay from after this event seq (0: everything)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line")] = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    profile: ProfileOption = None,
) -> None:
    """Print message events live as they happen (Ctrl-C to stop)."""
    with _session(url, api_key, profile) as client:
        recipient = _Recipients(client)
        cursor = after
        connected = False
        delay = 0.5
        try:
            while True:
                try:
                    with client.open_stream(after=cursor) as events:
                        if not connected:
                            err.print(
                                f"listening for message events at {client.url} (Ctrl-C to stop)"
                            )
                        connected = True
                        delay = 0.5
                        for event in events:
                            cursor = event.seq or cursor  # acceptances have seq 0
                            _print_event(event, recipient, as_json)
                except ConnectionFailed as error:
                    if not connected:
                        raise
                    err.print(f"stream lost ({error.reason}); reconnecting in {delay:g} s")
                    time.sleep(delay)
                    delay = min(delay * 2, 10.0)
        except KeyboardInterrupt:
            return


def _print_event(event: MessageEvent, recipient: _Recipients, as_json: bool) -> None:
    if as_json:
        line = event.model_dump(mode="json")
        line["to"] = recipient(event)
        print(json.dumps(line), flush=True)
        return
    text = Text(f"{_clock(event.created_at)}  {event.type:<22} {event.message_id}  ")
    text += Text(f"{recipient(event):<16} ")
    details = _details(event.data)
    text += _status(event.status, 12 if details else 0)
    text += Text(details)
    out.print(text, soft_wrap=True)


__all__ = ["FINAL_STATUSES", "parse_moment", "read_recipients", "register"]


def mcp(url: UrlOption = None, api_key: ApiKeyOption = None, profile: ProfileOption = None) -> None:
    """Serve the MCP tools over stdio (for Claude Desktop, Cursor, ...), acting on --url."""
    url, api_key = _credentials(url, api_key, profile)
    from agentsms.mcp_server.stdio import serve_stdio  # the MCP SDK loads for this command only

    anyio.run(serve_stdio, url, api_key)
