"""The ceiling for ``bench_single_send.py``: a bare FastAPI app with one POST.

It validates the same JSON body as ``POST /v1/messages`` with an equivalent pydantic model
(same fields, aliases, limits and ``extra="forbid"``), and answers ``202`` with the parsed
body. No auth, no database. It runs under the same uvicorn settings as ``agentsms serve``
(one process, default loop and HTTP implementation, log level ``warning``) and the same
garbage-collector settings.

    python benchmarks/_bare_app.py --port 8001
"""

from __future__ import annotations

import argparse
import gc
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import uvicorn
from fastapi import FastAPI, Header
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from starlette.responses import Response

Channel = Literal["sms", "mms", "whatsapp", "imessage"]


def _moment(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be an ISO 8601 time or unix seconds")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        text = value.strip()
        if text.replace(".", "", 1).isdigit():
            return datetime.fromtimestamp(float(text), UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            raise ValueError("ISO 8601 time must include a zone")
        return parsed.astimezone(UTC)
    return value


Moment = Annotated[datetime, BeforeValidator(_moment)]


class MessageCreate(BaseModel):
    """Mirror of ``agentsms.api.schemas.MessageCreate``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    to: str = Field(max_length=32)
    from_: str | None = Field(default=None, alias="from", max_length=32)
    body: str | None = None
    media_urls: list[str] = Field(default_factory=list)
    channel: Channel | None = None
    send_at: Moment | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    external_id: str | None = Field(default=None, max_length=200)
    validity_seconds: int | None = Field(default=None, gt=0)
    variables: dict[str, Any] = Field(default_factory=dict)


app = FastAPI()


@app.post("/v1/messages", status_code=202)
async def create_message(
    body: MessageCreate,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Response:
    return Response(
        body.model_dump_json(by_alias=True), status_code=202, media_type="application/json"
    )


@app.get("/readyz")
async def readyz() -> dict[str, str]:
    return {"status": "ready"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    # The same collector settings as `agentsms serve` (agentsms.runtime.tune_gc), so that
    # the two processes differ only in what they do per request.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    # The same uvicorn.run() arguments as `agentsms serve` (src/agentsms/cli/server.py).
    uvicorn.run(
        app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=30
    )


if __name__ == "__main__":
    main()
