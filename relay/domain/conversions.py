"""Conversion attribution: last touch, by timestamp.

A conversion event (a configured name, after aliasing) on a profile produces one ``converted``
metric for the profile's most recent open or tap that happened at most ``window`` before the
event. Late facts attribute by their timestamps, so this runs whenever history joins a profile:
new events or opens, identify, login, refresh, merge. At most one ``converted`` exists per
(delivery, token): a second conversion on the same touch changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from ulid import ULID

from relay.forward import ops
from relay.store.connection import Connection
from relay.store.sql.outbox import enqueue, is_test_delivery


@dataclass(frozen=True, slots=True)
class AttributionRules:
    conversion_events: tuple[str, ...]
    window_seconds: float


def attribute_conversions(
    conn: Connection,
    app_id: str,
    customer_id: str | None,
    rules: AttributionRules,
    now: float,
) -> None:
    if customer_id is None or not rules.conversion_events:
        return
    names = ", ".join("?" for _ in rules.conversion_events)
    pending = conn.execute(
        "SELECT seq, occurred_at FROM events WHERE app_id = ? AND customer_id = ?"
        f" AND attributed = 0 AND name IN ({names}) ORDER BY occurred_at, seq",
        (app_id, customer_id, *rules.conversion_events),
    ).fetchall()
    for event in pending:
        touch = conn.execute(
            "SELECT delivery_id, token, device_id FROM metrics"
            " WHERE app_id = ? AND customer_id = ? AND metric IN ('opened', 'tapped')"
            " AND delivery_id IS NOT NULL AND occurred_at BETWEEN ? AND ?"
            " ORDER BY occurred_at DESC, seq DESC LIMIT 1",
            (
                app_id,
                customer_id,
                event["occurred_at"] - rules.window_seconds,
                event["occurred_at"],
            ),
        ).fetchone()
        if touch is None:
            continue
        cursor = conn.execute(
            "INSERT INTO metrics (app_id, client_id, metric, token, device_id,"
            " customer_id, delivery_id, occurred_at, received_at, source)"
            " VALUES (?, ?, 'converted', ?, ?, ?, ?, ?, ?, 'relay') ON CONFLICT DO NOTHING",
            (
                app_id,
                f"relay-converted-{ULID()}",
                touch["token"],
                touch["device_id"],
                customer_id,
                touch["delivery_id"],
                event["occurred_at"],
                now,
            ),
        )
        conn.execute("UPDATE events SET attributed = 1 WHERE seq = ?", (event["seq"],))
        # An index keeps one `converted` per (delivery, token): the one inserted here is the first.
        if cursor.rowcount == 1 and not is_test_delivery(conn, touch["delivery_id"]):
            op = ops.delivery_metric(
                touch["delivery_id"], touch["token"], "converted", event["occurred_at"]
            )
            enqueue(conn, app_id, [op], now)
