"""Request and response bodies of the native API v1."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag

from agentsms.numeric import (
    INT32_MAX,
    MAX_PRICE_PER_SEGMENT,
    MAX_SPACING_SECONDS,
    MAX_THROUGHPUT_MPS,
    MAX_TIMER_SECONDS,
    MAX_VALIDITY_SECONDS,
)
from agentsms.purposes import Purpose as Purpose
from agentsms.resources import Channel as Channel
from agentsms.resources import Message as Message
from agentsms.resources import MessageStatus as MessageStatus


def _moment(value: Any) -> Any:
    """ISO 8601 (a zone is required) or unix seconds, as the API accepts for ``send_at``;
    from 1970 to the end of 9999."""
    if isinstance(value, bool):
        raise ValueError("must be an ISO 8601 time or unix seconds")
    try:
        if isinstance(value, int | float):
            return _from_unix(value)
        if isinstance(value, str):
            text = value.strip()
            if text.replace(".", "", 1).isascii() and text.replace(".", "", 1).isdigit():
                return _from_unix(float(text))
            try:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError("must be an ISO 8601 time or unix seconds") from None
            if parsed.tzinfo is None:
                raise ValueError("ISO 8601 time must include a zone, e.g. Z or +02:00")
            return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range (years 1970 to 9999)") from None
    return value


def _persona_ref(value: Any) -> Any:
    """A persona id (text) or numeric alias, as ``persona_id`` accepts."""
    alias = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= INT32_MAX
    if not (alias or (isinstance(value, str) and len(value) <= 100)):
        raise ValueError(f"must be a persona id or a numeric alias from 1 to {INT32_MAX}")
    return value


def _from_unix(seconds: float) -> datetime:
    if not 0 <= seconds <= LATEST_UNIX_SECONDS:
        raise OverflowError
    return datetime.fromtimestamp(seconds, UTC)


Moment = Annotated[datetime, BeforeValidator(_moment)]
LATEST_UNIX_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z
# Bounded numbers (the services check the same bounds; here they are also documented).
TimerSeconds = Annotated[float, Field(gt=0, le=MAX_TIMER_SECONDS)]
Version = Annotated[int, Field(ge=1, le=INT32_MAX)]
PersonaRef = Annotated[str | int, BeforeValidator(_persona_ref)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ConversationOptions(_Strict):
    """Settings for the conversation a send opens or resumes; stored on it until replaced.

    Only the fields given replace the stored ones; the rest come from the sender number's
    ``settings.conversation`` and then the project's ``settings.conversation``.
    """

    context: str | None = Field(default=None, max_length=20_000, description="For the agent")
    task_context: str | None = Field(default=None, max_length=20_000)
    metadata: dict[str, Any] | None = Field(
        default=None, description="Merged into the conversation's metadata"
    )
    webhook_url: str | None = Field(
        default=None, max_length=2000, description="Also receives this conversation's events"
    )
    webhook_format: str | None = Field(
        default=None,
        max_length=50,
        description="The payload format webhook_url receives: a vendor's (e.g. 'bland'); "
        "default: the standard payload",
    )
    timeout_seconds: TimerSeconds | None = Field(
        default=None, description="End the conversation after this much silence"
    )
    timeout_message: str | None = Field(default=None, max_length=1600)
    warning_seconds: TimerSeconds | None = Field(
        default=None, description="Warn after this much silence (< timeout_seconds)"
    )
    warning_message: str | None = Field(default=None, max_length=1600)
    policy: str | None = Field(
        default=None, description="A named timeout policy: 'polyai' (24 h warning, 10 min end)"
    )
    persona_id: PersonaRef | None = Field(default=None, description="Persona id or numeric alias")
    persona_version: Literal["production", "draft"] | Version | None = None
    persona_settings: dict[str, Any] | None = Field(
        default=None, description="Agent config fields that override the persona's"
    )
    pathway_id: str | None = None
    pathway_version: Version | None = None
    start_node_id: str | None = Field(default=None, max_length=100)
    disposition_ids: list[str] | None = None
    citation_schema_ids: list[str] | None = None
    quiet_hours: dict[str, Any] | Literal[False] | None = Field(
        default=None,
        description='{"start": "21:00", "end": "08:00", "timezone": optional}, or false',
    )


class MessageCreate(_Strict):
    """``POST /v1/messages``: one message to one recipient."""

    to: str = Field(description="Recipient in E.164, e.g. +14155552671", max_length=32)
    from_: str | None = Field(
        default=None, alias="from", description="A number of the project's pool", max_length=32
    )
    body: str | None = Field(default=None, description="Text; {{variables}} are filled")
    media_urls: list[str] = Field(default_factory=list)
    channel: Channel | None = None
    send_at: Moment | None = Field(default=None, description="ISO 8601 or unix seconds")
    metadata: dict[str, Any] = Field(default_factory=dict)
    external_id: str | None = Field(default=None, max_length=200)
    validity_seconds: int | None = Field(default=None, gt=0, le=MAX_VALIDITY_SECONDS)
    variables: dict[str, Any] = Field(default_factory=dict)
    literal: bool = Field(
        default=False, description="Send the body as written: no {{variables}} filling"
    )
    conversation: ConversationOptions | None = None
    template_id: str | None = Field(
        default=None,
        max_length=200,
        description="A stored template (id or key) to send instead of body; variables fill it",
    )
    new_conversation: bool = Field(
        default=False, description="End the open conversation with this person; start anew"
    )
    send_style: str | None = Field(
        default=None,
        description="iMessage expressive effect (celebration, fireworks, lasers, love, "
        "confetti, balloons, spotlight, echo, invisible, gentle, loud, slam); iMessage only",
    )
    reply_to_message_id: str | None = Field(
        default=None,
        max_length=40,
        description="Answer this message of the same conversation inline (iMessage)",
    )


class Recipient(_Strict):
    """One recipient of a batch, with its own overrides."""

    to: str = Field(max_length=32)
    body: str | None = None
    variables: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    send_at: Moment | None = None
    external_id: str | None = Field(default=None, max_length=200)
    media_urls: list[str] | None = None


def _recipient_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "str"
    return "Recipient" if isinstance(value, dict | Recipient) else None


# A number or an object, told apart up front so an error names the fault of the one the
# client meant (not also "Input should be a valid string" for every object).
RecipientItem = Annotated[
    Annotated[str, Tag("str")] | Annotated[Recipient, Tag("Recipient")],
    Discriminator(
        _recipient_kind,
        custom_error_type="recipient_type",
        custom_error_message="must be a phone number or an object with 'to'",
    ),
]


class BatchCreate(_Strict):
    """``POST /v1/batches``: up to 10,000 recipients, accepted all or nothing."""

    recipients: list[RecipientItem] = Field(min_length=1)
    from_: str | None = Field(default=None, alias="from", max_length=32)
    body: str | None = None
    media_urls: list[str] = Field(default_factory=list)
    channel: Channel | None = None
    send_at: Moment | None = None
    spacing_seconds: float | None = Field(default=None, ge=0, le=MAX_SPACING_SECONDS)
    metadata: dict[str, Any] = Field(default_factory=dict)
    validity_seconds: int | None = Field(default=None, gt=0, le=MAX_VALIDITY_SECONDS)
    variables: dict[str, Any] = Field(default_factory=dict)
    literal: bool = Field(
        default=False, description="Send the body as written: no {{variables}} filling"
    )
    conversation: ConversationOptions | None = None
    new_conversation: bool = False


class MessagePage(BaseModel):
    data: list[Message]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page")


class Batch(BaseModel):
    id: str
    object: Literal["batch"] = "batch"
    total: int
    counts: dict[str, int] = Field(description="Messages per status")
    completed: int = Field(description="Messages in a final status")
    metadata: dict[str, Any]
    created_at: datetime
    message_ids: list[str] | None = Field(
        default=None, description="In recipient order; returned when the batch is created"
    )


class NumberCreate(_Strict):
    number: str = Field(max_length=32)
    provider: str | None = Field(
        default=None, description="Default: the account's provider, else simulator"
    )
    provider_account_id: str | None = Field(
        default=None, max_length=40, description="The carrier account this number belongs to"
    )
    capabilities: list[Channel] | None = Field(
        default=None, description="Default: sms and mms (sms for an SMPP number)"
    )
    throughput_mps: float = Field(
        default=1.0, gt=0, le=MAX_THROUGHPUT_MPS, description="Messages per second"
    )
    price_per_segment: Decimal = Field(default=Decimal("0"), ge=0, le=MAX_PRICE_PER_SEGMENT)
    currency: str = Field(default="USD", min_length=3, max_length=3)
    settings: dict[str, Any] = Field(default_factory=dict)


class Number(BaseModel):
    id: str
    object: Literal["number"] = "number"
    number: str
    provider: str
    country: str | None
    capabilities: list[Channel]
    throughput_mps: float
    price_per_segment: Decimal
    currency: str
    settings: dict[str, Any]
    created_at: datetime
    provider_account_id: str | None = None
    callback_url: str | None = Field(
        default=None, description="Paste into the carrier console for inbound texts and receipts"
    )


class NumberList(BaseModel):
    data: list[Number]


class Project(BaseModel):
    id: str
    object: Literal["project"] = "project"
    name: str
    settings: dict[str, Any]
    default_persona_id: str | None = Field(
        default=None,
        description="The persona that answers conversations no setting gives an agent",
    )


class ProjectUpdate(_Strict):
    name: str | None = Field(default=None, max_length=200)
    settings: dict[str, Any] = Field(default_factory=dict)
    default_persona_id: str | None = Field(
        default=None,
        max_length=40,
        description="A published persona of the project (id or alias); null clears it",
    )


class SimulatorInbound(_Strict):
    """A text from a simulated person, injected as a carrier webhook would deliver it."""

    from_: str = Field(alias="from", max_length=32)
    to: str = Field(max_length=32)
    body: str = ""
    media_urls: list[str] = Field(default_factory=list)


ReactionKind = Literal["love", "like", "dislike", "laugh", "emphasize", "question"]


class ReactionCreate(_Strict):
    """An iMessage tapback on a message."""

    reaction: ReactionKind


class SimulatorReaction(_Strict):
    """A simulated person's tapback on one of our iMessage messages."""

    message_id: str = Field(max_length=40)
    reaction: ReactionKind


