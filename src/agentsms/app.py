"""``create_app``: the FastAPI application, its routers and its lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import structlog
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException
from starlette.types import Message

from agentsms import dashboard, memtrace, metrics
from agentsms.api import (
    api_keys,
    batches,
    callbacks,
    contacts,
    conversations,
    events,
    health,
    llm_credentials,
    media,
    messages,
    numbers,
    openapi_docs,
    optouts,
    pathway_templates,
    personas,
    problems,
    project,
    provider_accounts,
    simulator,
    templates,
    webhook_endpoints,
)
from agentsms.api.compat import vendors
from agentsms.api.input_guard import InputGuard
from agentsms.api.intake import send_intake
from agentsms.api.middleware import BodySizeLimit, RequestMetrics
from agentsms.api.scraped_counts import ScrapedCounts
from agentsms.api.state import AppState, RateLimiter
from agentsms.config import Settings
from agentsms.core import credentials, projects
from agentsms.core.sending import Outbox, SendPolicy
from agentsms.jobs.worker import Worker
from agentsms.mcp_server import http as mcp_http
from agentsms.runtime import build_providers, build_worker, register_webhook_formats
from agentsms.store import migrate
from agentsms.store.db import Database
from agentsms.version import __version__
from agentsms.webhooks.ssrf import warn_if_insecure

log = structlog.get_logger("agentsms.app")


async def prepare_deployment(settings: Settings) -> None:
    """What a deployment needs once before serving: SQLite migrated, the credentials key,
    the bootstrap project."""
    if settings.is_sqlite:
        await migrate.upgrade_async(settings.database_url)
    credentials.prepare(settings)
    if settings.bootstrap_api_key:
        db = Database(settings.database_url, timeout=settings.database_timeout_seconds)
        try:
            async with db.write() as conn:
                await projects.ensure_bootstrap(conn, settings.bootstrap_api_key)
        finally:
            await db.dispose()


WARM_UP_PATH = "/.agentsms-warm-up"
"""A path no route matches: asking the router for it builds every route's lookup tables."""


async def warm_up_routes(app: FastAPI) -> None:
    """Build the routing tables that FastAPI otherwise builds on the first request (about
    2.5 s of CPU on this application, holding the event loop of every API process at its
    first request). Call it before serving, in the process that forks the API processes
    so that they inherit the tables. It asks the router, below the middleware, for a path
    no route matches: nothing is counted or logged, and no handler runs."""
    scope = {
        "type": "http",
        "method": "GET",
        "path": WARM_UP_PATH,
        "raw_path": WARM_UP_PATH.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [],
        "scheme": "http",
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 0),
        "http_version": "1.1",
        "app": app,
        "state": {},
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        return None

    with suppress(HTTPException):  # the router's 404
        await app.router(scope, receive, send)


def create_app(
    settings: Settings | None = None,
    *,
    run_worker: bool = False,
    worker_concurrency: int | None = None,
    prepared: bool = False,
) -> FastAPI:
    """The API. With ``run_worker`` a dispatch worker runs inside the same process; unless
    ``prepared`` (by a supervisor, see ``prepare_deployment``) it prepares the deployment."""
    settings = settings or Settings()
    register_webhook_formats()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        warn_if_insecure(settings)
        if not prepared:
            await prepare_deployment(settings)
        db = Database(
            settings.database_url,
            timeout=settings.database_timeout_seconds,
            sqlite_cache_mib=settings.sqlite_cache_mib,
        )
        outbox = Outbox(SendPolicy.from_settings(settings))
        providers = build_providers(db, settings, outbox)
        app.state.agentsms = AppState(
            settings=settings,
            db=db,
            providers=providers,
            limiter=RateLimiter(settings.rate_limit_storage_url),
            outbox=outbox,
            sends=send_intake(db, settings, outbox),
            counts=ScrapedCounts(db, settings.metrics_counts_max_age_seconds),
        )
        loop_watch = asyncio.create_task(metrics.watch_event_loop())
        memory_trace = memtrace.start(settings.memory_trace_dir, settings.memory_trace_seconds)
        worker: Worker | None = None
        task: asyncio.Task[None] | None = None
        if run_worker:
            worker = build_worker(db, providers, settings, worker_concurrency, outbox=outbox)
            task = asyncio.create_task(worker.run())
        try:
            async with mcp.running():
                yield
        finally:
            loop_watch.cancel()
            if memory_trace is not None:
                memory_trace.cancel()
            if worker is not None and task is not None:
                worker.stop()
                with suppress(asyncio.CancelledError):
                    await task
            await providers.aclose()
            await db.dispose()

    app = FastAPIOffline(
        title="agentsms",
        version=__version__,
        summary="A self-hostable messaging gateway for AI agents",
        lifespan=lifespan,
    )
    problems.install(app)
    openapi_docs.install(app)
    mcp = mcp_http.install(app)
    for module in (
        messages,
        batches,
        numbers,
        project,
        api_keys,
        simulator,
        events,
        health,
        provider_accounts,
        callbacks,
        media,
        webhook_endpoints,
        conversations,
        personas,
        llm_credentials,
        pathway_templates,
        templates,
        optouts,
        contacts,
    ):
        app.include_router(module.router)
    # Inside the vendor surfaces' guard, which renders its refusals in each vendor's shape.
    app.add_middleware(InputGuard, raise_under=(vendors.COMPAT_ROOT,))
    vendors.install(app, settings)
    dashboard.mount(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(RequestMetrics)
    return app
