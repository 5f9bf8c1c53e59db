"""``InputGuard``: refuses request input that no layer below can store or answer with.

Python's JSON parser accepts what no database or JSON encoder can take back: lone UTF-16
surrogates (``"\\ud800"``), NUL characters (PostgreSQL text cannot hold them), ``NaN`` and
``Infinity``, and integers of any size. This middleware checks every request once, before
any endpoint reads it: the path and query string (NUL), JSON bodies (every key and value,
at any depth) and URL-encoded form bodies (NUL). A refusal is a ``422`` naming the field
(``metadata.note``, ``recipients[2].body``, ``cursor``), so nothing is half-stored.

Under ``raise_under`` prefixes (the vendor surfaces) the refusal is raised as a
``ValidationFailed`` for the outer middleware that renders it in the vendor's error shape;
elsewhere it is answered as the API's problem+json.

A JSON body is parsed here only when a quick scan finds something that may be refused
(an escaped NUL or unpaired surrogate, ``NaN``/``Infinity``, a run of 19 digits or a
3-digit exponent); the common body costs a UTF-8 check and a few substring searches.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from urllib.parse import parse_qsl

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentsms.api.problems import from_error, from_http_error
from agentsms.core.storable import json_problems, text_problem
from agentsms.errors import AgentsmsError, FieldError, ValidationFailed

# The escapes that decode to text refused below: NUL, a high surrogate not followed by a
# low one, a low surrogate not preceded by a high one (an escaped backslash before ``u``
# only makes a false alarm, settled by the full check).
_UNSTORABLE_ESCAPE = re.compile(
    r"\\u(?:0000|[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])"
    r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2}\\u)[dD][c-fC-F][0-9a-fA-F]{2})"
)
# Every digit as 0, every exponent mark as e, every sign as +: then a number that may
# overflow (19 digits, a 3-digit exponent) is a plain substring.
_NUMBER_SHAPES = bytes.maketrans(b"123456789E-", b"000000000e+")
_OVERFLOWING = (b"0" * 19, b"e000", b"e+000")
_FORM = "application/x-www-form-urlencoded"


def json_body_problems(body: bytes, *, declared: bool = True) -> list[FieldError]:
    """What in a JSON request body cannot be stored; ``[]`` when it is fine or is not JSON
    at all (the endpoint then says so itself). A body not ``declared`` JSON by its content
    type is checked only if it is UTF-8 text."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return [FieldError("body", "is not valid UTF-8 text")] if declared else []
    if not _suspect(body, text):
        return []
    try:
        document = json.loads(text)
    except ValueError:
        return []
    return list(json_problems(document))


def _suspect(body: bytes, text: str) -> bool:
    """Whether the body may hold a value ``json_problems`` refuses (false alarms allowed)."""
    if b"NaN" in body or b"Infinity" in body:
        return True
    if b"\\u" in body and _UNSTORABLE_ESCAPE.search(text) is not None:
        return True
    shapes = body.translate(_NUMBER_SHAPES)
    return any(shape in shapes for shape in _OVERFLOWING)


def pairs_problems(raw: bytes) -> list[FieldError]:
    """The fields of a query string or URL-encoded form whose name or value cannot be
    stored."""
    found: list[FieldError] = []
    for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        reason = text_problem(name)
        if reason is not None:
            found.append(FieldError("query", f"has a parameter name that {reason}"))
            continue
        reason = text_problem(value)
        if reason is not None:
            found.append(FieldError(name, reason))
    return found


class InputGuard:
    """ASGI middleware: ``422`` for request input that cannot be stored (see the module)."""

    def __init__(self, app: ASGIApp, *, raise_under: Sequence[str] = ()) -> None:
        self.app = app
        self.raise_under = tuple(raise_under)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        errors: list[FieldError] = []
        if "\x00" in scope["path"]:
            errors.append(FieldError("path", "must not contain NUL characters"))
        query: bytes = scope.get("query_string", b"")
        if b"%00" in query or b"\x00" in query:
            errors.extend(pairs_problems(query))
        content_type = ""
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.decode("latin-1").lower()
        form = content_type.startswith(_FORM)
        declared = "json" in content_type
        if not errors and (form or declared or not content_type):
            try:
                body, receive = await _buffered(receive)
            except StarletteHTTPException as error:  # too large, or too slow to arrive
                await self._refuse(scope, receive, send, error)
                return
            if form:
                if b"%00" in body or b"\x00" in body:
                    errors.extend(pairs_problems(body))
            elif body:
                errors.extend(json_body_problems(body, declared=declared))
        if not errors:
            await self.app(scope, receive, send)
            return
        refusal = ValidationFailed(
            "; ".join(f"{e.field}: {e.message}" for e in errors[:20]), errors=errors[:20]
        )
        await self._refuse(scope, receive, send, refusal)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, error: Exception) -> None:
        """Raise ``error`` for the outer layer to render (under ``raise_under``), else
        answer it as problem+json."""
        if self.raise_under and scope["path"].lower().startswith(self.raise_under):
            raise error
        if isinstance(error, AgentsmsError):
            response = from_error(error)
        else:
            assert isinstance(error, StarletteHTTPException)
            response = from_http_error(error)
        await response(scope, receive, send)


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    """The whole request body, and a ``receive`` that hands it on as one message (or the
    disconnect that cut it short)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            break
    first: Message | None = message

    async def replay() -> Message:
        nonlocal first
        if first is None:
            return await receive()
        handed, first = first, None
        return handed

    return b"".join(chunks), replay