class Reaction(BaseModel):
    id: str
    object: Literal["reaction"] = "reaction"
    message_id: str
    conversation_id: str | None
    direction: Literal["outbound", "inbound"]
    reaction: ReactionKind
    channel: str
    from_: str = Field(alias="from")
    to: str
    created_at: datetime

    model_config = ConfigDict(populate_by_name=True)


class ReactionList(BaseModel):
    data: list[Reaction]


class MessageEvent(BaseModel):
    id: str
    seq: int
    type: str
    message_id: str
    status: MessageStatus
    data: dict[str, Any]
    created_at: datetime


class Problem(BaseModel):
    """RFC 9457 problem details, with a stable machine ``code`` and per-field errors."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[dict[str, str]] = Field(default_factory=list)


class ProviderAccountCreate(_Strict):
    """``POST /v1/provider-accounts``: credentials at a carrier (checked before saving)."""

    provider: str = Field(max_length=40, description="twilio, telnyx, vonage, plivo or smpp")
    name: str = Field(min_length=1, max_length=200)
    credentials: dict[str, str] = Field(
        description=(
            "twilio: account_sid, auth_token (+messaging_service_sid); telnyx: api_key, "
            "public_key (+messaging_profile_id); vonage: api_key, api_secret, application_id, "
            "private_key, signature_secret; plivo: auth_id, auth_token; smpp: system_id, "
            "password (+system_type)"
        )
    )
    api_base_url: str | None = Field(
        default=None, max_length=500, description="Default: the carrier's public API"
    )


class LlmCredentialsUpdate(_Strict):
    """The project's own LLM API key: sent to the servers its LLM personas name."""

    api_key: str = Field(min_length=1, max_length=1000, description="Write-only")


