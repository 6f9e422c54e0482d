"""The attribution rule's primitives: which profile a device, metric or event belongs to.

A metric or event is stamped with its device's profile when relay receives it. Facts received
while their device (or anonymous id) had no profile keep ``customer_id`` NULL until an
identify (or a login on that device) attaches them; attributed history never moves, except
through refresh (it follows the device) and merge (everything moves).
"""

from __future__ import annotations

from relay.forward import ops
from relay.store.connection import Connection, Row
from relay.store.sql.outbox import enqueue

FACT_TABLES = ("metrics", "events")


def ensure_profile(conn: Connection, app_id: str, customer_id: str, now: float) -> bool:
    """A profile exists once anything names its customer_id. True if this call created it."""
    cursor = conn.execute(
        "INSERT INTO profiles (app_id, customer_id, created_at, updated_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (app_id, customer_id) DO NOTHING",
        (app_id, customer_id, now, now),
    )
    return cursor.rowcount == 1


def ensure_person(conn: Connection, app_id: str, customer_id: str, now: float) -> None:
    """`ensure_profile`, and a new profile is identified to Customer.io before anything else
    about the person (a device or an event) is sent."""
    if ensure_profile(conn, app_id, customer_id, now):
        enqueue(conn, app_id, [ops.identify(customer_id, None, None, None, now)], now)


def linked_customer(conn: Connection, app_id: str, anonymous_id: str | None) -> str | None:
    """The customer an anonymous id was last identified as, if any."""
    if anonymous_id is None:
        return None
    row = conn.execute(
        "SELECT customer_id FROM anonymous_ids WHERE app_id = ? AND anonymous_id = ?",
        (app_id, anonymous_id),
    ).fetchone()
    return row[0] if row else None


def claim_waiting_facts(conn: Connection, device: Row) -> None:
    """Metrics and events that arrived before their token registered join the device now."""
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


def attach_device_history(conn: Connection, app_id: str, device_id: int, customer_id: str) -> None:
    """The device's facts that have no profile yet join ``customer_id``."""
    for table in FACT_TABLES:
        conn.execute(
            f"UPDATE {table} SET customer_id = ?"
            " WHERE device_id = ? AND customer_id IS NULL AND app_id = ?",
            (customer_id, device_id, app_id),
        )


def attach_anonymous_history(
    conn: Connection, app_id: str, anonymous_id: str, customer_id: str
) -> None:
    """Facts recorded under ``anonymous_id`` that have no profile yet join ``customer_id``."""
    for table in FACT_TABLES:
        conn.execute(
            f"UPDATE {table} SET customer_id = ?"
            " WHERE app_id = ? AND anonymous_id = ? AND customer_id IS NULL",
            (customer_id, app_id, anonymous_id),
        )
