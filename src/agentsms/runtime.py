"""Wiring shared by ``serve`` and ``worker``: providers, the job handlers, the collector."""

from __future__ import annotations

import asyncio
import gc
import importlib
import signal

from agentsms import agents, memtrace, metrics
from agentsms.api.compat import agentphone_webhooks, bland_webhooks
from agentsms.config import Settings
from agentsms.core import conversations, idempotency, provider_accounts
from agentsms.core.agent_turns import ConversationJobs
from agentsms.core.dispatch import Dispatcher
from agentsms.core.provider_events import (
    PARTS_JOB,
    UNMATCHED_RECEIPTS_JOB,
    PartsTimeoutHandler,
    StoredProviderEvents,
    UnmatchedReceiptHandler,
)
from agentsms.core.sending import SEND_JOB, Outbox, SendPolicy
from agentsms.core.simulated_people import PersonReplies
from agentsms.core.simulator import (
    PERSON_REPLY_JOB,
    REPORT_JOB,
    ReportHandler,
    StoredSimulatorLedger,
)
from agentsms.jobs import queue
from agentsms.jobs.worker import Handler, Worker
from agentsms.providers.base import Provider
from agentsms.providers.registry import ProviderRegistry
from agentsms.providers.simulator import SimulatorProvider
from agentsms.providers.smpp_sessions import SmppSessions
from agentsms.store import purge
from agentsms.store.db import Database
from agentsms.webhooks import formats
from agentsms.webhooks.delivery import DeliveryHandler, purge_old
from agentsms.webhooks.events import DELIVER_JOB
from agentsms.webhooks.ssrf import tcp_address_vetter, warn_if_insecure

IDEMPOTENCY_PURGE_SECONDS = 600.0
WEBHOOK_PURGE_SECONDS = 3600.0
JOBS_VACUUM_SECONDS = 10.0
"""How often a worker on PostgreSQL vacuums the jobs table (``jobs.queue.vacuum``)."""


def register_webhook_formats() -> None:
    """Make the vendor surfaces' webhook formats known to ``webhooks.formats``: called at
    start-up by the API (``create_app``) and by the worker (``build_handlers``), which
    formats deliveries. Registering again replaces a format with itself."""
    formats.register(bland_webhooks.WEBHOOK_FORMAT, bland_webhooks.status_webhook)
    formats.register_endpoint_format(
        agentphone_webhooks.WEBHOOK_FORMAT, agentphone_webhooks.webhook_body
    )


def build_providers(db: Database, settings: Settings, outbox: Outbox) -> ProviderRegistry:
    """The simulator, and a loader that builds each provider account's adapter on first use."""
    events = StoredProviderEvents(db, settings, outbox)

    async def load_account(account_id: str) -> Provider:
        return await provider_accounts.load_adapter(db, settings, account_id, events)

    registry = ProviderRegistry(account_loader=load_account)
    registry.register(
        SimulatorProvider(
            StoredSimulatorLedger(db), default_delay=settings.simulator_delivery_delay_seconds
        )
    )
    return registry


def build_handlers(
    db: Database, providers: ProviderRegistry, settings: Settings, outbox: Outbox
) -> dict[str, Handler]:
    """Every job kind's handler; whatever sends does it through ``outbox``."""
    register_webhook_formats()  # the delivery handler shapes bodies in these formats
    return {
        SEND_JOB: Dispatcher(db, providers, settings).handle,
        REPORT_JOB: ReportHandler(db).handle,
        PARTS_JOB: PartsTimeoutHandler(db, outbox).handle,
        UNMATCHED_RECEIPTS_JOB: UnmatchedReceiptHandler(db).handle,
        conversations.TURN_JOB: ConversationJobs(db, settings, outbox).handle_turns,
        conversations.TIMER_JOB: ConversationJobs(db, settings, outbox).handle_timers,
        PERSON_REPLY_JOB: PersonReplies(db, outbox).handle,
        DELIVER_JOB: DeliveryHandler(db, settings).handle,
    }


def build_worker(
    db: Database,
    providers: ProviderRegistry,
    settings: Settings,
    concurrency: int | None = None,
    *,
    outbox: Outbox,
) -> Worker:
    """A worker with its handlers and periodic tasks: purging idempotency keys, and keeping
    one bound session per SMPP account in ``providers`` (only workers bind: the caller
    closes ``providers`` after the worker stops, which unbinds them)."""
    sessions = SmppSessions(
        providers, StoredProviderEvents(db, settings, outbox), vet=tcp_address_vetter(settings)
    )

    warn_if_insecure(settings)

    async def purge_idempotency_keys() -> None:
        await purge.in_chunks(db, idempotency.purge_expired)

    async def sync_smpp_sessions() -> None:
        await sessions.sync(await provider_accounts.load_accounts(db, settings, "smpp"))

    async def purge_webhook_log() -> None:
        await purge_old(db, settings)

    async def vacuum_jobs() -> None:
        async with db.write_statement() as conn:
            await queue.vacuum(conn)

    return Worker(
        db,
        settings,
        build_handlers(db, providers, settings, outbox),
        concurrency=concurrency,
        observe_latency=metrics.observe_job_latency,
        periodic=[
            (IDEMPOTENCY_PURGE_SECONDS, purge_idempotency_keys),
            (settings.smpp_sync_seconds, sync_smpp_sessions),
            (WEBHOOK_PURGE_SECONDS, purge_webhook_log),
            *([] if db.is_sqlite else [(JOBS_VACUUM_SECONDS, vacuum_jobs)]),
        ],
    )


async def work_until_signalled(settings: Settings, concurrency: int | None = None) -> None:
    """A worker process's life: work until SIGTERM or SIGINT, finish the jobs in hand,
    unbind the SMPP sessions and close the database."""
    db = Database(
        settings.database_url,
        timeout=settings.database_timeout_seconds,
        sqlite_cache_mib=settings.sqlite_cache_mib,
    )
    outbox = Outbox(SendPolicy.from_settings(settings))
    providers = build_providers(db, settings, outbox)
    runner = build_worker(db, providers, settings, concurrency, outbox=outbox)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runner.stop)
    loop_watch = asyncio.create_task(metrics.watch_event_loop())  # logs its stalls
    memory_trace = memtrace.start(settings.memory_trace_dir, settings.memory_trace_seconds)
    try:
        await runner.run()
    finally:
        loop_watch.cancel()
        if memory_trace is not None:
            memory_trace.cancel()
        await providers.aclose()  # unbinds the SMPP sessions
        await db.dispose()


def warm_up_worker() -> None:
    """Load, before the event loop starts, what a worker would otherwise load on it at its
    first jobs of a kind (``agents.warm_up``: the reply understanding and its date parser;
    anyio's asyncio backend, which httpx loads at the first webhook POST: ~30-70 ms).
    ``serve`` calls it before it forks the worker process, ``worker`` at its start."""
    agents.warm_up()
    importlib.import_module("anyio._backends._asyncio")


GC_THRESHOLDS = (50_000, 50, 100)
"""Young objects collected every 50,000 allocations instead of Python's 700."""


def tune_gc() -> None:
    """Set the garbage collector up for a long-running server process; call it once,
    after the imports and before serving.

    Everything loaded so far (modules, schemas, phone metadata, SQL constructs: about
    170,000 objects that live as long as the process) is frozen out of the collector's
    sight, and young objects are collected less often. Measured on
    ``POST /v1/messages`` with 64 connections: CPU per request fell from about 320 to about
    220 µs, and full collections no longer stall the event loop for tens of milliseconds.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
