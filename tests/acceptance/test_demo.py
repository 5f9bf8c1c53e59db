"""``make run``: the quickstart demo plays a whole agent conversation with a simulated person,
and ``agentsms conversations show`` prints it (real processes on loopback)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.acceptance.conftest import agentsms_argv, clean_env
from tests.acceptance.processes import free_port

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(120)]


def _run(tmp_path: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*agentsms_argv(), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_quickstart_demo_conversation_ends_rescheduled(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = clean_env({"AGENTSMS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}"})
    log = (tmp_path / "quickstart.log").open("w")
    process = subprocess.Popen(
        [*agentsms_argv(), "quickstart", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        text = ""
        while not re.search(r"conversations show (conv_\w+)", text):
            assert process.poll() is None, (tmp_path / "quickstart.log").read_text()
            assert time.monotonic() < deadline, text
            time.sleep(0.2)
            text = (tmp_path / "quickstart.log").read_text()
        found = re.search(r"conversations show (conv_\w+)", text)
        assert found is not None
        conversation_id = found.group(1)
        key = (tmp_path / ".agentsms" / "api_key").read_text().strip()
        cli_env = clean_env({"AGENTSMS_URL": url, "AGENTSMS_API_KEY": key})
        shown: dict[str, object] = {}
        while shown.get("status") != "ended":
            assert time.monotonic() < deadline + 30, shown
            time.sleep(0.5)
            result = _run(tmp_path, "conversations", "show", conversation_id, "--json", env=cli_env)
            if result.returncode == 0:
                shown = json.loads(result.stdout)
        assert shown["outcome"] == "rescheduled"
        assert isinstance(shown["extracted"], dict)
        assert "new_time" in shown["extracted"]

        printed = _run(tmp_path, "conversations", "show", conversation_id, env=cli_env)
        assert printed.returncode == 0, printed.stderr
        lines = printed.stdout.splitlines()
        said = [line.split("] ", 1)[1] for line in lines if line.startswith("[")]
        assert said[0].startswith("agent : Hi Ana, this is a reminder of your appointment")
        assert said[1] == "person: Hi! Can we move it to Thursday at 3pm?"
        assert said[2].startswith("agent : Thanks Ana!")
        assert "outcome:   rescheduled" in lines
        assert any(line.startswith("  new_time: ") for line in lines)

        listed = _run(tmp_path, "conversations", "list", "--json", env=cli_env)
        assert [c["id"] for c in json.loads(listed.stdout)] == [conversation_id]

        # The demo persona comes from the gallery and answers replies no setting assigns.
        auth = {"Authorization": f"Bearer {key}"}
        project = httpx.get(f"{url}/v1/project", headers=auth).json()
        (persona,) = httpx.get(f"{url}/v1/personas", headers=auth).json()["data"]
        assert project["default_persona_id"] == persona["id"]
        assert persona["versions"][0]["config"]["agent"]["pathway"]["id"] == "appointment_reminder"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
