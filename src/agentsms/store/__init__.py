"""Persistence: tables, the database handle and repositories. All SQL lives here."""

from agentsms.store.db import Database

__all__ = ["Database"]
