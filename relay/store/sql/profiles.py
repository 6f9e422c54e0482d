"""Statements on profiles and anonymous ids: identify, merge, delete, suppress."""

from __future__ import annotations

from relay.store.connection import Connection, Row
from relay.store.sql.attribution import FACT_TABLES


def create_profile(conn: Connection, app_id: str, customer_id: str, now: float) -> bool:
    """The profile of ``customer_id`` unless it exists; True if this call created it."""
    cursor = conn.execute(
        "INSERT INTO profiles (app_id, customer_id, created_at, updated_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (app_id, customer_id) DO NOTHING",
        (app_id, customer_id, now, now),
    )
    return cursor.rowcount == 1


def profile_exists(conn: Connection, app_id: str, customer_id: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM profiles WHERE app_id = ? AND customer_id = ?", (app_id, customer_id)
    ).fetchone()
    return row is not None


def profile_attributes(conn: Connection, app_id: str, customer_id: str) -> str:
    """The stored attributes (JSON text) of an existing profile."""
    row = conn.execute(
        "SELECT attributes FROM profiles WHERE app_id = ? AND customer_id = ?",
        (app_id, customer_id),
    ).fetchone()
    attributes: str = row[0]
    return attributes


def update_profile(
    conn: Connection,
    app_id: str,
    customer_id: str,
    email: str | None,
    attributes: str,
    now: float,
    keep_email: bool = False,
) -> None:
    """Set the attributes (JSON text) of a profile, and its email to ``email`` unless that is
    None (with ``keep_email``: only if the profile has none)."""
    new_email = "coalesce(email, ?)" if keep_email else "coalesce(?, email)"
    conn.execute(
        f"UPDATE profiles SET email = {new_email}, attributes = ?, updated_at = ?"
        " WHERE app_id = ? AND customer_id = ?",
        (email, attributes, now, app_id, customer_id),
    )


def set_profile_suppressed(
    conn: Connection, app_id: str, customer_id: str, suppressed: bool, now: float
) -> None:
    conn.execute(
        "UPDATE profiles SET suppressed = ?, updated_at = ? WHERE app_id = ? AND customer_id = ?",
        (int(suppressed), now, app_id, customer_id),
    )


def profiles_of(conn: Connection, app_id: str, first: str, second: str) -> list[Row]:
    """The profiles (customer_id, email, attributes) of ``first`` and ``second`` that exist."""
    rows: list[Row] = conn.execute(
        "SELECT customer_id, email, attributes FROM profiles"
        " WHERE app_id = ? AND customer_id IN (?, ?)",
        (app_id, first, second),
    ).fetchall()
    return rows


def move_customer(conn: Connection, app_id: str, source: str, target: str) -> None:
    """The devices, anonymous ids and facts of ``source`` pass to ``target``."""
    for table in ("devices", "anonymous_ids", *FACT_TABLES):
        conn.execute(
            f"UPDATE {table} SET customer_id = ? WHERE app_id = ? AND customer_id = ?",
            (target, app_id, source),
        )


def delete_profile(conn: Connection, app_id: str, customer_id: str) -> None:
    conn.execute("DELETE FROM profiles WHERE app_id = ? AND customer_id = ?", (app_id, customer_id))


def forget_customer(conn: Connection, app_id: str, customer_id: str) -> None:
    """The anonymous ids, segment memberships and profile of ``customer_id`` go."""
    for table in ("anonymous_ids", "segment_members", "profiles"):
        conn.execute(
            f"DELETE FROM {table} WHERE app_id = ? AND customer_id = ?", (app_id, customer_id)
        )


def link_anonymous_id(
    conn: Connection, app_id: str, anonymous_id: str, customer_id: str, now: float
) -> None:
    """``anonymous_id`` now belongs to ``customer_id`` (whoever it belonged to before)."""
    conn.execute(
        "INSERT INTO anonymous_ids (app_id, anonymous_id, customer_id, identified_at)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (app_id, anonymous_id)"
        " DO UPDATE SET customer_id = excluded.customer_id, identified_at = excluded.identified_at",
        (app_id, anonymous_id, customer_id, now),
    )


def customer_of_anonymous_id(conn: Connection, app_id: str, anonymous_id: str | None) -> str | None:
    """The customer ``anonymous_id`` was last linked to, if any (None for no id)."""
    if anonymous_id is None:
        return None
    row = conn.execute(
        "SELECT customer_id FROM anonymous_ids WHERE app_id = ? AND anonymous_id = ?",
        (app_id, anonymous_id),
    ).fetchone()
    return row[0] if row else None
