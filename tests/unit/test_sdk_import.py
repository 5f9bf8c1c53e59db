"""``import agentsms`` is the SDK alone: no server framework, database or MCP SDK loads."""

from __future__ import annotations

import subprocess
import sys

import agentsms


def test_the_package_exports_its_public_names() -> None:
    assert set(agentsms.__all__) <= set(dir(agentsms))
    assert {"Client", "AsyncClient", "ApiError", "Message", "Page"} <= set(agentsms.__all__)


def test_importing_the_sdk_loads_no_server_code() -> None:
    code = (
        "import sys, agentsms\n"
        "heavy = {'fastapi', 'starlette', 'sqlalchemy', 'mcp', 'agentsms.app', 'agentsms.core'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"
