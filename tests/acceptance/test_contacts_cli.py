"""``agentsms contacts list|add|update|delete``: real CLI processes against a real
``agentsms serve``."""

from __future__ import annotations

import csv
import io
import json
import subprocess

import pytest

from tests.acceptance.conftest import Server, agentsms_argv, clean_env

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(120)]


def _cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    env = clean_env({"AGENTSMS_URL": server.url, "AGENTSMS_API_KEY": server.api_key})
    return subprocess.run(
        [*agentsms_argv(), "contacts", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_the_address_book_from_the_command_line(server: Server) -> None:
    added = _cli(
        server,
        "add",
        "+1 212 555 6601",
        "Ana Ruiz",
        "--timezone",
        "America/Los_Angeles",
        "--metadata",
        '{"customer": "c-1"}',
        "-o",
        "json",
    )
    assert added.returncode == 0, added.stderr
    ana = json.loads(added.stdout)
    assert (ana["phone_number"], ana["timezone"], ana["metadata"]) == (
        "+12125556601",
        "America/Los_Angeles",
        {"customer": "c-1"},
    )

    refused = _cli(server, "add", "+12125556602", "Bo", "--tz", "Mars/Olympus")
    assert refused.returncode == 1
    assert "timezone" in refused.stderr
    assert "Mars/Olympus" in refused.stderr

    moved = _cli(server, "update", ana["id"], "--tz", "Europe/Paris")
    assert moved.returncode == 0, moved.stderr
    assert f"updated {ana['id']}" in moved.stdout
    assert "Europe/Paris" in moved.stdout

    listed = _cli(server, "list", "-o", "csv")
    assert listed.returncode == 0, listed.stderr
    rows = list(csv.DictReader(io.StringIO(listed.stdout)))
    assert [(r["phone_number"], r["timezone"]) for r in rows] == [("+12125556601", "Europe/Paris")]

    cleared = _cli(server, "update", ana["id"], "--clear", "timezone", "--json")
    assert cleared.returncode == 0, cleared.stderr
    assert json.loads(cleared.stdout)["timezone"] is None
    table = _cli(server, "list")
    assert table.returncode == 0, table.stderr
    assert "Ana Ruiz" in table.stdout

    deleted = _cli(server, "delete", ana["id"])
    assert deleted.returncode == 0, deleted.stderr
    gone = _cli(server, "delete", ana["id"])
    assert gone.returncode == 1
    assert "404" in gone.stderr
    assert json.loads(_cli(server, "list", "--json").stdout) == []
