"""Metrics and events: the devices they report for, their insertion, and what was new."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from relay.models.outbox import RowsOp
from relay.store.connection import Connection, Cursor, Row
from relay.store.dialect import POSTGRES, dialect_of
from relay.store.sql.outbox import enqueue_rows

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


@dataclass(frozen=True, slots=True)
class Stored:
    """The rows of a table this transaction just stored: a condition on ``seq`` and its one
    parameter, for statements that read them back."""

    condition: str
    param: object


_METRIC_COLUMNS = (
    ("app_id", "text"),
    ("client_id", "text"),
    ("metric", "text"),
    ("token", "text"),
    ("device_id", "bigint"),
    ("customer_id", "text"),
    ("anonymous_id", "text"),
    ("delivery_id", "text"),
    ("occurred_at", "double precision"),
    ("received_at", "double precision"),
    ("action", "text"),
    ("deep_link", "text"),
    ("reason", "text"),
    ("source", "text"),
)
_EVENT_COLUMNS = (
    ("app_id", "text"),
    ("client_id", "text"),
    ("name", "text"),
    ("original_name", "text"),
    ("token", "text"),
    ("device_id", "bigint"),
    ("customer_id", "text"),
    ("anonymous_id", "text"),
    ("occurred_at", "double precision"),
    ("received_at", "double precision"),
    ("properties", "text"),
)


@functools.cache
def _insert_rows_sql(table: str, columns: tuple[tuple[str, str], ...], postgres: bool) -> str:
    names = ", ".join(name for name, _ in columns)
    if not postgres:
        marks = ", ".join("?" for _ in columns)
        return f"INSERT INTO {table} ({names}) VALUES ({marks}) ON CONFLICT DO NOTHING"
    # One statement for all rows, in their order (the first copy wins), returning what it
    # stored: no round trip per row, and the returned seqs name the new rows exactly.
    arrays = ", ".join(f"CAST(? AS {sql_type}[])" for _, sql_type in columns)
    return (
        f"INSERT INTO {table} ({names}) SELECT {names}"
        f" FROM unnest({arrays}) WITH ORDINALITY AS given ({names}, position)"
        " ORDER BY position ON CONFLICT DO NOTHING RETURNING seq"
    )


def _insert_new(
    conn: Connection,
    table: str,
    columns: tuple[tuple[str, str], ...],
    rows: Sequence[tuple[object, ...]],
) -> tuple[int, Stored]:
    """Insert ``rows`` but those already stored (the first copy wins): how many it stored,
    and which."""
    if dialect_of(conn) is POSTGRES:
        sql = _insert_rows_sql(table, columns, postgres=True)
        by_column = list(zip(*rows, strict=True)) or [()] * len(columns)  # a column per array
        arrays = [list(values) for values in by_column]
        seqs = [seq for (seq,) in conn.execute(sql, arrays)]
        return len(seqs), Stored("seq = ANY(CAST(? AS bigint[]))", seqs)
    # SQLite has one writer: the rows this call inserted are exactly those above the end.
    before = conn.execute(f"SELECT coalesce(max(seq), 0) FROM {table}").fetchone()[0]
    accepted = conn.executemany(_insert_rows_sql(table, columns, postgres=False), rows).rowcount
    return accepted, Stored(f"seq > ? AND seq <= (SELECT max(seq) FROM {table})", before)


def insert_new_metrics(conn: Connection, rows: Sequence[tuple[object, ...]]) -> tuple[int, Stored]:
    """Insert metric rows (app_id, client_id, metric, token, device_id, customer_id,
    anonymous_id, delivery_id, occurred_at, received_at, action, deep_link, reason, source)
    but those already stored: (how many it stored, which)."""
    return _insert_new(conn, "metrics", _METRIC_COLUMNS, rows)


def insert_new_events(conn: Connection, rows: Sequence[tuple[object, ...]]) -> tuple[int, Stored]:
    """Insert event rows (app_id, client_id, name, original_name, token, device_id,
    customer_id, anonymous_id, occurred_at, received_at, properties) but those already
    stored: (how many it stored, which)."""
    return _insert_new(conn, "events", _EVENT_COLUMNS, rows)


def mark_devices_seen(conn: Connection, device_ids: Sequence[int], now: float) -> None:
    """Move the devices' ``last_seen`` forward to ``now`` (in ``device_seen``: the narrow row
    a metric rewrites instead of the device's own; `records.LAST_SEEN` reads both).

    In id order: two relay processes touching the same devices then lock them in the same
    order, and wait for each other instead of deadlocking (PostgreSQL)."""
    # ``WHERE true``: SQLite would read a bare SELECT's ON CONFLICT as a join constraint.
    conn.execute(
        "INSERT INTO device_seen (device_id, last_seen)"
        f" SELECT value, ? FROM ({dialect_of(conn).values_of()}) AS seen WHERE true"
        " ON CONFLICT (device_id) DO UPDATE SET last_seen = excluded.last_seen"
        " WHERE device_seen.last_seen < excluded.last_seen",
        (now, json.dumps(sorted(set(device_ids)))),
    )


def reactivate_stale_devices(conn: Connection, device_ids: Sequence[int]) -> None:
    """Those of the devices that are stale become active again (in id order, as above)."""
    conn.execute(
        "UPDATE devices SET status = 'active'"
        f" WHERE id IN ({dialect_of(conn).values_of()}) AND status = 'stale'",
        (json.dumps(sorted(set(device_ids))),),
    )


# A metric's kind for de-duplication: a tap is an open.
_KIND = "CASE {0}.metric WHEN 'tapped' THEN 'opened' ELSE {0}.metric END"
# Customer.io hears a delivery metric once per delivery, token and kind, whatever relay
# received: no earlier metric of its kind exists (through metrics_by_delivery).
_FIRST_OF_ITS_KIND = f"""NOT EXISTS (
    SELECT 1 FROM metrics AS earlier
    WHERE earlier.app_id = m.app_id AND earlier.delivery_id = m.delivery_id
        AND earlier.seq < m.seq AND earlier.token = m.token
        AND {_KIND.format("earlier")} = {_KIND.format("m")}
)"""
# relay's own QA pushes: Customer.io does not know their deliveries.
_NOT_A_TEST_DELIVERY = (
    "NOT EXISTS (SELECT 1 FROM test_deliveries AS qa WHERE qa.delivery_id = m.delivery_id)"
)


def enqueue_delivery_metrics(
    conn: Connection, stored: Stored, op: RowsOp, names: Mapping[str, str], now: float
) -> None:
    """``op`` for each ``stored`` metric of a kind in ``names`` (kind → the name Customer.io
    knows it by, offered as column ``name``) that is the first of its kind for its delivery
    and token, unless its delivery is a test delivery: one statement for all of them."""
    cases = " ".join("WHEN ? THEN ?" for _ in names)
    kinds = ", ".join("?" for _ in names)
    rows = (
        f"SELECT m.seq, m.app_id, m.token, m.delivery_id, m.occurred_at,"
        f" CASE m.metric {cases} END AS name FROM metrics AS m"
        f" WHERE {stored.condition} AND m.delivery_id IS NOT NULL AND m.metric IN ({kinds})"
        f" AND {_NOT_A_TEST_DELIVERY} AND {_FIRST_OF_ITS_KIND}"
    )
    params = [*(v for pair in names.items() for v in pair), stored.param, *names]
    enqueue_rows(conn, op, rows, params, now)


def delivery_metrics_among(conn: Connection, stored: Stored, kinds: Sequence[str]) -> list[Row]:
    """The ``stored`` metrics of ``kinds`` that name a delivery other than a test delivery
    (metric, token, delivery_id, customer_id, anonymous_id, occurred_at, action, deep_link,
    reason), in order."""
    marks = ", ".join("?" for _ in kinds)
    rows: list[Row] = conn.execute(
        "SELECT metric, token, delivery_id, customer_id, anonymous_id, occurred_at, action,"
        " deep_link, reason FROM metrics AS m"
        f" WHERE {stored.condition} AND delivery_id IS NOT NULL AND metric IN ({marks})"
        f" AND {_NOT_A_TEST_DELIVERY} ORDER BY seq",
        (stored.param, *kinds),
    ).fetchall()
    return rows


def customers_among(conn: Connection, stored: Stored, kinds: Sequence[str]) -> set[str]:
    """The known customers of the ``stored`` metrics of ``kinds`` that name a delivery."""
    marks = ", ".join("?" for _ in kinds)
    return {
        row[0]
        for row in conn.execute(
            f"SELECT DISTINCT customer_id FROM metrics WHERE {stored.condition}"
            f" AND delivery_id IS NOT NULL AND metric IN ({marks}) AND customer_id IS NOT NULL",
            (stored.param, *kinds),
        )
    }


def client_ids_among(conn: Connection, table: str, stored: Stored) -> list[str]:
    """The client ids of the ``stored`` metrics or events (``table``)."""
    sql = f"SELECT client_id FROM {table} WHERE {stored.condition}"
    return [row[0] for row in conn.execute(sql, (stored.param,))]


def events_among(conn: Connection, stored: Stored) -> list[Row]:
    """The ``stored`` events: client_id, name, occurred_at, properties, customer_id,
    anonymous_id."""
    rows: list[Row] = conn.execute(
        "SELECT client_id, name, occurred_at, properties, customer_id, anonymous_id FROM events"
        f" WHERE {stored.condition}",
        (stored.param,),
    ).fetchall()
    return rows


def event_customers_among(conn: Connection, stored: Stored) -> list[Row]:
    """The distinct known customers (one-column rows) of the ``stored`` events."""
    rows: list[Row] = conn.execute(
        f"SELECT DISTINCT customer_id FROM events WHERE {stored.condition}"
        " AND customer_id IS NOT NULL",
        (stored.param,),
    ).fetchall()
    return rows
