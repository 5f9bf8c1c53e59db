"""Vendor-compatible APIs: each vendor's paths, shapes and error bodies under
``/compat/<vendor>``, translated onto agentsms's core (see ``_common`` for the plumbing).

To add a vendor: write ``api/compat/<vendor>.py`` with an
``APIRouter(prefix="/compat/<vendor>")``, a ``render_error(Failure) -> Response`` and
``VENDOR = Vendor(name, router, render_error)``, and append it to ``vendors.VENDORS``.

This package's ``__init__`` imports nothing: the vendors' webhook bodies
(``bland_webhooks``, ``agentphone_webhooks``) are pure translations that a worker loads
to deliver webhooks without loading any router; ``vendors`` mounts the routers.
"""
