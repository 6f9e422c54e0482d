"""Statements on the facts' attribution (metrics and events) and on conversions."""

from __future__ import annotations

from relay.store.connection import Connection, Row

# The tables of facts: what a device or a person did (their rows carry device_id and
# customer_id).
FACT_TABLES = ("metrics", "events")


def attach_waiting_facts(conn: Connection, device: Row) -> None:
    """Facts stored under ``device``'s token before it registered take its id (and its
    customer and anonymous id where they have none)."""
    for table in FACT_TABLES:
        conn.execute(
            f"UPDATE {table} SET device_id = ?,"
            " customer_id = coalesce(customer_id, ?), anonymous_id = coalesce(anonymous_id, ?)"
            " WHERE app_id = ? AND token = ? AND device_id IS NULL",
            (
                device["id"],
                device["customer_id"],
                device["anonymous_id"],
                device["app_id"],
                device["token"],
            ),
        )


def attach_device_facts(conn: Connection, app_id: str, device_id: int, customer_id: str) -> None:
    """The device's facts that have no customer take ``customer_id``."""
    for table in FACT_TABLES:
        conn.execute(
            f"UPDATE {table} SET customer_id = ?"
            " WHERE device_id = ? AND customer_id IS NULL AND app_id = ?",
            (customer_id, device_id, app_id),
        )


def attach_anonymous_facts(
    conn: Connection, app_id: str, anonymous_id: str, customer_id: str
) -> None:
    """Facts under ``anonymous_id`` that have no customer take ``customer_id``."""
    for table in FACT_TABLES:
        conn.execute(
            f"UPDATE {table} SET customer_id = ?"
            " WHERE app_id = ? AND anonymous_id = ? AND customer_id IS NULL",
            (customer_id, app_id, anonymous_id),
        )


def move_device_facts(conn: Connection, old_device_id: int, new_device_id: int) -> None:
    """Every fact of ``old_device_id`` moves to ``new_device_id``."""
    for table in FACT_TABLES:
        conn.execute(
            f"UPDATE {table} SET device_id = ? WHERE device_id = ?", (new_device_id, old_device_id)
        )


def detach_customer_facts(conn: Connection, app_id: str, customer_id: str) -> None:
    """The facts of ``customer_id`` lose their customer (they stay, with their devices)."""
    for table in FACT_TABLES:
        conn.execute(
            f"UPDATE {table} SET customer_id = NULL WHERE app_id = ? AND customer_id = ?",
            (app_id, customer_id),
        )


def unattributed_conversion_events(
    conn: Connection, app_id: str, customer_id: str, names: tuple[str, ...]
) -> list[Row]:
    """The customer's events named one of ``names`` not yet attributed (seq, occurred_at),
    oldest first."""
    placeholders = ", ".join("?" for _ in names)
    rows: list[Row] = conn.execute(
        "SELECT seq, occurred_at FROM events WHERE app_id = ? AND customer_id = ?"
        f" AND attributed = 0 AND name IN ({placeholders}) ORDER BY occurred_at, seq",
        (app_id, customer_id, *names),
    ).fetchall()
    return rows


def last_touch(
    conn: Connection, app_id: str, customer_id: str, since: float, until: float
) -> Row | None:
    """The customer's latest open or tap of a delivery between ``since`` and ``until``
    (delivery_id, token, device_id), if any."""
    row: Row | None = conn.execute(
        "SELECT delivery_id, token, device_id FROM metrics"
        " WHERE app_id = ? AND customer_id = ? AND metric IN ('opened', 'tapped')"
        " AND delivery_id IS NOT NULL AND occurred_at BETWEEN ? AND ?"
        " ORDER BY occurred_at DESC, seq DESC LIMIT 1",
        (app_id, customer_id, since, until),
    ).fetchone()
    return row


def insert_conversion(
    conn: Connection,
    app_id: str,
    client_id: str,
    touch: Row,
    customer_id: str,
    occurred_at: float,
    now: float,
) -> bool:
    """A ``converted`` metric on ``touch``'s delivery and token; False if one exists already."""
    cursor = conn.execute(
        "INSERT INTO metrics (app_id, client_id, metric, token, device_id,"
        " customer_id, delivery_id, occurred_at, received_at, source)"
        " VALUES (?, ?, 'converted', ?, ?, ?, ?, ?, ?, 'relay') ON CONFLICT DO NOTHING",
        (
            app_id,
            client_id,
            touch["token"],
            touch["device_id"],
            customer_id,
            touch["delivery_id"],
            occurred_at,
            now,
        ),
    )
    return cursor.rowcount == 1


def mark_event_attributed(conn: Connection, seq: int) -> None:
    conn.execute("UPDATE events SET attributed = 1 WHERE seq = ?", (seq,))
