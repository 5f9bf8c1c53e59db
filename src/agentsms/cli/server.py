"""The ``agentsms`` command's typer app and the commands that run agentsms: serve, worker,
migrate, init, quickstart and demo. The commands that talk to the API as a person are
registered from the other modules of this package by :func:`main`."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from pathlib import Path
from typing import Annotated, NoReturn

import structlog
import typer
import uvicorn
from pydantic import ValidationError

from agentsms.config import Settings
from agentsms.logging import configure as configure_logging

log = structlog.get_logger("agentsms.cli")

app = typer.Typer(
    help="agentsms: a self-hostable messaging gateway for AI agents.", no_args_is_help=True
)


def _fail(message: str) -> NoReturn:
    """End the command with one line on stderr instead of a traceback."""
    typer.echo(f"agentsms: {message}", err=True)
    raise typer.Exit(2)


def _settings(database_url: str | None) -> Settings:
    """The settings from the environment; a wrong one ends the command with one clear line
    per fault (never a traceback, never a secret)."""
    try:
        settings = Settings() if database_url is None else Settings(database_url=database_url)
    except ValidationError as error:
        for fault in error.errors():
            name = "_".join(str(part) for part in fault["loc"][:1]).upper()
            message = str(fault["msg"]).removeprefix("Value error, ")
            if not message.startswith("AGENTSMS_"):
                message = f"AGENTSMS_{name}: {message}"
            typer.echo(f"agentsms: {message}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings.log_format, settings.log_level)
    return settings


def _listen(host: str, port: int) -> socket.socket:
    """The server's listening socket, bound before anything else starts."""
    from agentsms.startup import bind_listener

    try:
        return bind_listener(host, port)
    except OSError as error:
        _fail(
            f"cannot listen on {host}:{port}: {error.strerror or error}; "
            "choose another port with --port (or PORT=... for make run)"
        )


def _require_ready_database(settings: Settings) -> None:
    """Refuse to start on a database that is unreachable or not migrated (SQLite migrates)."""
    from agentsms.startup import DatabaseNotReady, check_database

    try:
        asyncio.run(check_database(settings))
    except DatabaseNotReady as error:
        _fail(str(error))


DatabaseOption = Annotated[
    str | None, typer.Option("--database-url", help="Overrides AGENTSMS_DATABASE_URL")
]


ProcessesOption = Annotated[
    int | None,
    typer.Option(
        "--processes",
        min=1,
        help="API processes; 1 runs the API and its worker in this one process "
        "[default: one per core but one, plus a worker process]",
        show_default=False,
    ),
]


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    processes: ProcessesOption = None,
    workers_in_process: Annotated[
        int, typer.Option("--workers-in-process", min=1, help="Worker loops in the worker")
    ] = 2,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="API only; run `agentsms worker` elsewhere")
    ] = False,
    access_log: Annotated[
        bool, typer.Option("--access-log/--no-access-log", help="Log every HTTP request")
    ] = True,
    database_url: DatabaseOption = None,
) -> None:
    """Run the API and, unless --no-worker, a dispatch worker: on several cores as several
    API processes sharing the port plus a worker process, on one core (or --processes 1)
    all in this process."""
    settings = _settings(database_url)
    listener = _listen(host, port)
    _require_ready_database(settings)
    _serve(
        settings,
        listener,
        processes=processes,
        run_worker=not no_worker,
        worker_concurrency=workers_in_process,
        access_log=access_log,
    )


def _serve(
    settings: Settings,
    listener: socket.socket,
    *,
    processes: int | None,
    run_worker: bool,
    worker_concurrency: int,
    access_log: bool,
) -> None:
    from agentsms.app import create_app, prepare_deployment, warm_up_routes
    from agentsms.runtime import tune_gc, warm_up_worker, work_until_signalled
    from agentsms.store import migrate
    from agentsms.supervisor import Supervisor, plan_processes, usable_cores

    host, port = listener.getsockname()[:2]
    url = f"http://{host}:{port}"
    if settings.public_url is None:
        settings = settings.model_copy(update={"public_url": url})
    plan = plan_processes(processes, run_worker=run_worker, cores=usable_cores())
    if plan.supervised:
        asyncio.run(prepare_deployment(settings))
    application = create_app(
        settings,
        run_worker=run_worker and not plan.worker_process,
        worker_concurrency=worker_concurrency,
        prepared=plan.supervised,
    )
    config = uvicorn.Config(
        application,
        log_level="warning",
        log_config=None,
        access_log=access_log,
        timeout_graceful_shutdown=30,
    )
    if access_log:  # uvicorn.Config set its loggers to the level above
        logging.getLogger("uvicorn.access").setLevel(logging.INFO)
    # Work every API process would otherwise do on the event loop at its first requests,
    # done once here before the API processes are forked.
    asyncio.run(warm_up_routes(application))
    migrate.head_revision()
    if run_worker and not plan.worker_process:
        warm_up_worker()  # the worker runs in this process, on the API's event loop
    tune_gc()
    log.info(
        "serve.listening",
        url=url,
        worker=run_worker,
        api_processes=plan.api_processes,
        worker_process=plan.worker_process,
        access_log=access_log,
    )

    def serve_api() -> None:
        uvicorn.Server(config).run(sockets=[listener])

    if not plan.supervised:
        serve_api()
        return

    def work() -> None:
        warm_up_worker()  # here, not before the fork: the API processes need none of it
        asyncio.run(work_until_signalled(settings, worker_concurrency))

    status = Supervisor(plan, listener, api=serve_api, worker=work).run()
    if status:
        raise typer.Exit(status)


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(min=1, help="Worker loops in this process")] = 2,
    database_url: DatabaseOption = None,
) -> None:
    """Run background workers only (sending, receipts, timeouts). SIGTERM drains and exits."""
    from agentsms.runtime import tune_gc, warm_up_worker, work_until_signalled
    from agentsms.store import migrate

    settings = _settings(database_url)
    _require_ready_database(settings)
    warm_up_worker()
    tune_gc()

    async def main() -> None:
        if settings.is_sqlite:
            await migrate.upgrade_async(settings.database_url)
        await work_until_signalled(settings, concurrency)

    asyncio.run(main())


