"""The messageIds of the Customer.io-shaped calls already applied."""

from __future__ import annotations

from relay.store.connection import Connection


def remember_message(conn: Connection, app_id: str, message_id: str, received_at: float) -> bool:
    """Record ``message_id``; False if it was recorded already (a replay)."""
    cursor = conn.execute(
        "INSERT INTO compat_messages (app_id, message_id, received_at)"
        " VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        (app_id, message_id, received_at),
    )
    return cursor.rowcount != 0
