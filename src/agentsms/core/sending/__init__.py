"""Sending: the one way an outbound message is accepted.

Build a ``SendPolicy`` once from ``Settings`` at start-up, make an ``Outbox`` of it, and
pass that to whatever sends (the API's state, the worker's handlers). Modules:
``specs`` (what a caller asks for, and the limits), ``policy``, ``validation`` (intake
checks), ``senders`` (sender choice), ``attachment`` (conversations, opt-outs, quiet
hours), ``storage`` (rows and jobs) and ``outbox``.
"""

from agentsms.core.sending.outbox import Checked, Outbox
from agentsms.core.sending.policy import SendPolicy
from agentsms.core.sending.specs import (
    EMPTY_BODY,
    LATEST_SEND_AT,
    MAX_BODY_CHARS,
    SEND_JOB,
    BatchResult,
    BatchSpec,
    OutboundSpec,
    UrlProblem,
)

__all__ = [
    "EMPTY_BODY",
    "LATEST_SEND_AT",
    "MAX_BODY_CHARS",
    "SEND_JOB",
    "BatchResult",
    "BatchSpec",
    "Checked",
    "OutboundSpec",
    "Outbox",
    "SendPolicy",
    "UrlProblem",
]
