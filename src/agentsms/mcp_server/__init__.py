"""agentsms as an MCP server: texting tools for any agent, over Streamable HTTP or stdio.

The tools (:mod:`.tools`) are written once against the SDK's :class:`~agentsms.AsyncClient`:
``/mcp`` in the app (:mod:`.http`) hands them a client that calls the app in-process with
the caller's own API key, and ``agentsms mcp`` (:mod:`.stdio`) one that calls a server over
HTTP. Either way every tool goes through the public API, its checks and its tenancy.
"""
