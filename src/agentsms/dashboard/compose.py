"""Compose: one message, or a CSV of recipients with a preview of every row; a live
segment / encoding / price counter; errors beside the field that caused them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from starlette.responses import RedirectResponse, Response

from agentsms.core import compose as service
from agentsms.core import numbers as numbers_service
from agentsms.core.compose import CsvRecipient
from agentsms.core.sending import OutboundSpec
from agentsms.dashboard.web import (
    PREFIX,
    DashboardRoute,
    Protected,
    SignedIn,
    Viewer,
    errors_by_field,
    page,
)
from agentsms.errors import FieldError, ValidationFailed, invalid
from agentsms.numeric import MAX_SPACING_SECONDS

router = APIRouter(prefix=f"{PREFIX}/compose", route_class=DashboardRoute, include_in_schema=False)

PREVIEW_ROWS = 20  # shown in full; rows with problems are shown wherever they are
MAX_PROBLEM_ROWS = 200
Text = Annotated[str, Form()]
FromField = Annotated[str, Form(alias="from")]


def parse_send_at(value: str, field: str = "send_at") -> datetime | None:
    """A ``datetime-local`` value (taken as UTC) or an ISO 8601 time with a zone."""
    text = value.strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise invalid(field, "must be a date and time like 2026-11-29T14:30") from None


def parse_spacing(value: str) -> float | None:
    text = value.strip()
    if not text:
        return None
    try:
        spacing = float(text)
    except ValueError:
        raise invalid("spacing_seconds", "must be a number of seconds") from None
    if not 0 <= spacing <= MAX_SPACING_SECONDS:
        raise invalid("spacing_seconds", f"must be between 0 and {MAX_SPACING_SECONDS} seconds")
    return spacing


async def _form_context(viewer: Viewer, mode: str, **values: Any) -> dict[str, Any]:
    async with viewer.state.db.read() as conn:
        pool = await numbers_service.list_numbers(conn, viewer.project.id)
        counter = await service.count(conn, viewer.project.id, values.get("body", ""))
    context: dict[str, Any] = {
        "mode": mode,
        "numbers": pool,
        "errors": {},
        "values": {"to": "", "from": "", "body": "", "send_at": "", "spacing_seconds": ""},
        "counter": counter,
        "preview": None,
    }
    context["values"].update(values)
    return context


@router.get("")
async def compose(request: Request, viewer: SignedIn, mode: str = "one") -> Response:
    mode = "csv" if mode == "csv" else "one"
    return page(request, "compose.html", await _form_context(viewer, mode), nav="compose")


@router.post("/message", dependencies=[Protected])
async def send_message(
    request: Request,
    viewer: SignedIn,
    to: Text = "",
    from_: FromField = "",
    body: Text = "",
    send_at: Text = "",
) -> Response:
    try:
        when = parse_send_at(send_at)
        spec = OutboundSpec(to=to.strip(), body=body, from_=from_ or None, send_at=when)
        async with viewer.state.db.write() as conn:
            row = await viewer.state.outbox.send(
                conn, viewer.project.id, spec, project_settings=viewer.project.settings
            )
    except ValidationFailed as error:
        values = {"to": to, "from": from_, "body": body, "send_at": send_at}
        context = await _form_context(viewer, "one", **values)
        context["errors"] = errors_by_field(error.errors)
        return page(request, "compose.html", context, status_code=422, nav="compose")
    return RedirectResponse(f"{PREFIX}/messages/{row.id}", status_code=303)


async def _recipients(
    viewer: Viewer, upload: UploadFile | None, csv_text: str
) -> tuple[list[CsvRecipient], str]:
    """The CSV from the upload, else the copy the preview kept in the form."""
    text = csv_text
    if upload is not None and upload.filename:
        raw = await upload.read()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise invalid("file", "must be UTF-8 text") from None
    if not text.strip():
        raise invalid("file", "choose a CSV file with a to (or phone, number) column")
    recipients = service.read_csv(text, field_name="file")
    try:
        viewer.state.outbox.check_batch_size(len(recipients))
    except ValidationFailed as error:
        raise invalid("file", error.errors[0].message) from None
    return recipients, text


@router.post("/preview", dependencies=[Protected])
async def preview(
    request: Request,
    viewer: SignedIn,
    file: Annotated[UploadFile | None, File()] = None,
    csv_text: Text = "",
    body: Text = "",
    from_: FromField = "",
) -> Response:
    """The partial under the CSV form: each row's filled text, or the file's problem."""
    context: dict[str, Any] = {"errors": {}, "rows": [], "csv_text": csv_text, "total": 0}
    try:
        recipients, text = await _recipients(viewer, file, csv_text)
        context.update(await _preview(viewer, recipients, body, from_), csv_text=text)
    except ValidationFailed as error:
        context["errors"] = errors_by_field(error.errors)
    return page(request, "_preview.html", context)


async def _preview(
    viewer: Viewer, recipients: list[CsvRecipient], body: str, from_: str
) -> dict[str, Any]:
    """Every row checked; the first ``PREVIEW_ROWS`` shown, and every row with a problem."""
    async with viewer.state.db.read() as conn:
        rows = await service.preview(
            conn,
            viewer.state.outbox,
            viewer.project.id,
            recipients,
            body,
            from_=from_ or None,
            project_settings=viewer.project.settings,
        )
    problems = [row for row in rows if row.errors]
    head = rows[:PREVIEW_ROWS]
    shown = head + [row for row in problems[:MAX_PROBLEM_ROWS] if row.line > head[-1].line]
    return {"rows": shown, "total": len(rows), "invalid": len(problems), "errors": {}}


@router.post("/batch", dependencies=[Protected])
async def send_batch(
    request: Request,
    viewer: SignedIn,
    file: Annotated[UploadFile | None, File()] = None,
    csv_text: Text = "",
    body: Text = "",
    from_: FromField = "",
    send_at: Text = "",
    spacing_seconds: Text = "",
) -> Response:
    values = {"from": from_, "body": body, "send_at": send_at, "spacing_seconds": spacing_seconds}
    errors: list[FieldError] = []
    recipients: list[CsvRecipient] = []
    when: datetime | None = None
    spacing: float | None = None
    try:
        recipients, csv_text = await _recipients(viewer, file, csv_text)
    except ValidationFailed as error:
        errors.extend(error.errors)
    try:
        when = parse_send_at(send_at)
    except ValidationFailed as error:
        errors.extend(error.errors)
    try:
        spacing = parse_spacing(spacing_seconds)
    except ValidationFailed as error:
        errors.extend(error.errors)
    if not errors:
        spec = service.batch_spec(
            recipients, body, from_=from_ or None, send_at=when, spacing_seconds=spacing
        )
        try:
            async with viewer.state.db.write() as conn:
                result = await viewer.state.outbox.send_batch(
                    conn, viewer.project.id, spec, project_settings=viewer.project.settings
                )
            return RedirectResponse(f"{PREFIX}/batches/{result.batch['id']}", status_code=303)
        except ValidationFailed as error:
            grouped = service.row_errors(error)
            if grouped:
                lines = ", ".join(str(recipients[i].line) for i in sorted(grouped)[:20])
                message = (
                    f"{len(grouped)} of {len(recipients)} rows cannot be sent "
                    f"(lines {lines}); see the preview below"
                )
                errors.append(FieldError("file", message))
            errors.extend(e for e in error.errors if not e.field.startswith("recipients["))
    context = await _form_context(viewer, "csv", **values)
    context["errors"] = errors_by_field(errors)
    if recipients:
        context["preview"] = await _preview(viewer, recipients, body, from_) | {
            "csv_text": csv_text
        }
    return page(request, "compose.html", context, status_code=422, nav="compose")


@router.post("/count", dependencies=[Protected])
async def count(
    request: Request, viewer: SignedIn, body: Text = "", from_: FromField = ""
) -> Response:
    """The live counter under the message box."""
    async with viewer.state.db.read() as conn:
        counter = await service.count(conn, viewer.project.id, body, from_=from_ or None)
    return page(request, "_counter.html", {"counter": counter})
