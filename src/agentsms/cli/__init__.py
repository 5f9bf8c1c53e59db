"""The ``agentsms`` command: run the server and workers, and talk to the API as a person.

``app`` is the typer app; ``main`` runs it with every command registered (the console
script and ``python -m agentsms``). The modules: ``server`` (serve, worker, migrate, init,
quickstart, demo), ``client`` (send, messages, batches, numbers, ... through the API),
``conversations``, ``optouts`` and ``profiles``.
"""

from agentsms.cli.server import app, main

__all__ = ["app", "main"]
