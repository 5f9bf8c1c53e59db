"""Hand-written request examples and the problem codes of each operation in ``/openapi.json``.

FastAPI generates the schema from the routes; :func:`install` makes ``app.openapi`` merge in
what it cannot know: a realistic request body per operation (Swagger UI otherwise fills
every field with ``"string"``) and, per error status, the problem ``code``s the operation
answers with. Codes every native operation shares (a missing key, a bad field, a missing
path object, an unavailable database) are derived from the operation's shape; the codes
particular to an operation are listed in :data:`PROBLEMS`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from agentsms.api import schemas
from agentsms.api.problems import PROBLEM_JSON

Operation = tuple[str, str]
"""``(METHOD, path)`` as the schema names it, e.g. ``("POST", "/v1/messages")``."""

Example = dict[str, Any]
"""An OpenAPI Example Object: ``summary`` and ``value``."""

PERSON = "+14155550123"
OUR_NUMBER = "+14155550100"
ULID = "01JH8Z3K4W5X6Y7Z8A9B0C1D2E"

SAMPLE_PATHWAY: dict[str, Any] = {
    "name": "Appointment reminder",
    "start": "greet",
    "variables": {"name": "there"},
    "nodes": [
        {"id": "greet", "type": "say", "text": "Hi {{name}}!", "next": "question"},
        {
            "id": "question",
            "type": "ask",
            "text": "Your appointment is tomorrow at 3 PM. Reply YES to confirm.",
            "answers": [
                {"keywords": ["yes", "confirm"], "next": "done"},
                {"intent": "cancel", "next": "cancelled"},
            ],
            "unclear": {"max_retries": 2, "next": "cancelled"},
        },
        {"id": "done", "type": "end", "outcome": "confirmed"},
        {"id": "cancelled", "type": "end", "outcome": "cancelled"},
    ],
}


def _example(summary: str, value: Any) -> Example:
    return {"summary": summary, "value": value}


EXAMPLES: dict[Operation, dict[str, Example]] = {
    ("POST", "/v1/opt-outs"): {
        "opt_out": _example(
            "A person who asked by phone not to be texted",
            {"phone_number": "+14155550142", "keyword": "do not text me"},
        ),
    },
    ("POST", "/v1/messages"): {
        "sms": _example("A text", {"to": PERSON, "body": "Your table for 2 is ready."}),
        "scheduled": _example(
            "Scheduled, with metadata and a validity",
            {
                "to": PERSON,
                "from": OUR_NUMBER,
                "body": "Reminder: dentist tomorrow at 3 PM.",
                "send_at": "2030-01-15T09:00:00Z",
                "validity_seconds": 3600,
                "metadata": {"appointment_id": "A-1042"},
            },
        ),
        "conversation": _example(
            "Open a conversation an agent follows",
            {
                "to": PERSON,
                "body": "Hi Jane, can you confirm tomorrow's 3 PM appointment? Reply YES.",
                "new_conversation": True,
                "conversation": {
                    "context": "Jane booked a cleaning for tomorrow 3 PM.",
                    "metadata": {"crm_id": "C-77"},
                },
            },
        ),
    },
    ("POST", "/v1/messages/{message_id}/reactions"): {
        "love": _example("A heart on an iMessage message", {"reaction": "love"}),
    },
    ("POST", "/v1/batches"): {
        "personalised": _example(
            "One body, a variable per recipient",
            {
                "body": "Hi {{name}}, your order ships today.",
                "recipients": [
                    {"to": "+14155550124", "variables": {"name": "Ann"}},
                    {"to": "+14155550125", "variables": {"name": "Bo"}},
                ],
                "spacing_seconds": 1,
            },
        ),
    },
    ("POST", "/v1/numbers"): {
        "simulator": _example(
            "A simulated number",
            {"number": "+14155550199", "provider": "simulator", "throughput_mps": 10},
        ),
    },
    ("PATCH", "/v1/project"): {
        "rate": _example(
            "Rename and set the send rate",
            {"name": "Clinic", "settings": {"rate_limit_per_second": 20}},
        ),
    },
    ("POST", "/v1/api-keys"): {"ci": _example("A key for CI", {"name": "ci-pipeline"})},
    ("POST", "/v1/simulator/inbound"): {
        "reply": _example(
            "A simulated person answers", {"from": PERSON, "to": OUR_NUMBER, "body": "YES"}
        ),
    },
    ("POST", "/v1/simulator/reactions"): {
        "like": _example(
            "A simulated person likes one of our iMessage messages",
            {"message_id": "msg_01JH8Z3K4W5X6Y7Z8A9B0C1D2E", "reaction": "like"},
        ),
    },
    ("PUT", "/v1/simulator/people/{number}"): {
        "script": _example(
            "Answers in order, 2 s after each text",
            {"replies": ["Who is this?", "OK, yes"], "delay_seconds": 2},
        ),
    },
    ("POST", "/v1/provider-accounts"): {
        "twilio": _example(
            "A Twilio account",
            {
                "provider": "twilio",
                "name": "Twilio production",
                "credentials": {
                    "account_sid": "AC0123456789abcdef0123456789abcdef",
                    "auth_token": "0123456789abcdef0123456789abcdef",
                },
            },
        ),
    },
    ("POST", "/v1/webhook-endpoints"): {
        "all": _example(
            "Every delivery status change",
            {
                "url": "https://hooks.example.com/agentsms",
                "event_types": ["message.delivered", "message.failed"],
                "description": "CRM status sync",
            },
        ),
    },
    ("PATCH", "/v1/webhook-endpoints/{endpoint_id}"): {
        "disable": _example("Disable the endpoint", {"enabled": False}),
    },
    ("PATCH", "/v1/conversations/{conversation_id}"): {
        "context": _example(
            "Merge metadata and tell the agent more",
            {"metadata": {"priority": "high"}, "context": "Jane prefers mornings."},
        ),
    },
    ("POST", "/v1/conversations/{conversation_id}/messages"): {
        "human": _example("A person on staff answers", {"body": "This is Sam from the clinic."}),
    },
    ("POST", "/v1/conversations/{conversation_id}/end"): {
        "end": _example("No options: the body may be empty", {}),
    },
    ("POST", "/v1/conversations/{conversation_id}/agent"): {
        "pause": _example("A human takes over", {"paused": True}),
        "resume": _example("The agent answers again", {"paused": False}),
    },
    ("POST", "/v1/personas"): {
        "flow": _example(
            "A flow agent, published at once",
            {
                "name": "Reminder bot",
                "publish": True,
                "agent": {"kind": "flow", "pathway": SAMPLE_PATHWAY},
            },
        ),
    },
    ("POST", "/v1/personas/{persona_id}/versions"): {
        "flow": _example(
            "A new draft with a changed pathway",
            {"agent": {"kind": "flow", "pathway": SAMPLE_PATHWAY}},
        ),
    },
    ("POST", "/v1/pathways"): {
        "reminder": _example(
            "An appointment reminder", {"name": "Appointment reminder", "document": SAMPLE_PATHWAY}
        ),
    },
    ("POST", "/v1/pathways/{pathway_id}/versions"): {
        "reminder": _example("Version 2 of the document", {"document": SAMPLE_PATHWAY}),
    },
    ("POST", "/v1/dispositions"): {
        "booked": _example(
            "An outcome a conversation can end with",
            {"name": "booked", "description": "The person booked a visit"},
        ),
    },
    ("POST", "/v1/extraction-schemas"): {
        "visit": _example(
            "What to pull out of a conversation",
            {
                "name": "visit",
                "schema": {
                    "type": "object",
                    "properties": {
                        "party_size": {"type": "integer", "minimum": 1},
                        "day": {"enum": ["weekday", "weekend"]},
                    },
                },
            },
        ),
    },
    ("PUT", "/v1/llm-credentials"): {
        "openai": _example("An OpenAI-compatible key", {"api_key": "sk-proj-0123456789abcdef"}),
    },
    ("POST", "/v1/contacts"): {
        "contact": _example(
            "A person in Los Angeles",
            {
                "phone_number": "+14155550143",
                "name": "Ana Ruiz",
                "timezone": "America/Los_Angeles",
                "metadata": {"customer_id": "c-1042"},
            },
        ),
    },
    ("PATCH", "/v1/contacts/{contact_id}"): {
        "moved": _example("The person moved to New York", {"timezone": "America/New_York"}),
    },
    ("POST", "/v1/templates"): {
        "reminder": _example(
            "A reminder with two placeholders",
            {
                "name": "Appointment reminder",
                "key": "appointment-reminder",
                "body": "Hi {{name}}, see you on {{day}}.",
            },
        ),
    },
    # Vendor-compatible surfaces: after the vendors' own documentation examples.
    ("POST", "/compat/telegent/v1.0/oauth2/tokens"): {
        "token": _example(
            "Exchange the project id and an API key",
            {"AccountKey": "proj_01JH8Z3K4W5X6Y7Z8A9B0C1D2E", "AccountSecret": "ask_live_key"},
        ),
    },
    ("POST", "/compat/telegent/v1.0/message/outbound"): {
        "telegent": _example(
            "Telegent's documented request",
            {
                "CampaignId": "JCID-dsuhofh3882",
                "To": [{"Number": "+18015737111"}, {"Number": "+18014271919"}],
                "From": "+18018018011",
                "Owner": "+18018018011",
                "Body": "Hello there!!!",
                "MmsMedia": [{"MediaUrl": "https://results2.com"}],
            },
        ),
    },
    ("POST", "/compat/bland/v1/sms/send"): {
        "bland": _example(
            "Bland's documented request",
            {
                "user_number": "+14155551234",
                "agent_number": "+14155550100",
                "agent_message": "Hi! This is a reminder of your appointment tomorrow.",
                "metadata": {"campaign": "reminders"},
            },
        ),
    },
    ("POST", "/compat/agentphone/v1/messages"): {
        "agentphone": _example(
            "AgentPhone's documented request",
            {
                "agent_id": "agent_12345abcde",
                "to_number": "+14155552671",
                "body": "Hello! Your appointment is confirmed for tomorrow at 3 PM.",
            },
        ),
    },
    ("POST", "/compat/agentphone/v1/messages/{message_id}/reactions"): {
        "love": _example("A tapback", {"reaction": "love"}),
    },
    ("POST", "/compat/agentphone/v1/agents"): {
        "agent": _example(
            "An agent with a prompt",
            {
                "name": "Support",
                "description": "Answers order questions",
                "systemPrompt": "You answer questions about orders, briefly.",
                "beginMessage": "Hi! How can I help?",
            },
        ),
    },
    ("PATCH", "/compat/agentphone/v1/conversations/{conversation_id}"): {
        "metadata": _example("Replace the metadata", {"metadata": {"ticket": "T-88"}}),
    },
    ("POST", "/compat/agentphone/v1/webhooks"): {
        "webhook": _example(
            "Where inbound texts go", {"url": "https://hooks.example.com/agentphone", "timeout": 10}
        ),
    },
    ("POST", "/compat/agentphone/v1/numbers"): {
        "number": _example("A US number in area code 415", {"country": "US", "areaCode": "415"}),
    },
    ("PATCH", "/compat/agentphone/v1/numbers/{number_id}"): {
        "external": _example("Your own id for the number", {"externalId": "store-042"}),
    },
    ("POST", "/compat/agentphone/v1/contacts"): {
        "contact": _example(
            "A person of the address book",
            {"phoneNumber": "+14155550131", "name": "Jane Doe", "email": "jane@example.com"},
        ),
    },
    ("PATCH", "/compat/agentphone/v1/contacts/{contact_id}"): {
        "notes": _example("New notes", {"notes": "Prefers texts after 5 PM."}),
    },
    ("PATCH", "/compat/agentphone/v1/agents/{agent_id}"): {
        "prompt": _example(
            "A new prompt and greeting",
            {
                "systemPrompt": "You book tables, briefly.",
                "beginMessage": "Hi! Table for how many?",
            },
        ),
    },
    ("POST", "/compat/agentphone/v1/agents/{agent_id}/numbers"): {
        "attach": _example("Give the agent a number", {"numberId": f"num_{ULID}"}),
    },
    ("POST", "/compat/agentphone/v1/agents/{agent_id}/webhook"): {
        "webhook": _example(
            "Where this agent's texts go", {"url": "https://hooks.example.com/agentphone/support"}
        ),
    },
    ("POST", "/compat/agentphone/v1/webhooks/test"): {
        "test": _example("A test text", {"message": "Hello from the webhook test."}),
    },
    ("POST", "/compat/telegent/v1.0/numbers/provision"): {
        "number": _example("A US number in area code 801", {"Country": "US", "AreaCode": "801"}),
    },
    ("POST", "/compat/polyai/v1/outbound-sms"): {
        "polyai": _example(
            "PolyAI's documented request",
            {
                "message": "Hi Jane, your appointment is confirmed for tomorrow at 2pm. "
                "Reply to this message if you need to reschedule.",
                "user_number": "+14155551234",
            },
        ),
    },
    ("POST", "/compat/vida/api/v2/agent/outboundSms"): {
        "single": _example(
            "Single target, backwards compatible",
            {"target": "+14155550126", "content": "Hi, quick reminder for tomorrow at 10am."},
        ),
        "targets": _example(
            "Multiple targets with shared content",
            {
                "targets": ["+14155550127", "+14155550128"],
                "content": "Thanks for signing up. Reply YES to confirm.",
            },
        ),
    },
}

PARAMETER_EXAMPLES: dict[tuple[str, str], Any] = {
    ("path", "message_id"): f"msg_{ULID}",
    ("path", "task_id"): f"msg_{ULID}",
    ("path", "batch_id"): f"batch_{ULID}",
    ("path", "number_id"): f"num_{ULID}",
    ("path", "key_id"): f"key_{ULID}",
    ("path", "account_id"): f"acct_{ULID}",
    ("path", "endpoint_id"): f"whe_{ULID}",
    ("path", "delivery_id"): f"whd_{ULID}",
    ("path", "conversation_id"): f"conv_{ULID}",
    ("path", "persona_id"): f"persona_{ULID}",
    ("path", "pathway_id"): f"pw_{ULID}",
    ("path", "template_id"): "appointment-reminder",
    ("path", "version"): 2,
    ("path", "number"): PERSON,
    ("path", "phone_number"): PERSON,
    ("path", "agent_id"): f"persona_{ULID}",
    ("path", "contact_id"): f"ct_{ULID}",
    ("header", "Idempotency-Key"): "order-1042-confirmation",
    ("header", "Last-Event-ID"): "1042",
    ("query", "after"): 1042,
    ("query", "cursor"): f"msg_{ULID}",
    ("query", "limit"): 50,
    ("query", "to"): PERSON,
    ("query", "from"): OUR_NUMBER,
    ("query", "user_number"): PERSON,
    ("query", "agent_number"): OUR_NUMBER,
    ("query", "created_after"): "2030-01-15T00:00:00Z",
    ("query", "created_before"): "2030-01-16T00:00:00Z",
}
"""Example values of path, header and query parameters, by where they are and their name."""

MEANINGS: dict[str, str] = {
    "unauthorized": "no API key, or one that is unknown or revoked",
    "rate_limited": "too many requests (the project's rate, or failed key checks); see Retry-After",
    "validation_failed": "a field, parameter or header is invalid; `errors` names each field",
    "not_found": "the object in the path does not exist in this project",
    "request_too_large": "the body is larger than AGENTSMS_MAX_REQUEST_BYTES",
    "database_unavailable": "the database is locked, busy or unreachable; see Retry-After",
    "idempotency_key_reused": "the Idempotency-Key was used with a different request",
    "idempotency_key_in_flight": "a request with this Idempotency-Key is still running",
    "invalid_idempotency_key": "the Idempotency-Key header is empty or too long",
    "unsafe_url": "a URL is not https or points at a loopback or private address",
    "spend_cap_reached": "the project's daily segment or spend cap is reached",
    "not_cancelable": "the message is past scheduled/queued",
    "reactions_unsupported": "the message was not sent over iMessage",
    "number_exists": "the number is already in the pool",
    "last_api_key": "the project's last active key cannot be revoked",
    "credentials_rejected": "the carrier refused the credentials",
    "carrier_unavailable": "the carrier could not be asked; nothing was stored",
    "account_in_use": "a number still uses the account",
    "secret_key_missing": "AGENTSMS_SECRET_KEY is not set, so credentials cannot be stored",
    "conversation_not_active": "the conversation has ended",
    "alias_taken": "another persona has this alias",
    "invalid_pathway": "the pathway document or graph is invalid; `errors` names each node",
    "disposition_exists": "a disposition with this name exists",
    "schema_exists": "an extraction schema with this name exists",
    "template_key_taken": "a template with this key exists",
    "contact_exists": "the project has a contact with this phone number",
}

_IDEMPOTENT_SEND = (
    (422, "idempotency_key_reused"),
    (409, "idempotency_key_in_flight"),
    (422, "invalid_idempotency_key"),
    (422, "unsafe_url"),
    (429, "spend_cap_reached"),
)
_PATHWAY = ((422, "invalid_pathway"), (422, "unsafe_url"))

PROBLEMS: dict[Operation, tuple[tuple[int, str], ...]] = {
    ("POST", "/v1/messages"): _IDEMPOTENT_SEND,
    ("POST", "/v1/batches"): _IDEMPOTENT_SEND,
    ("POST", "/v1/messages/{message_id}/cancel"): ((409, "not_cancelable"),),
    ("POST", "/v1/messages/{message_id}/reactions"): ((422, "reactions_unsupported"),),
    ("POST", "/v1/simulator/reactions"): ((404, "not_found"), (422, "reactions_unsupported")),
    ("POST", "/v1/numbers"): ((409, "number_exists"),),
    ("DELETE", "/v1/api-keys/{key_id}"): ((409, "last_api_key"),),
    ("POST", "/v1/provider-accounts"): (
        (422, "credentials_rejected"),
        (422, "unsafe_url"),
        (502, "carrier_unavailable"),
        (503, "secret_key_missing"),
    ),
    ("DELETE", "/v1/provider-accounts/{account_id}"): ((409, "account_in_use"),),
    ("POST", "/v1/webhook-endpoints"): ((422, "unsafe_url"),),
    ("PATCH", "/v1/webhook-endpoints/{endpoint_id}"): ((422, "unsafe_url"),),
    ("POST", "/v1/conversations/{conversation_id}/messages"): ((409, "conversation_not_active"),),
    ("POST", "/v1/conversations/{conversation_id}/agent"): ((422, "conversation_not_active"),),
    ("POST", "/v1/personas"): ((404, "not_found"), (409, "alias_taken"), *_PATHWAY),
    ("POST", "/v1/personas/{persona_id}/versions"): _PATHWAY,
    ("POST", "/v1/pathways"): _PATHWAY,
    ("POST", "/v1/pathways/{pathway_id}/versions"): _PATHWAY,
    ("POST", "/v1/dispositions"): ((409, "disposition_exists"),),
    ("POST", "/v1/extraction-schemas"): ((409, "schema_exists"),),
    ("PUT", "/v1/llm-credentials"): ((503, "secret_key_missing"),),
    ("POST", "/v1/templates"): ((409, "template_key_taken"),),
    ("POST", "/v1/contacts"): ((409, "contact_exists"),),
    ("PATCH", "/v1/contacts/{contact_id}"): ((409, "contact_exists"),),
}

_TITLES = {
    401: "Unauthorized",
    404: "Not found",
    409: "Conflict",
    413: "Request too large",
    422: "Validation failed",
    429: "Too many requests",
    502: "Carrier unavailable",
    503: "Service unavailable",
}


def _shared_problems(path: str, operation: Mapping[str, Any]) -> Iterable[tuple[int, str]]:
    """The codes a native operation answers with because of its shape."""
    if operation.get("security"):
        yield 401, "unauthorized"
        yield 429, "rate_limited"
    parameters = operation.get("parameters", [])
    if parameters or "requestBody" in operation:
        yield 422, "validation_failed"
    if any(p.get("in") == "path" for p in parameters):
        yield 404, "not_found"
    if "requestBody" in operation:
        yield 413, "request_too_large"
    if path not in ("/healthz", "/readyz"):
        yield 503, "database_unavailable"


def _document_problems(operation: dict[str, Any], problems: Iterable[tuple[int, str]]) -> None:
    by_status: dict[int, list[str]] = {}
    for status, code in problems:
        codes = by_status.setdefault(status, [])
        if code not in codes:
            codes.append(code)
    responses = operation.setdefault("responses", {})
    for status, codes in sorted(by_status.items()):
        lines = "\n".join(f"- `{code}`: {MEANINGS[code]}" for code in codes)
        responses[str(status)] = {
            "description": f"{_TITLES[status]}. Problem `code`s:\n\n{lines}",
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }


def document(schema: dict[str, Any]) -> dict[str, Any]:
    """Merge :data:`EXAMPLES` and the problem codes into a generated OpenAPI ``schema``."""
    schema.setdefault("components", {}).setdefault("schemas", {}).setdefault(
        "Problem", schemas.Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    )
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            key = (method.upper(), path)
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None and key in EXAMPLES:
                body["examples"] = EXAMPLES[key]
            for parameter in operation.get("parameters", []):
                example = PARAMETER_EXAMPLES.get((parameter["in"], parameter["name"]))
                if example is not None:
                    parameter.setdefault("example", example)
            if not path.startswith("/compat/"):
                shared = _shared_problems(path, operation)
                _document_problems(operation, [*shared, *PROBLEMS.get(key, ())])
    return schema


def install(app: FastAPI) -> None:
    """Make ``app.openapi`` build the documented schema once and then serve it."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    openapi_version=app.openapi_version,
                    summary=app.summary,
                    description=app.description,
                    routes=app.routes,
                    tags=app.openapi_tags,
                    servers=app.servers,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
