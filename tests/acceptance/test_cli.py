"""The ``agentsms`` CLI as a person uses it: real CLI processes against a real server process.

One ``agentsms serve`` (SQLite, simulator delivering after 0.1 s) serves the whole module;
each test runs ``python -m agentsms ...`` as a subprocess and checks its output and exit
code, and what the API then says.
"""

from __future__ import annotations

import csv
import json
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.acceptance.conftest import Server, agentsms_argv, clean_env, start_server
from tests.acceptance.processes import free_port

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(120)]

STATUS_LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3}\s+(\w+)")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    started = start_server(tmp_path_factory.mktemp("cli"))
    yield started
    started.stop()


@pytest.fixture(scope="module")
def api(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def cli(
    server: Server | None,
    *args: str,
    api_key: str | None = None,
    url: str | None = None,
    timeout: float = 60.0,
) -> subprocess.CompletedProcess[str]:
    """Run ``agentsms <args>`` with the server's URL and key in the environment."""
    env = clean_env()
    if server is not None:
        env["AGENTSMS_URL"] = url or server.url
        env["AGENTSMS_API_KEY"] = api_key or server.api_key
    elif url is not None:
        env["AGENTSMS_URL"] = url
    return subprocess.run(
        [*agentsms_argv(), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def statuses_in(output: str) -> list[str]:
    """The statuses of the ``HH:MM:SS.mmm  status`` lines a followed send prints."""
    return [m.group(1) for line in output.splitlines() if (m := STATUS_LINE.match(line))]


def wait_until(check: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:.0f}s waiting for {what}")
        time.sleep(0.05)


def test_send_prints_the_id_then_follows_every_status_until_delivered(
    server: Server, api: httpx.Client
) -> None:
    result = cli(
        server, "send", "--to", "+1 415 555 2671", "Hello from the CLI", "--metadata", "case=follow"
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    message_id = lines[0]
    assert re.fullmatch(r"msg_[0-9A-Z]{26}", message_id)
    assert statuses_in(result.stdout) == ["queued", "sending", "sent", "delivered"]
    assert lines[-1].startswith("delivered after ")
    message = api.get(f"/v1/messages/{message_id}").json()
    assert message["status"] == "delivered"
    assert message["to"] == "+14155552671"
    assert message["body"] == "Hello from the CLI"
    assert message["metadata"] == {"case": "follow"}


def test_send_no_follow_returns_at_once_and_an_idempotency_key_replays(
    server: Server, api: httpx.Client
) -> None:
    args = ["send", "--to", "+14155552672", "--body", "only once", "--no-follow"]
    first = cli(server, *args, "--idempotency-key", "cli-test-once")
    again = cli(server, *args, "--idempotency-key", "cli-test-once")

    assert first.returncode == 0, first.stderr
    assert again.returncode == 0, again.stderr
    assert statuses_in(first.stdout) == []
    message_id = first.stdout.splitlines()[0]
    assert again.stdout.splitlines()[0] == message_id
    page = api.get("/v1/messages", params={"to": "+14155552672"}).json()
    assert [m["id"] for m in page["data"]] == [message_id]


def test_send_file_sends_a_templated_batch_and_follows_it_to_delivery(
    server: Server, api: httpx.Client, tmp_path: Path
) -> None:
    path = tmp_path / "recipients.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["phone", "name", "external_id"])
        for i in range(20):
            writer.writerow([f"+1415555{3000 + i}", f"Person {i}", f"row-{i}"])

    result = cli(server, "send", "--file", str(path), "--body", "Hi {{name}}")

    assert result.returncode == 0, result.stdout + result.stderr
    batch_id = re.search(r"(batch_[0-9A-Z]{26}): 20 messages accepted", result.stdout)
    assert batch_id is not None, result.stdout
    assert "done: delivered 20" in result.stdout
    batch = api.get(f"/v1/batches/{batch_id.group(1)}").json()
    assert batch["counts"] == {"delivered": 20}
    page = api.get(f"/v1/batches/{batch_id.group(1)}/messages", params={"limit": 100}).json()
    sent = {m["to"]: (m["body"], m["external_id"], m["status"]) for m in page["data"]}
    assert sent == {
        f"+1415555{3000 + i}": (f"Hi Person {i}", f"row-{i}", "delivered") for i in range(20)
    }


def test_send_file_errors_name_the_field_and_the_csv_line(server: Server, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("to,name\n+14155553100,Ann\n+1555,Bob\n")

    result = cli(server, "send", "--file", str(path), "--body", "Hi {{name}}")

    assert result.returncode == 1
    assert "recipients[1].to (bad.csv line 3)" in result.stderr
    assert "recipients[0]" not in result.stderr


def test_messages_list_and_show(server: Server) -> None:
    sent = cli(server, "send", "--to", "+14155552673", "list [me] please")
    assert sent.returncode == 0, sent.stderr
    message_id = sent.stdout.splitlines()[0]

    listed = cli(server, "messages", "list", "--to", "+14155552673", "--limit", "5")
    as_json = cli(server, "messages", "list", "--status", "delivered", "--limit", "500", "--json")
    shown = cli(server, "messages", "show", message_id)

    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if message_id in line)
    assert "delivered" in row
    assert "list [me] please" in row
    assert as_json.returncode == 0, as_json.stderr
    assert message_id in {m["id"] for m in json.loads(as_json.stdout)}
    assert shown.returncode == 0, shown.stderr
    assert "list [me] please" in shown.stdout
    timeline = re.findall(r"│ (message\.\w+)", shown.stdout)
    assert timeline == ["message.queued", "message.sending", "message.sent", "message.delivered"]


def test_messages_show_of_an_unknown_id_fails(server: Server) -> None:
    result = cli(server, "messages", "show", "msg_00000000000000000000000000")
    assert result.returncode == 1
    assert "not found" in result.stderr


def test_numbers_add_and_list(server: Server, api: httpx.Client) -> None:
    added = cli(
        server,
        "numbers",
        "add",
        "--number",
        "+14155550199",
        "--capability",
        "sms",
        "--throughput",
        "5",
        "--price",
        "0.0079",
    )
    listed = cli(server, "numbers", "list")

    assert added.returncode == 0, added.stderr
    assert "added +14155550199" in added.stdout
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if "+14155550199" in line)
    assert "simulator" in row
    assert "0.007900" in row
    assert any("+14155550100" in line for line in listed.stdout.splitlines())
    stored = {n["number"]: n for n in api.get("/v1/numbers").json()["data"]}["+14155550199"]
    assert stored["capabilities"] == ["sms"]
    assert stored["throughput_mps"] == 5
    assert stored["price_per_segment"] == "0.007900"


def test_tail_prints_each_event_live_until_interrupted(
    server: Server, api: httpx.Client, tmp_path: Path
) -> None:
    out_path, err_path = tmp_path / "tail.out", tmp_path / "tail.err"
    env = clean_env({"AGENTSMS_URL": server.url, "AGENTSMS_API_KEY": server.api_key})
    with out_path.open("w") as out, err_path.open("w") as err:
        tail = subprocess.Popen(
            [*agentsms_argv(), "tail"], env=env, stdout=out, stderr=err, text=True
        )
    try:
        wait_until(lambda: "listening" in err_path.read_text(), 20, "tail to connect")

        def delivered(message_id: str) -> bool:
            return any(
                message_id in line and "message.delivered" in line
                for line in out_path.read_text().splitlines()
            )

        def send_and_see(to: str) -> str:
            response = api.post("/v1/messages", json={"to": to, "body": "tail me"})
            assert response.status_code == 202
            message_id: str = response.json()["id"]
            wait_until(lambda: delivered(message_id), 20, f"{message_id} in tail")
            return message_id

        # The first message proves the stream is live; the second is checked in full.
        send_and_see("+14155552674")
        message_id = send_and_see("+14155552675")

        lines = [line for line in out_path.read_text().splitlines() if message_id in line]
        assert [line.split()[1] for line in lines] == [
            "message.queued",
            "message.sending",
            "message.sent",
            "message.delivered",
        ]
        assert all("+14155552675" in line for line in lines)
        assert all(re.match(r"\d\d:\d\d:\d\d\.\d{3} ", line) for line in lines)

        tail.send_signal(signal.SIGINT)
        assert tail.wait(timeout=10) == 0
    finally:
        if tail.poll() is None:
            tail.kill()
            tail.wait(timeout=10)


def test_an_invalid_number_is_exit_1_naming_the_field(server: Server, api: httpx.Client) -> None:
    result = cli(server, "send", "--to", "+1555", "hello")

    assert result.returncode == 1
    assert "Validation failed (422 validation_failed)" in result.stderr
    assert re.search(r"^\s+to: ", result.stderr, re.MULTILINE), result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_api_key_is_exit_1(server: Server) -> None:
    result = cli(server, "messages", "list", api_key="ask_not_a_key")

    assert result.returncode == 1
    assert "401" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_api_key_is_exit_1_with_a_hint() -> None:
    result = cli(None, "numbers", "list")

    assert result.returncode == 1
    assert "AGENTSMS_API_KEY" in result.stderr


def test_an_unreachable_server_is_a_clear_exit_1() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = cli(None, "send", "--to", "+14155552671", "hi", "--url", url, "--api-key", "ask_x")

    assert result.returncode == 1
    assert f"cannot reach agentsms at {url}" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_a_short_bootstrap_key_with_one_clear_line(tmp_path: Path) -> None:
    key = "ask_" + "x" * 19  # 23 characters
    env = clean_env(
        {
            "AGENTSMS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'short.db'}",
            "AGENTSMS_BOOTSTRAP_API_KEY": key,
        }
    )
    result = subprocess.run(
        [*agentsms_argv(), "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("agentsms: AGENTSMS_BOOTSTRAP_API_KEY: must be at least 24 characters")
    assert key not in result.stderr  # a secret is never echoed
    assert not (tmp_path / "short.db").exists()  # refused before anything started
