"""agentsms: a self-hostable messaging gateway for AI agents, and its Python SDK.

``import agentsms`` loads only the SDK (httpx and pydantic), never the server.
"""

__version__ = "0.1.0"

# The version first: the SDK reads it for its User-Agent.
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