class LlmCredentials(BaseModel):
    """Whether the project has an LLM API key; the key itself is never returned."""

    object: Literal["llm_credentials"] = "llm_credentials"
    api_key_set: bool
    api_key_hint: str | None = Field(description="The key's last four characters, e.g. …a1b2")
    updated_at: datetime | None


class ProviderAccount(BaseModel):
    """A provider account. Credentials are never returned: ``credentials_set`` names them."""

    id: str
    object: Literal["provider_account"] = "provider_account"
    provider: str
    name: str
    api_base_url: str
    credentials_set: list[str]
    callback_url: str | None = Field(
        description="Paste into the carrier console for inbound texts and receipts; null for "
        "SMPP (they come over the session)"
    )
    created_at: datetime


class ProviderAccountList(BaseModel):
    data: list[ProviderAccount]


# -- API keys -----------------------------------------------------------------------------


class ApiKeyCreate(_Strict):
    """``POST /v1/api-keys``: a new key for the calling project."""

    name: str = Field(description="What the key is for, e.g. 'billing agent'", max_length=200)


class ApiKey(BaseModel):
    """An API key without its secret; ``prefix`` is its first 8 characters."""

    id: str
    object: Literal["api_key"] = "api_key"
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKey):
    """A key just created: ``key`` is the secret, shown this once only."""

    key: str


