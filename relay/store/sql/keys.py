"""API keys: only hashes are stored."""

from __future__ import annotations

from relay.errors import Conflict, NotFound
from relay.models.keys import KeyRecord
from relay.store.connection import Connection
from relay.store.dialect import POSTGRES, dialect_of

# Relay processes cache keys on PostgreSQL; a notification on this channel tells them all, at
# commit, that keys changed (relay/store/postgres/key_signal.py).
KEYS_CHANGED_CHANNEL = "relay_keys"


def _keys_changed(conn: Connection) -> None:
    # Part of the job's transaction: a job rolled back notifies nobody.
    if dialect_of(conn) is POSTGRES:
        conn.execute("SELECT pg_notify(?, '')", (KEYS_CHANGED_CHANNEL,))


def insert_key(conn: Connection, key: KeyRecord, secret_hash: str) -> None:
    inserted = conn.execute(
        "INSERT INTO api_keys (id, app_id, role, name, secret_hash, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (key.id, key.app_id, key.role, key.name, secret_hash, key.created_at),
    )
    if inserted.rowcount == 0:
        raise Conflict("a key with this value is already registered")
    _keys_changed(conn)


def revoke_key(conn: Connection, key_id: str, now: float) -> None:
    cursor = conn.execute(
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?", (now, key_id)
    )
    if cursor.rowcount == 0:
        raise NotFound(f"no key with id {key_id!r}")
    _keys_changed(conn)


def list_keys(conn: Connection) -> list[KeyRecord]:
    return [
        KeyRecord(*row)
        for row in conn.execute(
            "SELECT id, app_id, role, name, created_at, revoked_at FROM api_keys"
            " ORDER BY created_at, id"
        )
    ]


def find_active_key(conn: Connection, secret_hash: str) -> tuple[KeyRecord, str] | None:
    row = conn.execute(
        "SELECT id, app_id, role, name, created_at, revoked_at, secret_hash FROM api_keys"
        " WHERE secret_hash = ? AND revoked_at IS NULL",
        (secret_hash,),
    ).fetchone()
    return (KeyRecord(*row[:6]), row[6]) if row else None
