"""Settings, read from the environment (prefix ``AGENTSMS_``) and overridden by CLI flags."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob agentsms has. Each field is also ``AGENTSMS_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="AGENTSMS_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./agentsms.db"
    database_timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    """The longest one wait for the database may take (SQLite's lock, a pooled or new
    connection, a PostgreSQL lock); past it a request answers 503 with ``Retry-After``."""
    bootstrap_api_key: str | None = None
    log_format: Literal["console", "json"] = "console"
    log_level: str = "INFO"
    public_url: str | None = None
    dashboard_session_hours: float = Field(default=12.0, gt=0)

    rate_limit_storage_url: str = "memory://"
    default_rate_limit_per_second: int = Field(default=100, ge=1)
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
    job_max_attempts: int = Field(default=8, ge=1)
    intake_group_max: int = Field(default=256, ge=1)
    """At most this many concurrent single sends share one intake transaction."""
    intake_group_concurrency: int = Field(default=4, ge=1)
    """Intake transactions an API process runs at once on PostgreSQL (SQLite: always 1)."""
    retry_base_seconds: float = Field(default=2.0, gt=0)
    retry_max_seconds: float = Field(default=600.0, gt=0)
    pacing_horizon_seconds: float = Field(default=1.0, gt=0)
    uncertain_send_policy: Literal["resend", "fail"] = "resend"

    simulator_delivery_delay_seconds: float = Field(default=0.5, ge=0)
    agent_max_attempts: int = Field(default=3, ge=1)  # then the conversation needs attention

    # Outbound URLs (webhooks, agents, media, carrier APIs): insecure allows http and
    # loopback/private targets, for local development and tests only (warned at startup).
    allow_insecure_urls: bool = False
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

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
