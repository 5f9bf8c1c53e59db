"""A Twilio number connected the way a person does it, against real processes: a real
``agentsms serve``, the ``agentsms accounts add`` / ``numbers add`` / ``send`` CLI, and the
fake Twilio on loopback sending signed callbacks to the server over HTTP."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentsms.core.credentials import KEY_FILE_NAME
from tests.acceptance.conftest import Server, agentsms_argv, clean_env, start_server
from tests.fakes.carriers.twilio import FakeTwilio

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(120)]

OUR_NUMBER = "+14155550177"
PERSON = "+14155550178"


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio()
    fake.start()
    yield fake
    fake.stop()


def cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    env = clean_env({"AGENTSMS_URL": server.url, "AGENTSMS_API_KEY": server.api_key})
    return subprocess.run(
        [*agentsms_argv(), *args], env=env, capture_output=True, text=True, timeout=60
    )


def wait_until(check: Any, within: float = 20.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_twilio_number_added_by_cli_sends_and_gets_receipts(
    tmp_path: Path, twilio: FakeTwilio
) -> None:
    server = start_server(tmp_path, env={"AGENTSMS_ALLOW_INSECURE_URLS": "true"})
    token_file = tmp_path / "token.txt"
    token_file.write_text(twilio.auth_token)

    wrong = cli(
        server,
        "accounts", "add", "--provider", "twilio", "--name", "main",
        "--credential", f"account_sid={twilio.account_sid}",
        "--credential", "auth_token=" + "0" * 32,
        "--api-base-url", twilio.base_url,
    )  # fmt: skip
    assert wrong.returncode == 1
    assert "credentials" in wrong.stderr + wrong.stdout

    added = cli(
        server,
        "accounts", "add", "--provider", "twilio", "--name", "main", "--json",
        "--credential", f"account_sid={twilio.account_sid}",
        "--credential", f"auth_token=@{token_file}",
        "--api-base-url", twilio.base_url,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    account = json.loads(added.stdout)
    callback_url = f"{server.url}/callbacks/twilio/{account['id']}"
    assert account["callback_url"] == callback_url
    assert twilio.auth_token not in added.stdout

    number = cli(
        server, "numbers", "add", "--provider", "twilio", "--number", OUR_NUMBER,
        "--account", account["id"],
    )  # fmt: skip
    assert number.returncode == 0, number.stderr
    assert callback_url in number.stdout.replace("\n", "")

    sent = cli(server, "send", "--to", PERSON, "--from", OUR_NUMBER, "--no-follow", "hi there")
    assert sent.returncode == 0, sent.stderr
    match = re.search(r"\bmsg_\w+", sent.stdout)
    assert match is not None, sent.stdout
    message_id = match.group(0)
    [carrier_id] = wait_until(lambda: list(twilio.sent))
    assert twilio.sent[carrier_id]["body"] == "hi there"
    assert twilio.sent[carrier_id]["status_callback"] == f"{callback_url}?ref={message_id}"

    with server.client() as api:

        def status() -> str:
            return str(api.get(f"/v1/messages/{message_id}").json()["status"])

        wait_until(lambda: status() == "sent")
        genuine = twilio.status_callback(carrier_id, "delivered")
        with httpx.Client(base_url=server.url) as carrier_http:
            forged = twilio.forgeries(genuine)["wrong_token"]
            for callback in (forged, genuine):
                response = carrier_http.post(
                    httpx.URL(callback.url).raw_path.decode(),
                    content=callback.body,
                    headers={**callback.headers, "content-type": callback.content_type},
                )
                assert response.status_code == (403 if callback is forged else 200)
        wait_until(lambda: status() == "delivered")

        listed = cli(server, "accounts", "list")
        assert account["id"] in listed.stdout
        assert twilio.auth_token not in listed.stdout

    key_file = tmp_path / KEY_FILE_NAME
    assert key_file.exists()
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    logs = server.logs()
    assert "credentials.generated_key" in logs
    assert twilio.auth_token not in logs
    server.stop()
