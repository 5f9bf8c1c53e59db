"""agentsms: a self-hostable messaging gateway for AI agents, and its Python SDK.

``import agentsms`` loads only the SDK (httpx and pydantic), never the server.
"""

from agentsms.client import (
    AgentsmsClientError,
    ApiError,
    AsyncClient,
    AuthenticationError,
    BadRequestError,
    Batch,
    Client,
    ConflictError,
    ConnectionFailed,
    Conversation,
    Message,
    MessageEvent,
    NotFoundError,
    Number,
    Page,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    UnprocessableError,
)
from agentsms.version import __version__

__all__ = [
    "AgentsmsClientError",
    "ApiError",
    "AsyncClient",
    "AuthenticationError",
    "BadRequestError",
    "Batch",
    "Client",
    "ConflictError",
    "ConnectionFailed",
    "Conversation",
    "Message",
    "MessageEvent",
    "NotFoundError",
    "Number",
    "Page",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
    "UnprocessableError",
    "__version__",
]
