"""Metrics and events: the devices they report for, their insertion, and what was new."""

from __future__ import annotations

import json
from collections.abc import Sequence

from relay.store.connection import Connection, Cursor, Row
from relay.store.dialect import dialect_of

# What a fact needs of the device it reports for (rows read by column name).
OWNER_COLUMNS = "id, customer_id, anonymous_id, status, replaced_by"


def device_owner(conn: Connection, app_id: str, token: str) -> Row | None:
    """The device row (`OWNER_COLUMNS`) of ``token``, refreshed or not; None if unknown."""
    row: Row | None = conn.execute(
        f"SELECT {OWNER_COLUMNS} FROM devices WHERE app_id = ? AND token = ?",
        (app_id, token),
    ).fetchone()
    return row


def device_owners(conn: Connection, app_id: str, tokens: set[str]) -> Cursor:
    """The device rows (``token`` and `OWNER_COLUMNS`) of those of ``tokens`` that are known."""
    return conn.execute(
        f"SELECT token, {OWNER_COLUMNS} FROM devices"
        f" WHERE app_id = ? AND token IN ({dialect_of(conn).values_of('text')})",
        (app_id, json.dumps(list(tokens))),
    )


def _insert_new(
    conn: Connection, table: str, sql: str, rows: Sequence[tuple[object, ...]]
) -> tuple[int, int, int]:
    """Insert ``rows`` but those already stored: (accepted, duplicates, seq before). The
    first copy wins.

    Rows this call inserted are exactly those with ``seq`` above the returned one that this
    transaction sees: on SQLite relay has a single writer; on PostgreSQL the transaction's
    snapshot shows no row committed by another process after it began.
    """
    before = conn.execute(f"SELECT coalesce(max(seq), 0) FROM {table}").fetchone()[0]
    accepted = conn.executemany(sql, rows).rowcount
    return accepted, len(rows) - accepted, before


def insert_new_metrics(
    conn: Connection, rows: Sequence[tuple[object, ...]]
) -> tuple[int, int, int]:
    """Insert metric rows (app_id, client_id, metric, token, device_id, customer_id,
    anonymous_id, delivery_id, occurred_at, received_at, action, deep_link, reason, source)
    but those already stored: (accepted, duplicates, seq before)."""
    return _insert_new(
        conn,
        "metrics",
        "INSERT INTO metrics (app_id, client_id, metric, token, device_id, customer_id,"
        " anonymous_id, delivery_id, occurred_at, received_at, action, deep_link, reason, source)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        rows,
    )


def insert_new_events(conn: Connection, rows: Sequence[tuple[object, ...]]) -> tuple[int, int, int]:
    """Insert event rows (app_id, client_id, name, original_name, token, device_id,
    customer_id, anonymous_id, occurred_at, received_at, properties) but those already
    stored: (accepted, duplicates, seq before)."""
    return _insert_new(
        conn,
        "events",
        "INSERT INTO events (app_id, client_id, name, original_name, token, device_id,"
        " customer_id, anonymous_id, occurred_at, received_at, properties)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        rows,
    )


def mark_devices_seen(conn: Connection, device_ids: Sequence[int], now: float) -> None:
    """Move ``last_seen`` of the devices forward to ``now``.

    In id order: two relay processes touching the same devices then lock them in the same
    order, and wait for each other instead of deadlocking (PostgreSQL)."""
    conn.execute(
        f"UPDATE devices SET last_seen = ? WHERE id IN ({dialect_of(conn).values_of()})"
        " AND last_seen < ?",
        (now, json.dumps(sorted(set(device_ids))), now),
    )


def reactivate_stale_devices(conn: Connection, device_ids: Sequence[int]) -> None:
    """Those of the devices that are stale become active again (in id order, as above)."""
    conn.execute(
        "UPDATE devices SET status = 'active'"
        f" WHERE id IN ({dialect_of(conn).values_of()}) AND status = 'stale'",
        (json.dumps(sorted(set(device_ids))),),
    )


# The rows this transaction stored: above ``seq`` and up to the last one. The upper bound
# changes nothing in the result; it tells PostgreSQL's planner the range is narrow, which
# ``seq > $1`` alone does not while the table's statistics lag behind its growth (it then
# scans the whole table, once per commit).
_AFTER = "seq > ? AND seq <= (SELECT max(seq) FROM {0})"


def qa_deliveries_after(conn: Connection, seq: int) -> set[str]:
    """The test deliveries (relay's own QA pushes) named by metrics stored after ``seq``."""
    return {
        row[0]
        for row in conn.execute(
            "SELECT delivery_id FROM test_deliveries WHERE delivery_id IN"
            f" (SELECT delivery_id FROM metrics WHERE {_AFTER.format('metrics')}"
            " AND delivery_id IS NOT NULL)",
            (seq,),
        )
    }


# A metric's kind for de-duplication: a tap is an open.
_KIND = "CASE {0}.metric WHEN 'tapped' THEN 'opened' ELSE {0}.metric END"
_DELIVERY_METRICS_AFTER = f"""
SELECT metric, token, delivery_id, customer_id, anonymous_id, occurred_at, action, deep_link,
    reason,
    NOT EXISTS (
        SELECT 1 FROM metrics AS earlier
        WHERE earlier.app_id = m.app_id AND earlier.delivery_id = m.delivery_id
            AND earlier.seq < m.seq AND earlier.token = m.token
            AND {_KIND.format("earlier")} = {_KIND.format("m")}
    ) AS first_of_its_kind
FROM metrics AS m
WHERE {_AFTER.format("metrics")} AND delivery_id IS NOT NULL
"""


def delivery_metrics_after(conn: Connection, seq: int) -> Cursor:
    """The metrics stored after ``seq`` that name a delivery, each with ``first_of_its_kind``:
    whether no earlier metric of its kind (a tap counts as an open) exists for its delivery
    and token."""
    return conn.execute(_DELIVERY_METRICS_AFTER, (seq,))


def client_ids_after(conn: Connection, table: str, seq: int) -> list[str]:
    """The client ids of the metrics or events (``table``) stored after ``seq``."""
    return [
        row[0]
        for row in conn.execute(
            f"SELECT client_id FROM {table} WHERE {_AFTER.format(table)}", (seq,)
        )
    ]


def events_after(conn: Connection, seq: int) -> list[Row]:
    """The events stored after ``seq``: client_id, name, occurred_at, properties,
    customer_id, anonymous_id."""
    rows: list[Row] = conn.execute(
        "SELECT client_id, name, occurred_at, properties, customer_id, anonymous_id FROM events"
        f" WHERE {_AFTER.format('events')}",
        (seq,),
    ).fetchall()
    return rows


def event_customers_after(conn: Connection, seq: int) -> list[Row]:
    """The distinct known customers (one-column rows) of the events stored after ``seq``."""
    rows: list[Row] = conn.execute(
        f"SELECT DISTINCT customer_id FROM events WHERE {_AFTER.format('events')}"
        " AND customer_id IS NOT NULL",
        (seq,),
    ).fetchall()
    return rows
