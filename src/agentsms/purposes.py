"""Why a message exists: the closed set of ``purpose`` values every message carries.

=================== ==============================================================
``api``             a caller's send: ``POST /v1/messages``, a batch, a compat surface,
                    the CLI, the SDK, the MCP tools
``agent``           written by the conversation's agent (its replies and openings)
``human``           a person at the customer took over (conversation reply, inbox)
``compliance``      the answer to an opt-out, opt-in or help keyword (goes even to an
                    opted-out person)
``timeout_warning`` the conversation's "still there?" text after a silence
``timeout_message`` the conversation's last text when it times out
``inbound``         a text a person sent to one of the project's numbers
=================== ==============================================================
"""

from __future__ import annotations

from typing import Literal, get_args

API = "api"
AGENT = "agent"
HUMAN = "human"
COMPLIANCE = "compliance"
TIMEOUT_WARNING = "timeout_warning"
TIMEOUT_MESSAGE = "timeout_message"
INBOUND = "inbound"

Purpose = Literal[
    "api", "agent", "human", "compliance", "timeout_warning", "timeout_message", "inbound"
]
PURPOSES: tuple[str, ...] = get_args(Purpose)
TIMERS = (TIMEOUT_WARNING, TIMEOUT_MESSAGE)
"""Texts the conversation timers send: they do not restart the timers."""
