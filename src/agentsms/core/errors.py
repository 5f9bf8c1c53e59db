"""Domain errors: the classes of :mod:`agentsms.errors`, under the name the domain and the
edges above it use. (They are defined below every layer so that agents, webhooks and
providers raise the same classes without importing ``core``.)"""

from __future__ import annotations

from agentsms.errors import (
    AgentsmsError,
    Conflict,
    FieldError,
    NotFound,
    RateLimited,
    Unauthorized,
    ValidationFailed,
    invalid,
)

__all__ = [
    "AgentsmsError",
    "Conflict",
    "FieldError",
    "NotFound",
    "RateLimited",
    "Unauthorized",
    "ValidationFailed",
    "invalid",
]
