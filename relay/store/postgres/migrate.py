"""Numbered, forward-only SQL migrations for PostgreSQL (``migrations/NNNN_name.sql``).

The chain starts at 0009, the schema SQLite reached in nine steps; each later change gets
the same number in both chains. Relay processes starting together take turns: an advisory
lock held for the transaction makes the second wait, then find nothing left to apply.
"""

from __future__ import annotations

import logging
import time

from relay.store.migrations import bundled
from relay.store.postgres.connection import PgConnection

log = logging.getLogger(__name__)

MIGRATION_LOCK = 0x72656C6179  # "relay"


def available_migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every bundled migration, in order."""
    return bundled(__package__ or "")


def apply_migrations(conn: PgConnection) -> list[int]:
    """Apply what is missing, each in its own transaction; returns the versions applied."""
    raw = conn.raw
    applied = []
    for version, name, sql in available_migrations():
        with raw.transaction():
            raw.execute("SET LOCAL lock_timeout = 0")  # another process's migration may be long
            raw.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            raw.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                " name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
            )
            done = raw.execute(
                "SELECT 1 FROM schema_migrations WHERE version = %s", (version,)
            ).fetchone()
            if not done:
                raw.execute(sql.encode())
                raw.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                    (version, name, time.time()),
                )
                applied.append(version)
    if applied:
        log.info("applied migrations %s", applied)
    return applied
