"""The CLI people expect: named profiles, -o table|json|csv, the everyday commands, clean help.

Real CLI processes against one real ``agentsms serve`` (SQLite, simulator).
"""

from __future__ import annotations

import csv
import io
import json
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.acceptance.conftest import Server, agentsms_argv, clean_env, start_server

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    started = start_server(tmp_path_factory.mktemp("cli-everyday"))
    yield started
    started.stop()


@pytest.fixture(scope="module")
def api(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*agentsms_argv(), *args],
        env=clean_env(env),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def as_server(server: Server, **extra: str) -> dict[str, str]:
    return {"AGENTSMS_URL": server.url, "AGENTSMS_API_KEY": server.api_key, **extra}


def test_login_saves_a_profile_only_its_owner_reads_and_commands_use_it(
    server: Server, api: httpx.Client, tmp_path: Path
) -> None:
    config = {"AGENTSMS_CONFIG_DIR": str(tmp_path / "config")}
    refused = run(
        "login",
        "--profile",
        "work",
        "--url",
        server.url,
        "--api-key",
        "ask_wrong_key_00000000000000",
        env=config,
    )
    assert refused.returncode == 1
    assert not (tmp_path / "config" / "profiles.json").exists()

    logged_in = run(
        "login", "--profile", "work", "--url", server.url, "--api-key", server.api_key, env=config
    )
    assert logged_in.returncode == 0, logged_in.stderr
    project = api.get("/v1/project").json()
    assert project["id"] in logged_in.stdout
    saved = tmp_path / "config" / "profiles.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert json.loads(saved.read_text())["profiles"]["work"]["url"] == server.url

    # No --url, no --api-key, no environment: the default profile (the first one saved).
    listed = run("numbers", "list", "-o", "json", env=config)
    assert listed.returncode == 0, listed.stderr
    assert {n["number"] for n in json.loads(listed.stdout)} == {
        n["number"] for n in api.get("/v1/numbers").json()["data"]
    }
    named = run("numbers", "list", "--profile", "work", "-o", "json", env=config)
    assert named.returncode == 0, named.stderr

    unknown = run("numbers", "list", "--profile", "home", env=config)
    assert unknown.returncode == 1
    assert "agentsms login --profile home" in unknown.stderr

    profiles = run("profiles", env=config)
    assert "work" in profiles.stdout
    assert server.api_key not in profiles.stdout
    assert run("logout", "--profile", "work", env=config).returncode == 0
    assert run("numbers", "list", env=config).returncode == 1


def test_lists_print_csv_and_json_with_the_same_records(server: Server, api: httpx.Client) -> None:
    api.post(
        "/v1/messages", json={"to": "+14155552671", "body": "csv, with a comma"}
    ).raise_for_status()
    as_csv = run("messages", "list", "--limit", "5", "-o", "csv", env=as_server(server))
    as_json = run("messages", "list", "--limit", "5", "--output", "json", env=as_server(server))
    assert as_csv.returncode == 0, as_csv.stderr
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    records = json.loads(as_json.stdout)
    assert [row["id"] for row in rows] == [record["id"] for record in records]
    assert any(row["body"] == "csv, with a comma" for row in rows)
    shown = run("conversations", "list", "-o", "csv", env=as_server(server))
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0].startswith("id,")


def test_messages_cancel_and_numbers_delete(server: Server, api: httpx.Client) -> None:
    scheduled = api.post(
        "/v1/messages",
        json={"to": "+14155552672", "body": "later", "send_at": "2099-01-01T00:00:00Z"},
    ).json()
    canceled = run("messages", "cancel", scheduled["id"], "-o", "json", env=as_server(server))
    assert canceled.returncode == 0, canceled.stderr
    assert json.loads(canceled.stdout)["status"] == "canceled"
    assert api.get(f"/v1/messages/{scheduled['id']}").json()["status"] == "canceled"

    added = api.post("/v1/numbers", json={"number": "+14155550177", "provider": "simulator"})
    added.raise_for_status()
    deleted = run("numbers", "delete", "+14155550177", env=as_server(server))
    assert deleted.returncode == 0, deleted.stderr
    assert "+14155550177" not in {n["number"] for n in api.get("/v1/numbers").json()["data"]}
    missing = run("numbers", "delete", "+14155550177", env=as_server(server))
    assert missing.returncode == 1
    assert "agentsms numbers list" in missing.stderr


def test_conversations_reply_pause_and_end(server: Server, api: httpx.Client) -> None:
    sent = api.post("/v1/messages", json={"to": "+14155552673", "body": "hello"}).json()
    conversation_id = sent["conversation_id"]
    paused = run("conversations", "pause", conversation_id, env=as_server(server))
    assert paused.returncode == 0, paused.stderr
    assert api.get(f"/v1/conversations/{conversation_id}").json()["agent_paused"] is True
    resumed = run("conversations", "pause", conversation_id, "--resume", env=as_server(server))
    assert resumed.returncode == 0, resumed.stderr
    assert api.get(f"/v1/conversations/{conversation_id}").json()["agent_paused"] is False

    replied = run("conversations", "reply", conversation_id, "A human here", env=as_server(server))
    assert replied.returncode == 0, replied.stderr
    texts = [m["body"] for m in api.get(f"/v1/conversations/{conversation_id}").json()["messages"]]
    assert "A human here" in texts

    ended = run(
        "conversations", "end", conversation_id, "--outcome", "confirmed", env=as_server(server)
    )
    assert ended.returncode == 0, ended.stderr
    final = api.get(f"/v1/conversations/{conversation_id}").json()
    assert (final["status"], final["outcome"]) == ("ended", "confirmed")


def test_errors_name_cli_commands_not_api_calls(server: Server) -> None:
    refused = run(
        "numbers", "add", "--number", "+14155550188", "--provider", "twilio", env=as_server(server)
    )
    assert refused.returncode == 1
    assert "agentsms accounts add" in refused.stderr
    assert "POST /v1/provider-accounts" not in refused.stderr


COMMANDS = [
    [],
    ["send"],
    ["tail"],
    ["serve"],
    ["worker"],
    ["login"],
    ["messages", "list"],
    ["messages", "show"],
    ["messages", "cancel"],
    ["numbers", "add"],
    ["numbers", "list"],
    ["numbers", "delete"],
    ["accounts", "add"],
    ["conversations", "list"],
    ["conversations", "pause"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "agentsms")
def test_help_shows_no_value_placeholder_on_flags(command: list[str]) -> None:
    shown = run(*command, "--help")
    assert shown.returncode == 0, shown.stderr
    assert "<bool>" not in shown.stdout
    assert "--help" in shown.stdout


def test_numbers_add_says_which_defaults_it_chose(server: Server, api: httpx.Client) -> None:
    added = run("numbers", "add", "--number", "+14155550166", env=as_server(server))
    assert added.returncode == 0, added.stderr
    assert "chosen by default: sms, mms at 1 msg/s" in added.stdout
    assert "--capability and --throughput" in added.stdout
    chosen = run(
        "numbers",
        "add",
        "--number",
        "+14155550167",
        "--throughput",
        "100",
        "--capability",
        "sms",
        env=as_server(server),
    )
    assert chosen.returncode == 0, chosen.stderr
    assert "chosen by default" not in chosen.stdout
    numbers = {n["number"]: n for n in api.get("/v1/numbers").json()["data"]}
    assert numbers["+14155550167"]["throughput_mps"] == 100
    assert numbers["+14155550167"]["capabilities"] == ["sms"]
