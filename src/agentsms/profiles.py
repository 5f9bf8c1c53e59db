"""Named CLI profiles (a server URL and an API key each), kept in a file only its owner reads.

``agentsms login`` writes them; every HTTP command reads the one named by ``--profile``,
``AGENTSMS_PROFILE`` or, failing both, the default profile. The file is
``$AGENTSMS_CONFIG_DIR/profiles.json`` (else ``$XDG_CONFIG_HOME/agentsms/…``, else
``~/.config/agentsms/…``), written with mode 600.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FILE_NAME = "profiles.json"


@dataclass(frozen=True, slots=True)
class Profile:
    """Where a profile's commands go and the key they use."""

    name: str
    url: str
    api_key: str


class ProfileError(Exception):
    """The profiles file or a named profile cannot be used; the message says why."""


def config_dir() -> Path:
    explicit = os.environ.get("AGENTSMS_CONFIG_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "agentsms"


def profiles_path() -> Path:
    return config_dir() / FILE_NAME


def _load() -> dict[str, Any]:
    path = profiles_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"default": None, "profiles": {}}
    except (OSError, ValueError) as error:
        raise ProfileError(f"cannot read {path}: {error}") from None
    if not isinstance(data, dict) or not isinstance(data.get("profiles"), dict):
        raise ProfileError(f"{path} is not an agentsms profiles file")
    return data


def _save(data: dict[str, Any]) -> Path:
    path = profiles_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_suffix(".tmp")
    # Created 600 before the key is written: never readable by others, not even briefly.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
    os.chmod(temporary, 0o600)
    temporary.replace(path)
    return path


def save_profile(profile: Profile, *, make_default: bool) -> Path:
    """Store ``profile`` (replacing one of that name); the first one stored is the default."""
    data = _load()
    data["profiles"][profile.name] = {"url": profile.url, "api_key": profile.api_key}
    if make_default or not data.get("default"):
        data["default"] = profile.name
    return _save(data)


def remove_profile(name: str) -> bool:
    """Forget profile ``name``; whether there was one."""
    data = _load()
    if data["profiles"].pop(name, None) is None:
        return False
    if data.get("default") == name:
        data["default"] = next(iter(data["profiles"]), None)
    _save(data)
    return True


def list_profiles() -> tuple[list[Profile], str | None]:
    """Every stored profile, and the default's name."""
    data = _load()
    profiles = [
        Profile(name, str(entry.get("url", "")), str(entry.get("api_key", "")))
        for name, entry in data["profiles"].items()
    ]
    return profiles, data.get("default")


def find_profile(name: str | None) -> Profile | None:
    """Profile ``name`` (an unknown name is an error); with no name, the default, if any."""
    profiles, default = list_profiles()
    by_name = {profile.name: profile for profile in profiles}
    if name is None:
        return by_name.get(default) if default else None
    if name not in by_name:
        known = ", ".join(sorted(by_name)) or "none yet"
        raise ProfileError(
            f"no profile named {name!r} (profiles: {known}); "
            f"create it with: agentsms login --profile {name}"
        )
    return by_name[name]
