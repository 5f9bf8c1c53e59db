"""``agentsms opt-outs list|add|remove|import|export``: real CLI processes against a real
``agentsms serve``."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.acceptance.conftest import Server, agentsms_argv, clean_env

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(120)]


def _cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    env = clean_env({"AGENTSMS_URL": server.url, "AGENTSMS_API_KEY": server.api_key})
    return subprocess.run(
        [*agentsms_argv(), "opt-outs", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_the_suppression_list_from_the_command_line(server: Server, tmp_path: Path) -> None:
    added = _cli(server, "add", "+14155556601", "--keyword", "asked by phone")
    assert added.returncode == 0, added.stderr
    assert "opted out +14155556601" in added.stdout

    bad = tmp_path / "bad.csv"
    bad.write_text("phone_number\n+14155556602\nnot-a-number\n")
    refused = _cli(server, "import", str(bad))
    assert refused.returncode == 1
    assert "rows[3].phone_number" in refused.stderr
    good = tmp_path / "list.csv"
    good.write_text("phone_number,keyword\n+14155556602,STOP\n+14155556601,\n")
    imported = _cli(server, "import", str(good))
    assert imported.returncode == 0, imported.stderr
    assert "imported 1 new, 1 already opted out" in imported.stdout

    exported = tmp_path / "export.csv"
    written = _cli(server, "export", "-o", str(exported))
    assert written.returncode == 0, written.stderr
    lines = exported.read_text().splitlines()
    assert lines[0] == "phone_number,scope,source,keyword,number,created_at"
    assert sorted(line.split(",")[0] for line in lines[1:]) == ["+14155556601", "+14155556602"]

    removed = _cli(server, "remove", "+14155556601")
    assert removed.returncode == 0, removed.stderr
    assert "opted back in +14155556601" in removed.stdout
    listed = _cli(server, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    entries = {e["phone_number"]: e for e in json.loads(listed.stdout)}
    assert {n: e["source"] for n, e in entries.items()} == {
        "+14155556602": "import",
    }
