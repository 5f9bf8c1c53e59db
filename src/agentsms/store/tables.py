"""The schema. Alembic migrations in ``store/migrations`` create exactly these tables."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from agentsms.store.types import JSONType, UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL wants BIGINT.
AutoId = BigInteger().with_variant(Integer(), "sqlite")

projects = Table(
    "projects",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("settings", JSONType, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# What each project with a daily spend cap has been charged per UTC day (see core.spend):
# one row per project and day, updated in the transaction that accepts or sends.
project_daily_usage = Table(
    "project_daily_usage",
    metadata,
    Column("project_id", String(40), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("segments", BigInteger, nullable=False),
    Column("spend", Numeric(18, 6), nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("project_id", String(40), ForeignKey("projects.id"), nullable=False, index=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("name", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
)

numbers = Table(
    "numbers",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("project_id", String(40), ForeignKey("projects.id"), nullable=False),
    Column("number", String(20), nullable=False),
    Column("provider", String(40), nullable=False),
    Column("country", String(2), nullable=True),
    Column("capabilities", JSONType, nullable=False),
    Column("throughput_mps", Float, nullable=False),
    Column("price_per_segment", Numeric(12, 6), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("settings", JSONType, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("project_id", "number", name="uq_numbers_project_number"),
)

# Send slots per sender number, shared by every worker process: the pacing clock.
sender_pacing = Table(
    "sender_pacing",
    metadata,
    Column("number_id", String(40), primary_key=True),
    Column("next_slot_at", Float, nullable=False),
)

batches = Table(
    "batches",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("project_id", String(40), ForeignKey("projects.id"), nullable=False, index=True),
    Column("total", Integer, nullable=False),
    Column("metadata", JSONType, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

messages = Table(
    "messages",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("project_id", String(40), nullable=False),
    Column("batch_id", String(40), nullable=True),
    Column("conversation_id", String(40), nullable=True),
    Column("direction", String(10), nullable=False),
    Column("to_number", String(20), nullable=False),
    Column("from_number", String(20), nullable=False),
    Column("number_id", String(40), nullable=True),
    # The person's number, whichever the direction: finds who a person last talked to.
    Column("contact", String(20), nullable=False),
    Column("body", Text, nullable=False),
    Column("media_urls", JSONType, nullable=False),
    Column("channel", String(10), nullable=False),
    Column("status", String(12), nullable=False),
    Column("segments", Integer, nullable=False),
    Column("encoding", String(5), nullable=False),
    Column("price_estimate", Numeric(12, 6), nullable=False),
    Column("price", Numeric(12, 6), nullable=True),
    Column("currency", String(3), nullable=False),
    Column("send_at", UTCDateTime, nullable=True),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("sent_at", UTCDateTime, nullable=True),
    Column("delivered_at", UTCDateTime, nullable=True),
    Column("error_code", String(40), nullable=True),
    Column("error_message", Text, nullable=True),
    Column("metadata", JSONType, nullable=False),
    Column("external_id", String(200), nullable=True),
    Column("provider", String(40), nullable=False),
    Column("provider_message_id", String(100), nullable=True),
    # True between handing the message to the provider and recording its answer: a message
    # found in flight after a crash is looked up at the provider before any re-send.
    Column("in_flight", Boolean, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_messages_project_id_id", "project_id", "id"),
    # Without the status, so that a status change writes no entry here. Both leave out the
    # rows without the value (most messages, and every one not yet sent): no lookup asks
    # for those, and an insert writes no entry.
    Index(
        "ix_messages_batch",
        "batch_id",
        "id",
        sqlite_where=text("batch_id IS NOT NULL"),
        postgresql_where=text("batch_id IS NOT NULL"),
    ),
    Index(
        "ix_messages_provider_ref",
        "provider",
        "provider_message_id",
        sqlite_where=text("provider_message_id IS NOT NULL"),
        postgresql_where=text("provider_message_id IS NOT NULL"),
    ),
)

# Per person (``messages.contact``) of a project, their newest message and its sender number:
# what every send to a pool of numbers asks (sticky sender). Kept by ``insert_messages``; one
# row per person, so the lookup's pages stay cached however long the history grows (an index
# over all messages by contact missed the page cache once a send at 500,000 messages).
sticky_senders = Table(
    "sticky_senders",
    metadata,
    Column("project_id", String(40), primary_key=True),
    Column("contact", String(20), primary_key=True),
    Column("message_id", String(40), nullable=False),
    Column("number_id", String(40), nullable=True),
    sqlite_with_rowid=False,
)

message_events = Table(
    "message_events",
    metadata,
    Column("seq", AutoId, primary_key=True, autoincrement=True),
    # Time-ordered and made here, so unique without an index; events are read by seq.
    Column("id", String(40), nullable=False),
    Column("project_id", String(40), nullable=False),
    Column("message_id", String(40), nullable=False),
    Column("type", String(40), nullable=False),
    Column("status", String(12), nullable=False),
    Column("data", JSONType, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_message_events_project_seq", "project_id", "seq"),
    Index("ix_message_events_message", "message_id", "seq"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("project_id", String(40), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("state", String(10), nullable=False),
    Column("response_status", Integer, nullable=True),
    Column("response_body", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    # The periodic purge finds expired keys through it, a chunk at a time.
    Index("ix_idempotency_keys_expires_at", "expires_at"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("kind", String(60), nullable=False),
    Column("ref", String(60), nullable=True),
    Column("payload", JSONType, nullable=False),
    Column("status", String(10), nullable=False),
    # Times are epoch seconds: the queue compares them on every claim.
    Column("run_at", Float, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("lease_owner", String(80), nullable=True),
    Column("lease_expires_at", Float, nullable=True),
    # The job's claim count: each claim's token, which fences what that claim may change.
    Column("lease_token", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Index("ix_jobs_status_run_at", "status", "run_at"),
    Index("ix_jobs_ref", "ref"),
)

# The simulator carrier's own durable record of every send request it received.
simulator_sends = Table(
    "simulator_sends",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("reference", String(60), nullable=False, unique=True),
    Column("provider_message_id", String(60), nullable=False),
    Column("from_number", String(20), nullable=False),
    Column("to_number", String(20), nullable=False),
    Column("channel", String(10), nullable=False),
    Column("body", Text, nullable=False),
    Column("media_urls", JSONType, nullable=False),
    Column("outcome", String(12), nullable=False),
    Column("error_code", String(40), nullable=True),
    Column("repeat_count", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_simulator_sends_to", "to_number"),
)

# -- carriers: provider accounts, inbound de-duplication, multi-part texts, media ------------

# A customer's account at a carrier. ``credentials`` is a Fernet token of the JSON object;
# ``credential_keys`` names which keys are set (what the API shows instead of the values).
provider_accounts = Table(
    "provider_accounts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("project_id", String(40), ForeignKey("projects.id"), nullable=False, index=True),
    Column("provider", String(40), nullable=False),
    Column("name", String(200), nullable=False),
    Column("api_base_url", String(500), nullable=False),
    Column("credentials", Text, nullable=False),
    Column("credential_keys", JSONType, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

numbers.append_column(Column("provider_account_id", String(40), nullable=True))

# A project's own LLM API key (sealed like carrier credentials; never read back out).
llm_credentials = Table(
    "llm_credentials",
    metadata,
    Column("project_id", String(40), ForeignKey("projects.id"), primary_key=True),
    Column("api_key", Text, nullable=False),
    Column("hint", String(16), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Every carrier message id an account's callbacks already delivered: a repeat is dropped.
inbound_seen = Table(
    "inbound_seen",
    metadata,
    Column("account_id", String(40), primary_key=True),
    Column("provider_message_id", String(200), primary_key=True),
    Column("created_at", Float, nullable=False),
)

# Parts of a concatenated inbound text, held until the last part arrives.
inbound_parts = Table(
    "inbound_parts",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("account_id", String(40), nullable=False),
    Column("group_key", String(200), nullable=False),
    Column("part", Integer, nullable=False),
    Column("total", Integer, nullable=False),
    Column("body", Text, nullable=False),
    Column("provider_message_id", String(200), nullable=True),
    Column("from_number", String(32), nullable=False),
    Column("to_number", String(32), nullable=False),
    Column("channel", String(10), nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("account_id", "group_key", "part", name="uq_inbound_parts_group_part"),
)

# Inbound MMS media, fetched from the carrier and served back at ``/media/{token}``.
media = Table(
    "media",
    metadata,
    Column("token", String(64), primary_key=True),
    Column("project_id", String(40), nullable=False, index=True),
    Column("content_type", String(200), nullable=False),
    Column("size", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("source_url", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)


# --- conversations, personas, compliance (issue 3, conversations helper) -------------------

# Why a message exists, one of ``agentsms.purposes.PURPOSES``: "api" (a caller's send, native,
# batch or compat), "agent", "human" (takeover), "compliance" (opt-out/opt-in/help answers,
# sent even to an opted-out person), "timeout_warning" / "timeout_message" (conversation
# timers), "inbound" (a person's text). Added by 0003, never NULL since 0011_message_purpose.
messages.append_column(Column("purpose", String(20), nullable=False, server_default="api"))
Index("ix_messages_conversation", messages.c.conversation_id, messages.c.id)

conversations = Table(
    "conversations",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("project_id", String(40), nullable=False),
    Column("number_id", String(40), nullable=True),
    Column("agent_number", String(20), nullable=False),
    Column("user_number", String(20), nullable=False),
    Column("channel", String(10), nullable=False),
    Column("status", String(20), nullable=False),
    # "project|agent number|user number|channel" while the conversation is active (open or
    # needs_attention), NULL once it is over: its unique index keeps one active per thread.
    Column("thread_key", String(120), nullable=True, unique=True),
    Column("agent_paused", Boolean, nullable=False),
    Column("engaged", Boolean, nullable=False),
    Column("settings", JSONType, nullable=False),
    Column("metadata", JSONType, nullable=False),
    Column("state", JSONType, nullable=False),
    Column("current_node_id", String(100), nullable=True),
    Column("outcome", String(100), nullable=True),
    Column("extracted", JSONType, nullable=False),
    Column("end_reason", String(40), nullable=True),
    # When the silence timers were last (re)started; a timer job carries it and is stale
    # when it no longer matches.
    Column("timer_epoch", Float, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime, nullable=True),
    Index("ix_conversations_project_id", "project_id", "id"),
    Index("ix_conversations_project_user", "project_id", "user_number"),
)

optouts = Table(
    "optouts",
    metadata,
    Column("project_id", String(40), primary_key=True),
    Column("recipient", String(20), primary_key=True),
    # The words of a keyword opt-out as the person wrote them (NULL for other sources).
    Column("keyword", String(40), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    # How the entry came to be: "keyword", "api", "import", "dashboard" (0011_message_purpose).
    Column("source", String(20), nullable=False, server_default="keyword"),
    # The project's number a keyword arrived at (NULL for other sources).
    Column("number", String(20), nullable=True),
    Index("ix_optouts_project_created", "project_id", "created_at"),
)

# An address book: people a project names (AgentPhone's contacts).
contacts = Table(
    "contacts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("project_id", String(40), nullable=False),
    Column("phone_number", String(20), nullable=False),
    Column("name", String(200), nullable=False),
    Column("email", String(320), nullable=True),
    Column("notes", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # The person's IANA time zone: read before anything their number implies.
    Column("timezone", String(64), nullable=True),
    Column("metadata", JSONType, nullable=True),
    UniqueConstraint("project_id", "phone_number", name="uq_contacts_project_phone_number"),
)

personas = Table(
    "personas",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("project_id", String(40), nullable=False),
    # A small per-project number, for APIs that name personas by number.
    Column("alias", Integer, nullable=False),
    Column("name", String(200), nullable=False),
    Column("production_version", Integer, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("project_id", "alias", name="uq_personas_project_alias"),
)

persona_versions = Table(
    "persona_versions",
    metadata,
    Column("persona_id", String(40), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("config", JSONType, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

pathways = Table(
    "pathways",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("project_id", String(40), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

pathway_versions = Table(
    "pathway_versions",
    metadata,
    Column("pathway_id", String(40), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("document", JSONType, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

dispositions = Table(
    "dispositions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("project_id", String(40), nullable=False),
    Column("name", String(100), nullable=False),
    Column("description", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("project_id", "name", name="uq_dispositions_project_name"),
)

extraction_schemas = Table(
    "extraction_schemas",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("project_id", String(40), nullable=False),
    Column("name", String(100), nullable=False),
    Column("schema", JSONType, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("project_id", "name", name="uq_extraction_schemas_project_name"),
)

# Simulated people: the simulator answers texts to ``number`` from this script.
simulator_people = Table(
    "simulator_people",
    metadata,
    Column("project_id", String(40), primary_key=True),
    Column("number", String(20), primary_key=True),
    Column("replies", JSONType, nullable=False),
    Column("delay_seconds", Float, nullable=False),
    Column("next_index", Integer, nullable=False),
    Column("pending", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# --- webhooks: customer endpoints, the events sent to them, every delivery attempt ---

# ``kind`` is "endpoint" (created through the API, own secret) or "override" (a per-send or
# per-conversation ``webhook_url``, created on first use, signed with the project secret).
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("project_id", String(40), nullable=False),
    Column("kind", String(10), nullable=False),
    Column("url", Text, nullable=False),
    Column("description", Text, nullable=True),
    Column("event_types", JSONType, nullable=False),
    Column("secret", String(100), nullable=True),
    Column("previous_secret", String(100), nullable=True),
    Column("previous_secret_expires_at", UTCDateTime, nullable=True),
    Column("disabled_at", UTCDateTime, nullable=True),
    Column("disabled_reason", Text, nullable=True),
    Column("deleted_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_webhook_endpoints_project", "project_id", "id"),
)

# The signing secret of a project's per-send / per-conversation ``webhook_url`` deliveries.
webhook_project_secrets = Table(
    "webhook_project_secrets",
    metadata,
    Column("project_id", String(40), primary_key=True),
    Column("secret", String(100), nullable=False),
    Column("previous_secret", String(100), nullable=True),
    Column("previous_secret_expires_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
)

webhook_events = Table(
    "webhook_events",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("project_id", String(40), nullable=False),
    Column("type", String(60), nullable=False),
    # The whole envelope as sent: {id, type, created_at, data}.
    Column("payload", JSONType, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_webhook_events_project", "project_id", "id"),
    Index("ix_webhook_events_created_at", "created_at"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("project_id", String(40), nullable=False),
    Column("endpoint_id", String(40), nullable=False),
    Column("event_id", String(40), nullable=False),
    Column("event_type", String(60), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("status", String(12), nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Column("response_body", Text, nullable=True),
    Column("duration_ms", Integer, nullable=False),
    Column("next_retry_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),
    Index("ix_webhook_deliveries_event", "event_id", "endpoint_id"),
    Index("ix_webhook_deliveries_created_at", "created_at"),
)

# -- message templates (bland helper) ---------------------------------------------------------

message_templates = Table(
    "message_templates",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("project_id", String(40), ForeignKey("projects.id"), nullable=False),
    Column("name", String(200), nullable=False),
    # A caller's own handle for the template (e.g. a Twilio content SID), unique per project.
    Column("key", String(200), nullable=True),
    Column("body", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_message_templates_project", "project_id", "id"),
    UniqueConstraint("project_id", "key", name="uq_message_templates_project_key"),
)

# --- iMessage replies and effects (AgentPhone) ----------------------------------------------
# An expressive effect, the message this one answers inline, and whether that parent could
# not be found in the same thread (the message then goes as a plain one).
messages.append_column(Column("send_style", String(20), nullable=True))
messages.append_column(Column("reply_to_message_id", String(40), nullable=True))
messages.append_column(Column("reply_parent_unresolved", Boolean, nullable=True))

# --- webhook signing schemes and payload formats (migration 0006) ----------------------------
# NULL means the defaults: Standard Webhooks signatures, agentsms's own payload, 15 s.
webhook_endpoints.append_column(Column("signing_scheme", String(40), nullable=True))
webhook_endpoints.append_column(Column("payload_format", String(40), nullable=True))
webhook_endpoints.append_column(Column("timeout_seconds", Float, nullable=True))
webhook_endpoints.append_column(Column("options", JSONType, nullable=True))

# --- message reactions (iMessage tapbacks; migration 0006) -----------------------------------
message_reactions = Table(
    "message_reactions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("project_id", String(40), nullable=False),
    Column("message_id", String(40), nullable=False),
    Column("conversation_id", String(40), nullable=True),
    # outbound: we react to the person's message; inbound: the person reacts to one of ours.
    Column("direction", String(10), nullable=False),
    Column("reaction", String(20), nullable=False),
    Column("channel", String(10), nullable=False),
    Column("from_number", String(20), nullable=False),
    Column("to_number", String(20), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_message_reactions_message", "message_id", "id"),
)

# --- dashboard sessions (migration 0008) -----------------------------------------------------
# One row per signed-in browser; the signed cookie names the row by a random id (stored here
# as its SHA-256), and signing out deletes the row, so a saved cookie dies with it.
dashboard_sessions = Table(
    "dashboard_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("key_id", String(40), ForeignKey("api_keys.id"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
)
