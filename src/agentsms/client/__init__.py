"""The agentsms Python SDK: typed, blocking and async clients for the agentsms HTTP API.

>>> from agentsms import Client
>>> with Client("http://127.0.0.1:8000", api_key="ask_...") as client:
...     message = client.send_message("+14155552671", "Hello")

Responses are the API's own models (:mod:`agentsms.api.schemas`), so the client and the
server share one definition of a Message, Batch, Conversation, Number and event.
"""

from agentsms.api.schemas import (
    Batch,
    Contact,
    Conversation,
    Message,
    MessageEvent,
    Number,
    OptOut,
    OptOutImport,
    ProviderAccount,
)
from agentsms.client._async import AsyncClient
from agentsms.client._core import (
    DEFAULT_URL,
    BatchOptions,
    Call,
    ContactDetails,
    ContactFields,
    ContactFilters,
    ConversationFilters,
    MessageFilters,
    NumberOptions,
    OptOutFilters,
    Page,
    RetryPolicy,
    SendOptions,
    new_idempotency_key,
)
from agentsms.client._errors import (
    AgentsmsClientError,
    ApiError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ConnectionFailed,
    FieldProblem,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    StreamIdle,
    UnprocessableError,
)
from agentsms.client._follow import FINAL_STATUSES, follow_message
from agentsms.client._sync import Client

__all__ = [
    "DEFAULT_URL",
    "FINAL_STATUSES",
    "AgentsmsClientError",
    "ApiError",
    "AsyncClient",
    "AuthenticationError",
    "BadRequestError",
    "Batch",
    "BatchOptions",
    "Call",
    "Client",
    "ConflictError",
    "ConnectionFailed",
    "Contact",
    "ContactDetails",
    "ContactFields",
    "ContactFilters",
    "Conversation",
    "ConversationFilters",
    "FieldProblem",
    "Message",
    "MessageEvent",
    "MessageFilters",
    "NotFoundError",
    "Number",
    "NumberOptions",
    "OptOut",
    "OptOutFilters",
    "OptOutImport",
    "Page",
    "PermissionDeniedError",
    "ProviderAccount",
    "RateLimitError",
    "RetryPolicy",
    "SendOptions",
    "ServerError",
    "StreamIdle",
    "UnprocessableError",
    "follow_message",
    "new_idempotency_key",
]
