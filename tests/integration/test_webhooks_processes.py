"""Webhooks across real processes: the API process stores the endpoint and emits
``message.queued``; a separate ``agentsms worker`` process emits and delivers the rest.

Nothing is cached per process: an endpoint created through one process is honoured by
another at once. The receiver is an HTTP server on 127.0.0.1 that verifies signatures
with the reference ``standardwebhooks`` package.
"""

from __future__ import annotations

import http.server
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook

from tests.acceptance.conftest import start_server
from tests.acceptance.processes import agentsms_command

pytestmark = pytest.mark.acceptance


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    got: list[tuple[dict[str, str], bytes]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            got.append((dict(self.headers.items()), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", got
    server.shutdown()


def test_api_and_worker_processes_deliver_signed_message_events(
    tmp_path: Path, receiver: tuple[str, list[tuple[dict[str, str], bytes]]]
) -> None:
    url, got = receiver
    env = {"AGENTSMS_ALLOW_INSECURE_URLS": "1"}
    api = start_server(tmp_path, env=env, args=["--no-worker"])
    worker_log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [*agentsms_command(), "worker", "--concurrency", "1"],
        env=api.env,
        stdout=worker_log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        with api.client() as http_api:
            created = http_api.post(
                "/v1/webhook-endpoints", json={"url": url, "event_types": ["message.*"]}
            )
            assert created.status_code == 201, created.text
            secret = created.json()["secret"]
            sent = http_api.post("/v1/messages", json={"to": "+14155552671", "body": "hi"})
            assert sent.status_code == 202, sent.text

            deadline = time.monotonic() + 30
            while len(got) < 3 and time.monotonic() < deadline:
                time.sleep(0.1)
        events = [Webhook(secret).verify(body, headers) for headers, body in got]
        assert sorted(e["type"] for e in events) == [
            "message.delivered",
            "message.queued",
            "message.sent",
        ]
        assert {e["data"]["message"]["id"] for e in events} == {sent.json()["id"]}
        for line in ("insecure_urls_allowed",):
            assert line in api.logs()
            assert line in (tmp_path / "worker.log").read_text()
        assert json.loads(got[0][1])["id"] == got[0][0]["webhook-id"]
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=5)
        worker_log.close()
        api.stop()
    assert worker.returncode == 0
