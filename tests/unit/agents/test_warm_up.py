"""``agents.warm_up``: what a worker's first conversation reply would load on its event
loop is loaded before the loop starts (``serve`` and ``worker`` call it at start-up)."""

from __future__ import annotations

import subprocess
import sys


def test_warm_up_loads_the_flow_agent_and_the_date_parser() -> None:
    # A fresh interpreter: this test process may have loaded them already.
    probe = (
        "import sys; from agentsms import agents; "
        "before = {m for m in ('dateparser.search', 'agentsms.agents.flow') if m in sys.modules}; "
        "agents.warm_up(); "
        "after = {m for m in ('dateparser.search', 'agentsms.agents.flow') if m in sys.modules}; "
        "print(sorted(before), sorted(after))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=240, check=True
    )
    assert result.stdout.split("\n")[0] == "[] ['agentsms.agents.flow', 'dateparser.search']"
