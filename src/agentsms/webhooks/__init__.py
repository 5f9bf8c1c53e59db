"""Outbound customer webhooks: events, signed deliveries with retries, the SSRF-safe client.

``emit`` is how every part of agentsms tells the customer something happened: it runs in
the caller's transaction, stores the event and enqueues one delivery job per subscribed
endpoint (plus one to a per-conversation ``webhook_url``). ``check_url`` and
``safe_client`` guard every customer-supplied URL (see ``webhooks.ssrf``).
"""

from __future__ import annotations

from agentsms.webhooks.events import emit
from agentsms.webhooks.ssrf import BlockedRequest, UnsafeURL, check_url, safe_client, url_problem

__all__ = ["BlockedRequest", "UnsafeURL", "check_url", "emit", "safe_client", "url_problem"]
