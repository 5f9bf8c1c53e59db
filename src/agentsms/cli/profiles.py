"""``agentsms login | logout | profiles``: named server profiles for the HTTP commands."""

from __future__ import annotations

from typing import Annotated

import typer

from agentsms.cli.client import _fail, _plural, _session, _table, out
from agentsms.client import DEFAULT_URL
from agentsms.profiles import Profile, ProfileError, list_profiles, remove_profile, save_profile

NameOption = Annotated[
    str, typer.Option("--profile", "-p", help="The profile's name", show_default=True)
]


def register(app: typer.Typer) -> None:
    """Add ``login``, ``logout`` and ``profiles`` to ``app``."""
    app.command("login")(login)
    app.command("logout")(logout)
    app.command("profiles")(profiles)


def login(
    profile: NameOption = "default",
    url: Annotated[str, typer.Option("--url", help="Base URL of the agentsms API")] = DEFAULT_URL,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            help="The project's API key (asked for, unechoed, when not given)",
            show_default=False,
        ),
    ] = None,
    make_default: Annotated[
        bool, typer.Option("--default", help="Make it the default profile")
    ] = False,
) -> None:
    """Check an API key against a server and save both as a named profile (file mode 600)."""
    key = api_key or typer.prompt("API key", hide_input=True)
    with _session(url, key, None) as client:
        project = client.request("GET", "/v1/project").json()
    try:
        path = save_profile(Profile(profile, url, key), make_default=make_default)
    except (OSError, ProfileError) as error:
        _fail(f"cannot save the profile: {error}")
    out.print(
        f"logged in to {url} as project {project.get('name')} ({project.get('id')}); "
        f"profile {profile!r} saved in {path}",
        soft_wrap=True,
    )


def logout(profile: NameOption = "default") -> None:
    """Forget a saved profile."""
    try:
        removed = remove_profile(profile)
    except (OSError, ProfileError) as error:
        _fail(str(error))
    if not removed:
        _fail(f"no profile named {profile!r}")
    out.print(f"profile {profile!r} removed")


def profiles() -> None:
    """List the saved profiles (keys shown by their first characters only)."""
    try:
        saved, default = list_profiles()
    except ProfileError as error:
        _fail(str(error))
    rows = [
        ("*" if item.name == default else "", item.name, item.url, item.api_key[:8] + "…")
        for item in saved
    ]
    out.print(_table(_plural(len(saved), "profile"), ("", "name", "url", "api key"), rows, ()))