@app.command()
def migrate(database_url: DatabaseOption = None) -> None:
    """Apply database migrations."""
    from agentsms.store import migrate as migrations

    settings = _settings(database_url)
    migrations.upgrade(settings.database_url)
    typer.echo(f"database is at revision {migrations.head_revision()}")


async def _init_project(settings: Settings, name: str, number: str) -> tuple[str, str, str]:
    from agentsms.core import numbers, projects
    from agentsms.store import migrate as migrations
    from agentsms.store.db import Database

    await migrations.upgrade_async(settings.database_url)
    db = Database(settings.database_url, timeout=settings.database_timeout_seconds)
    try:
        async with db.write() as conn:
            project, key = await projects.create_project(conn, name)
            row = await numbers.add_simulator_number(conn, project.id, number)
    finally:
        await db.dispose()
    return project.id, key, str(row["number"])


@app.command()
def init(
    name: Annotated[str, typer.Option(help="Project name")] = "default",
    number: Annotated[str, typer.Option(help="Simulator sender number to add")] = "+14155550100",
    database_url: DatabaseOption = None,
) -> None:
    """Create a project, print its API key once, and add a simulator number."""
    settings = _settings(database_url)
    project_id, key, e164 = asyncio.run(_init_project(settings, name, number))
    typer.echo(f"project:  {project_id}")
    typer.echo(f"api key:  {key}   (shown once; keep it)")
    typer.echo(f"number:   {e164} (simulator, 100 msg/s)")


async def _key_opens_project(settings: Settings, key: str) -> bool:
    from agentsms.core import projects
    from agentsms.errors import Unauthorized
    from agentsms.store import migrate as migrations
    from agentsms.store.db import Database

    await migrations.upgrade_async(settings.database_url)
    db = Database(settings.database_url)
    try:
        async with db.read() as conn:
            await projects.authenticate(conn, key)
    except Unauthorized:
        return False
    finally:
        await db.dispose()
    return True


def _quickstart_key(settings: Settings, key_file: Path) -> str:
    """The saved demo key if this database knows it; else a new project and a new key."""
    if key_file.exists():
        key = key_file.read_text().strip()
        if asyncio.run(_key_opens_project(settings, key)):
            return key
        typer.echo(
            f"The API key saved in {key_file} belongs to another database; "
            "creating a new project in this one."
        )
    _, key, _ = asyncio.run(_init_project(settings, "default", "+14155550100"))
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_text(key + "\n")
    key_file.chmod(0o600)
    return key


@app.command()
def quickstart(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    state_dir: Annotated[Path, typer.Option(help="Where the demo keeps its key")] = Path(
        ".agentsms"
    ),
) -> None:
    """What `make run` does: init once, then serve, printing the URL, key and a curl example."""
    settings = _settings(None)
    listener = _listen(host, port)
    key = _quickstart_key(settings, state_dir / "api_key")
    url = f"http://{host}:{port}"
    from agentsms.demo import start_demo

    demo = asyncio.run(start_demo(settings, key))
    typer.echo(
        f"""
agentsms is starting at {url}   (API docs: {url}/docs)
API key:    {key}
Project id: {demo.project_id}   (Telegent's AccountKey, PolyAI's X-TOKEN-ID)
Web inbox:  {url}/dashboard   (sign in with the API key)

Demo: the appointment-reminder agent is texting a simulated person ({demo.person}), who
asks to reschedule. In a few seconds, see the whole exchange, its outcome and extracted data:

  .venv/bin/agentsms conversations show {demo.conversation_id} --url {url} --api-key {key}

Send a text through the built-in carrier simulator:

  curl -s {url}/v1/messages -H 'Authorization: Bearer {key}' \\
       -H 'Content-Type: application/json' \\
       -d '{{"to": "+14155552671", "body": "Hello from agentsms"}}'

or with the CLI:  .venv/bin/agentsms send --url {url} --api-key {key} --to +14155552671 "Hello"
"""
    )
    os.environ.setdefault("AGENTSMS_API_KEY", key)
    _serve(
        settings,
        listener,
        processes=None,
        run_worker=True,
        worker_concurrency=2,
        access_log=True,
    )


def main() -> None:
    """Run the ``agentsms`` command (the console script and ``python -m agentsms``)."""
    from agentsms.cli import client, contacts, conversations, optouts, profiles

    client.register(app)
    contacts.register(app)
    conversations.register(app)
    optouts.register(app)
    profiles.register(app)
    app()