class ApiKeyList(BaseModel):
    data: list[ApiKey]


OptOutSource = Literal["keyword", "api", "import", "dashboard"]


class OptOut(BaseModel):
    """A person on the suppression list: nothing but compliance answers reaches them."""

    object: Literal["opt_out"] = "opt_out"
    phone_number: str = Field(description="The person, in E.164")
    scope: Literal["project"] = Field(
        default="project", description="What it covers: every sender number of the project"
    )
    source: OptOutSource = Field(
        description="keyword (the person texted an opt-out word), api, import (CSV), dashboard"
    )
    keyword: str | None = Field(description="The words the person texted (source keyword)")
    number: str | None = Field(description="Our number the keyword arrived at")
    created_at: datetime


class OptOutPage(BaseModel):
    data: list[OptOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page")


class OptOutCreate(_Strict):
    phone_number: str = Field(max_length=32)
    keyword: str | None = Field(
        default=None, max_length=40, description="What the person said, if they said it elsewhere"
    )


class OptOutImport(BaseModel):
    """A CSV import: every row was added or already on the list."""

    object: Literal["opt_out_import"] = "opt_out_import"
    added: int
    already: int


class Contact(BaseModel):
    """A person of the project's address book."""

    id: str
    object: Literal["contact"] = "contact"
    phone_number: str = Field(description="The person, in E.164 (one contact per number)")
    name: str
    email: str | None
    notes: str | None
    timezone: str | None = Field(
        description=(
            "IANA zone the person's replies are read in and their quiet hours kept in; "
            "null: the conversation's timezone metadata, then the zone their number implies"
        )
    )
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class ContactPage(BaseModel):
    data: list[Contact]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page")


class ContactCreate(_Strict):
    phone_number: str = Field(max_length=40, description="Any format; stored in E.164")
    name: str = Field(max_length=200)
    email: str | None = Field(default=None, max_length=320)
    notes: str | None = Field(default=None, max_length=10_000)
    timezone: str | None = Field(
        default=None, max_length=64, description="IANA zone, e.g. America/Los_Angeles"
    )
    metadata: dict[str, Any] | None = None


class ContactUpdate(_Strict):
    """Only the fields given change; ``null`` empties ``email``, ``notes``, ``timezone`` and
    ``metadata``."""

    phone_number: str | None = Field(default=None, max_length=40)
    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    notes: str | None = Field(default=None, max_length=10_000)
    timezone: str | None = Field(default=None, max_length=64)
    metadata: dict[str, Any] | None = None


ConversationStatus = Literal["open", "needs_attention", "ended", "opted_out"]


class Conversation(BaseModel):
    """A thread between one of the project's numbers and a person."""

    id: str
    object: Literal["conversation"] = "conversation"
    status: ConversationStatus
    agent_number: str
    user_number: str
    channel: str
    persona_id: str | None
    agent_paused: bool
    metadata: dict[str, Any]
    settings: dict[str, Any] = Field(description="As given at send time (not the defaults)")
    outcome: str | None
    extracted: dict[str, Any]
    end_reason: str | None
    current_node_id: str | None
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None
    messages: list[Message] | None = Field(default=None, description="Oldest first")


class ConversationPage(BaseModel):
    data: list[Conversation]
    next_cursor: str | None
    total: int | None = Field(default=None, description="Every match (with_total=true)")


class ConversationMessageCreate(_Strict):
    """A text a human sends within the conversation; the agent is paused."""

    body: str | None = None
    media_urls: list[str] = Field(default_factory=list)


class ConversationEnd(_Strict):
    outcome: str | None = Field(default=None, max_length=100)
    extracted: dict[str, Any] | None = None


class ConversationUpdate(_Strict):
    metadata: dict[str, Any] | None = Field(
        default=None, description="Merged; a null value removes the key"
    )
    context: str | None = Field(default=None, max_length=20_000)
    task_context: str | None = Field(default=None, max_length=20_000)


class AgentControl(_Strict):
    paused: bool = Field(description="true: a human answers; false: the agent answers again")


class PersonaVersionCreate(_Strict):
    """An agent config (``agent``) or a stored pathway (``pathway_id``)."""

    agent: dict[str, Any] | None = None
    pathway_id: str | None = None
    pathway_version: Version | None = None


class PersonaCreate(PersonaVersionCreate):
    name: str | None = Field(
        default=None, max_length=200, description="Required unless from a pathway_template"
    )
    pathway_template: str | None = Field(
        default=None,
        max_length=100,
        description="Run a copy of this shipped pathway (GET /v1/pathway-templates); the "
        "persona is named after it unless name is given",
    )
    publish: bool = Field(default=False, description="Make version 1 the production version")
    alias: int | None = Field(
        default=None,
        ge=1,
        le=INT32_MAX,
        description="Its numeric alias (unique in the project); the next free one if absent",
    )


class PathwayTemplate(BaseModel):
    """A pathway agentsms ships, ready to run as a persona."""

    id: str
    object: Literal["pathway_template"] = "pathway_template"
    name: str
    description: str
    document: dict[str, Any]


class PathwayTemplateList(BaseModel):
    data: list[PathwayTemplate]


class PersonaVersion(BaseModel):
    version: int
    config: dict[str, Any]
    created_at: datetime


class Persona(BaseModel):
    id: str
    object: Literal["persona"] = "persona"
    alias: int = Field(description="A small number naming the persona in this project")
    name: str
    production_version: int | None
    versions: list[PersonaVersion]
    created_at: datetime
    updated_at: datetime


class PersonaList(BaseModel):
    data: list[Persona]


class PathwayVersionCreate(_Strict):
    document: dict[str, Any] | str = Field(
        description="The pathway: a JSON object, or its JSON or YAML text"
    )


class PathwayCreate(PathwayVersionCreate):
    name: str = Field(max_length=200)


class PathwayVersion(BaseModel):
    version: int
    document: dict[str, Any]
    created_at: datetime


class Pathway(BaseModel):
    id: str
    object: Literal["pathway"] = "pathway"
    name: str
    versions: list[PathwayVersion]
    created_at: datetime


class PathwayList(BaseModel):
    data: list[Pathway]


class DispositionCreate(_Strict):
    name: str = Field(max_length=100)
    description: str | None = Field(default=None, max_length=2000)


class Disposition(BaseModel):
    id: str
    object: Literal["disposition"] = "disposition"
    name: str
    description: str | None
    created_at: datetime


class DispositionList(BaseModel):
    data: list[Disposition]


class ExtractionSchemaCreate(_Strict):
    name: str = Field(max_length=100)
    definition: dict[str, Any] = Field(alias="schema", description="A JSON schema (object)")


class ExtractionSchema(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str
    object: Literal["extraction_schema"] = "extraction_schema"
    name: str
    definition: dict[str, Any] = Field(alias="schema")
    created_at: datetime


class ExtractionSchemaList(BaseModel):
    data: list[ExtractionSchema]


class SimulatedPerson(_Strict):
    """A scripted person: the simulator answers texts to ``number`` with ``replies`` in order."""

    number: str | None = Field(default=None, max_length=32)
    replies: list[str] = Field(min_length=1)
    delay_seconds: float = Field(default=1.0, ge=0, le=3600)


class TemplateCreate(_Strict):
    """``POST /v1/templates``: a message body with ``{{variable}}`` placeholders."""

    name: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=1600, description="e.g. 'Hi {{1}}, ...'")
    key: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Your own handle for it (e.g. a Twilio content SID); usable as template_id",
    )


class Template(BaseModel):
    id: str
    name: str
    key: str | None
    body: str
    variables: list[str] = Field(description="The placeholder names, in order of first use")
    created_at: datetime


class TemplatePage(BaseModel):
    data: list[Template]
    next_cursor: str | None
