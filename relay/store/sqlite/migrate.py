"""Numbered, forward-only SQL migrations (``migrations/NNNN_name.sql``), applied at start-up.

Never edit a migration that has shipped: add the next number instead.
"""

from __future__ import annotations

import logging
import sqlite3
import time

from relay.store.migrations import bundled

log = logging.getLogger(__name__)


def available_migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every bundled migration, in order."""
    return bundled(__package__ or "")


def apply_migrations(conn: sqlite3.Connection) -> list[int]:
    """Apply what is missing, each in its own transaction; returns the versions applied.

    ``BEGIN IMMEDIATE`` takes the write lock before reading the applied versions, so two
    processes starting at once (``relay serve`` and a CLI command) cannot both apply one.
    """
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    applied = []
    for version, name, sql in available_migrations():
        conn.execute("BEGIN IMMEDIATE")
        try:
            done = conn.execute(
                "SELECT 1 FROM schema_migrations WHERE version = ?", (version,)
            ).fetchone()
            if not done:
                for statement in _statements(sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (version, name, time.time()),
                )
                applied.append(version)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    if applied:
        log.info("applied migrations %s", applied)
    return applied


def _statements(sql: str) -> list[str]:
    """Split a migration into statements (executescript would commit our transaction)."""
    statements, current = [], []
    for line in sql.splitlines():
        current.append(line)
        candidate = "\n".join(current)
        if sqlite3.complete_statement(candidate):
            statements.append(candidate)
            current = []
    return [s for s in statements if s.strip()]
