"""Settings, read from the environment (prefix ``AGENTSMS_``) and overridden by CLI flags."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ACCEPTED_DATABASE_URLS = "sqlite+aiosqlite:///path/to/file.db or postgresql+asyncpg://user@host/db"

_DRIVER_FOR_SCHEME = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}


class ConfigurationError(ValueError):
    """A setting that agentsms cannot start with; the message is one line for the operator."""


def _without_password(url: str) -> str:
    """``url`` with the password of its ``user:password@`` part masked."""
    return re.sub(r"^([^:/@]*://[^:/@]*:)[^@/]*@", r"\1***@", url.strip())


def normalize_database_url(url: str) -> str:
    """The database URL with the driver agentsms uses; the common spellings are accepted.

    ``postgres://`` and ``postgresql://`` get asyncpg, ``sqlite://`` gets aiosqlite. Any
    other form raises ``ConfigurationError`` naming what was given and what is accepted.
    """
    scheme, separator, rest = url.strip().partition("://")
    driver = _DRIVER_FOR_SCHEME.get(scheme.lower()) if separator else None
    if driver is None or (driver.startswith("sqlite") and not rest.startswith("/")):
        raise ConfigurationError(
            f"AGENTSMS_DATABASE_URL {_without_password(url)!r} is not a database URL "
            "agentsms can use; "
            f"accepted forms: {ACCEPTED_DATABASE_URLS} "
            "(postgres:// and postgresql:// are taken as postgresql+asyncpg://)"
        )
    return f"{driver}://{rest}"


MIN_BOOTSTRAP_KEY_LENGTH = 24

_HOST_NAME = re.compile(
    r"^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$"
)


DEFAULT_JOB_MAX_ATTEMPTS = 8
"""How often a job is tried before it fails for good, unless configured otherwise."""


class Settings(BaseSettings):
    """Every knob agentsms has. Each field is also ``AGENTSMS_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="AGENTSMS_", extra="ignore", populate_by_name=True)

    database_url: str = "sqlite+aiosqlite:///./agentsms.db"
    database_timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    """The longest one wait for the database may take (SQLite's lock, a pooled or new
    connection, a PostgreSQL lock); past it a request answers 503 with ``Retry-After``."""
    metrics_counts_max_age_seconds: float = Field(default=30.0, ge=0, le=3600)
    """How old the message counts by status in ``/metrics`` may be: a scrape within this
    many seconds of the last count reuses it (counting scans the whole messages table)."""
    sqlite_cache_mib: int = Field(default=64, ge=1)
    """SQLite's page cache in one process (API or worker), shared among its connections."""
    memory_trace_dir: str | None = None
    """Debugging memory growth only: a folder where each server process writes a
    ``tracemalloc`` report every ``memory_trace_seconds`` (``agentsms.memtrace``). Off."""
    memory_trace_seconds: float = Field(default=60.0, gt=0)
    bootstrap_api_key: str | None = None
    log_format: Literal["console", "json"] = "console"
    log_level: str = "INFO"
    public_url: str | None = None
    # The origin of the media URLs agentsms hands out (``{media_base_url}/media/{token}``):
    # a host of its own that reaches the same server, so that media never shares an origin
    # with the dashboard. Unset: ``public_url``.
    media_base_url: str | None = None
    dashboard_session_hours: float = Field(default=12.0, gt=0)

    rate_limit_storage_url: str = "memory://"
    default_rate_limit_per_second: int = Field(default=100, ge=1)
    # Failed API-key checks and dashboard sign-ins a client address may make in a minute;
    # past them its credential checks are refused (429) until the minute is over.
    auth_failures_per_minute: int = Field(default=10, ge=1, le=1_000_000)
    max_request_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_batch_recipients: int = 10_000
    api_key_cache_seconds: float = 5.0
    # Vendor-compatible APIs (/compat/...): how long a request body may take to arrive
    # (then 408), how long an answer may take (then 504: the database did not answer in
    # time), and the lifetime of the bearer tokens vendors exchange credentials for.
    request_body_timeout_seconds: float = Field(default=30.0, gt=0)
    compat_response_timeout_seconds: float = Field(default=60.0, gt=0)
    compat_token_seconds: int = Field(default=3600, ge=60)

    worker_poll_interval: float = Field(default=0.1, gt=0)
    worker_claim_batch: int = Field(default=500, ge=1)
    worker_concurrency: int = Field(default=1, ge=1)
    job_lease_seconds: float = Field(default=30.0, gt=1)
    job_max_attempts: int = Field(default=DEFAULT_JOB_MAX_ATTEMPTS, ge=1)
    intake_group_max: int = Field(default=256, ge=1)
    """At most this many concurrent single sends share one intake transaction."""
    intake_group_concurrency: int = Field(default=4, ge=1)
    """Intake transactions an API process runs at once on PostgreSQL (SQLite: always 1); a
    further one starts only while sends crowd up (``store.group_commit.CROWD``)."""
    intake_group_delay_seconds: float = Field(default=0.01, ge=0, le=1)
    """Under steady light traffic an intake transaction that would carry one single send
    waits until that send is this old, for the ones that follow (0: never waits); a lone
    request, and sends that queued up under load, never wait."""
    retry_base_seconds: float = Field(default=2.0, gt=0)
    retry_max_seconds: float = Field(default=600.0, gt=0)
    pacing_horizon_seconds: float = Field(default=1.0, gt=0)
    uncertain_send_policy: Literal["resend", "fail"] = "resend"

    simulator_delivery_delay_seconds: float = Field(default=0.5, ge=0)
    agent_max_attempts: int = Field(default=3, ge=1)  # then the conversation needs attention

    # Outbound URLs (webhooks, agents, media, carrier APIs): insecure allows http and
    # loopback/private targets, for local development and tests only (warned at startup).
    allow_insecure_urls: bool = False
    # The operator's allow-list of private servers tenants' URLs may reach (an Ollama on the
    # LAN): comma-separated host names, IP addresses and CIDR networks. http is allowed for
    # hosts listed by name or address. Never a tenant setting.
    trusted_private_hosts: str = ""
    webhook_max_attempts: int = Field(default=8, ge=1)
    webhook_timeout_seconds: float = Field(default=15.0, gt=0)
    # Delay after attempt 1, 2, ... (the last repeats), each with +-20 % jitter.
    webhook_retry_schedule: list[Annotated[float, Field(ge=0)]] = [5, 300, 1800, 7200, 18000, 36000]
    outbound_max_response_bytes: int = Field(default=1024 * 1024, ge=1024)
    webhook_retention_days: float = Field(default=30.0, gt=0)

    # The deployment's secret: it encrypts provider credentials at rest and signs dashboard
    # sessions. Several, separated by commas, during a rotation: the first encrypts and
    # signs, all decrypt and verify. Unset on SQLite: a key file generated next to the
    # database. Also: the caps of inbound media fetches.
    secret_key: str | None = None
    media_max_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    media_fetch_timeout_seconds: float = Field(default=10.0, gt=0)
    callback_tolerance_seconds: float = Field(default=300.0, gt=0)
    # How often each worker re-reads the SMPP accounts: binds new ones, rebinds changed ones
    # and unbinds removed ones (a deleted account is unbound at once in the process that
    # deleted it).
    smpp_sync_seconds: float = Field(default=15.0, gt=0)

    # The operator's LLM server and key: an LLM persona without a ``base_url`` (or with this
    # one) uses them. A persona with its own ``base_url`` gets only its project's stored key.
    llm_base_url: str = "https://api.openai.com/v1"
    llm_api_key: str | None = Field(
        default=None, validation_alias=AliasChoices("AGENTSMS_LLM_API_KEY", "OPENAI_API_KEY")
    )

    @field_validator("trusted_private_hosts")
    @classmethod
    def _check_trusted_hosts(cls, value: str) -> str:
        for entry in trusted_host_entries(value):
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                if not _HOST_NAME.match(entry):
                    raise ValueError(
                        f"{entry!r} is not a host name, IP address or CIDR network"
                    ) from None
        return value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, url: str) -> str:
        return normalize_database_url(url)

    @field_validator("bootstrap_api_key")
    @classmethod
    def _bootstrap_key_is_long_enough(cls, value: str | None) -> str | None:
        # A bootstrap key is a password to a whole project: too short a one is guessable.
        if value and len(value) < MIN_BOOTSTRAP_KEY_LENGTH:
            raise ValueError(
                f"must be at least {MIN_BOOTSTRAP_KEY_LENGTH} characters (it has "
                f"{len(value)}); make one with: python -c 'import secrets; "
                'print("ask_" + secrets.token_urlsafe(24))\''
            )
        return value or None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def trusted_host_entries(value: str) -> list[str]:
    """The entries of ``AGENTSMS_TRUSTED_PRIVATE_HOSTS``: lower-cased, brackets and a trailing
    dot removed, empty ones skipped."""
    entries = (part.strip().lower().strip("[]").rstrip(".") for part in value.split(","))
    return [entry for entry in entries if entry]
