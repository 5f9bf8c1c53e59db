"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.responses import JSONResponse, Response

from agentsms import metrics
from agentsms.api.deps import State
from agentsms.jobs import queue
from agentsms.store import migrate

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    """Liveness: ``200`` ``{"status": "ok"}`` while the process serves requests. Needs no API key
    and touches no database.
    """
    return {"status": "ok"}


@router.get("/readyz", summary="The database is reachable and its schema current")
async def readyz(state: State) -> Response:
    """Readiness: ``200`` when the database answers and its schema is at the newest migration, else
    ``503`` with the reason (the database error, or the current and head revisions). Needs no API
    key.
    """
    try:
        async with state.db.read() as conn:
            await conn.execute(text("SELECT 1"))
            current = await migrate.current_revision(conn)
    except Exception as error:
        return JSONResponse({"status": "unavailable", "database": repr(error)}, status_code=503)
    head = migrate.head_revision()
    if current != head:
        return JSONResponse(
            {"status": "unavailable", "migrations": {"current": current, "head": head}},
            status_code=503,
        )
    return JSONResponse({"status": "ready", "migrations": {"current": current, "head": head}})


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=True)
async def prometheus(state: State) -> Response:
    """Prometheus metrics in the text exposition format: requests, latencies, messages per
    status (counted at most every ``AGENTSMS_METRICS_COUNTS_MAX_AGE_SECONDS``), job queue
    depth, event-loop lag. Needs no API key.
    """
    by_status = await state.counts.by_status()
    async with state.db.read() as conn:
        depth = await queue.depth(conn)
    metrics.messages_by_status.clear()
    for status, count in by_status.items():
        metrics.messages_by_status.labels(status=status).set(count)
    metrics.queue_depth.clear()
    for key, count in depth.items():
        kind, status = key.split(":", 1)
        metrics.queue_depth.labels(kind=kind, status=status).set(count)
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
