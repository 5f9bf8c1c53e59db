"""``agentsms accounts add`` credential parsing: pairs, @files and a JSON file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer

from agentsms.cli.client import parse_credentials


def test_pairs_files_and_json(tmp_path: Path) -> None:
    pem = tmp_path / "private.key"
    pem.write_text("-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n")
    base = tmp_path / "creds.json"
    base.write_text(json.dumps({"api_key": "k1", "api_secret": "from-file"}))

    parsed = parse_credentials(["api_secret=s=with=equals", f"private_key=@{pem}"], base)

    assert parsed == {
        "api_key": "k1",
        "api_secret": "s=with=equals",
        "private_key": pem.read_text(),
    }


@pytest.mark.parametrize("pair", ["no-equals", "=value"])
def test_malformed_pairs_are_refused(pair: str) -> None:
    with pytest.raises(typer.BadParameter):
        parse_credentials([pair], None)


def test_a_json_file_must_hold_strings(tmp_path: Path) -> None:
    path = tmp_path / "creds.json"
    path.write_text(json.dumps({"api_key": 1}))
    with pytest.raises(typer.BadParameter):
        parse_credentials([], path)
    with pytest.raises(typer.BadParameter):
        parse_credentials(["k=@/nonexistent/file"], None)
