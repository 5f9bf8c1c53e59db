"""Agent configs: the ``agent`` object of a persona version, validated by kind.

The bottom of ``agents/``: pathways, the flow agent, the LLM and webhook agents import their
configs from here, and this module imports none of them (``agents.build_agent`` turns a
config into its agent)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agentsms.errors import FieldError, ValidationFailed

AGENT_KINDS = ("flow", "llm", "webhook")
NO_ENV_NAMES = (
    "is not accepted: a persona never names a server environment variable; store the "
    "project's own LLM API key with PUT /v1/llm-credentials"
)


SECRET_FIELDS = frozenset({"secret"})
"""Agent config fields that are written but never read back (a webhook agent's secret)."""


def without_secrets(value: Any) -> Any:
    """``value`` (an agent config, or settings holding one) as reads show it: each secret
    replaced by ``<name>_set: true``."""
    if isinstance(value, Mapping):
        shown: dict[str, Any] = {}
        for key, item in value.items():
            if key in SECRET_FIELDS and isinstance(item, str):
                shown[f"{key}_set"] = True
            else:
                shown[key] = without_secrets(item)
        return shown
    if isinstance(value, list):
        return [without_secrets(item) for item in value]
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL with a host")
    return value


class FlowAgentConfig(_Model):
    """``{"kind": "flow", "pathway": {...}}``: a deterministic pathway."""

    kind: Literal["flow"]
    pathway: dict[str, Any]


class LlmAgentConfig(_Model):
    """An OpenAI-compatible chat-completions agent."""

    kind: Literal["llm"] = "llm"
    model: Annotated[str, Field(min_length=1)]
    base_url: str | None = None
    """Default: the operator's LLM server (``AGENTSMS_LLM_BASE_URL``, the OpenAI API unless
    set). Any OpenAI-compatible server (vLLM, Ollama, ...); the project's stored key (if
    any) is sent to it, never the operator's."""
    system_prompt: str = ""
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=100_000)
    timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    max_history: int = Field(default=50, ge=1, le=1000)
    """Only the newest texts are sent to the model."""

    _check_base_url = field_validator("base_url")(
        lambda value: None if value is None else _http_url(value)
    )


class WebhookAgentConfig(_Model):
    """``{"kind": "webhook", "url": ..., "secret": ...}``: the customer's own agent."""

    kind: Literal["webhook"]
    url: str
    secret: Annotated[str, Field(min_length=1)]
    """A Standard Webhooks secret (``whsec_`` + base64)."""
    timeout_seconds: float = Field(default=15.0, gt=0, le=60)

    _check_url = field_validator("url")(_http_url)

    @field_validator("secret")
    @classmethod
    def _check_secret(cls, value: str) -> str:
        encoded = value.removeprefix("whsec_")
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("must be a Standard Webhooks secret: whsec_ + base64") from None
        if len(key) < 16:
            raise ValueError("the secret must hold at least 16 random bytes")
        return value


AgentConfig = FlowAgentConfig | LlmAgentConfig | WebhookAgentConfig
_MODELS: dict[str, type[FlowAgentConfig] | type[LlmAgentConfig] | type[WebhookAgentConfig]] = {
    "flow": FlowAgentConfig,
    "llm": LlmAgentConfig,
    "webhook": WebhookAgentConfig,
}


def _errors(error: ValidationError, prefix: str) -> list[FieldError]:
    found = []
    for item in error.errors():
        path = prefix + "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in item["loc"]
        )
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "missing":
            message = "required"
        elif item["type"] == "extra_forbidden":
            message = NO_ENV_NAMES if item["loc"][-1:] == ("api_key_env",) else "unknown field"
        found.append(FieldError(path, message))
    return found


def check_llm_config(raw: Any, prefix: str) -> list[FieldError]:
    """Problems of an embedded ``llm`` config (as in a pathway's llm node)."""
    if not isinstance(raw, Mapping):
        return [FieldError(prefix, "must be an object")]
    try:
        LlmAgentConfig.model_validate(raw)
    except ValidationError as exc:
        return _errors(exc, prefix)
    return []


def _fail(errors: Sequence[FieldError], code: str = "invalid_agent_config") -> ValidationFailed:
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return ValidationFailed(f"{first.field}: {first.message}{more}", errors=errors, code=code)


def parse_agent_config(config: Any, prefix: str = "agent") -> AgentConfig:
    """Validate an agent config's fields by kind; raise :class:`ValidationFailed`. (A flow
    agent's pathway is checked by ``agents.validate_agent_config``, which knows pathways.)"""
    if not isinstance(config, Mapping):
        raise _fail([FieldError(prefix, "must be an object")])
    kind = config.get("kind")
    if kind not in _MODELS:
        raise _fail([FieldError(f"{prefix}.kind", f"must be one of {', '.join(AGENT_KINDS)}")])
    try:
        parsed = _MODELS[kind].model_validate(config)
    except ValidationError as exc:
        raise _fail(_errors(exc, prefix)) from None
    return parsed
