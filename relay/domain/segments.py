"""Segment membership sync: who joined and who left since the last sync, as outbox operations."""

from __future__ import annotations

from dataclasses import replace

from relay.forward import ops
from relay.segments.query import SegmentQuery
from relay.store.connection import Connection
from relay.store.dialect import dialect_of
from relay.store.sql.outbox import enqueue
from relay.store.sql.segment_sql import segment_sql

# Customer.io's manual-segment endpoints take a list of ids; stay well inside what it accepts.
IDS_PER_REQUEST = 1000


def sync_members(
    conn: Connection,
    app_id: str,
    segment: str,
    query: SegmentQuery,
    customerio_segment_id: str | None,
    now: float,
) -> tuple[int, int]:
    """Diff the segment's members now against the last sync; enqueue the changes."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS current_members (customer_id TEXT PRIMARY KEY)")
    conn.execute("DELETE FROM current_members")
    sql = segment_sql(replace(query, columns=("customer_id",)), dialect_of(conn))
    conn.execute(f"INSERT INTO current_members {sql}", query.params)
    added = [
        row[0]
        for row in conn.execute(
            "SELECT customer_id FROM current_members WHERE customer_id NOT IN"
            " (SELECT customer_id FROM segment_members WHERE app_id = ? AND segment = ?)"
            " ORDER BY customer_id",
            (app_id, segment),
        )
    ]
    removed = [
        row[0]
        for row in conn.execute(
            "SELECT customer_id FROM segment_members WHERE app_id = ? AND segment = ?"
            " AND customer_id NOT IN (SELECT customer_id FROM current_members)"
            # a profile merged away since: telling Customer.io would recreate the person
            " AND customer_id IN (SELECT customer_id FROM profiles WHERE app_id = ?)"
            " ORDER BY customer_id",
            (app_id, segment, app_id),
        )
    ]
    conn.execute("DELETE FROM segment_members WHERE app_id = ? AND segment = ?", (app_id, segment))
    conn.execute(
        "INSERT INTO segment_members (app_id, segment, customer_id)"
        " SELECT ?, ?, customer_id FROM current_members",
        (app_id, segment),
    )
    conn.execute("DELETE FROM current_members")
    if customerio_segment_id is None:
        attribute = f"relay_{segment}"
        changes = [ops.person_attributes(c, {attribute: True}, now) for c in added]
        changes += [ops.person_attributes(c, {attribute: False}, now) for c in removed]
    else:
        changes = [
            ops.manual_segment(customerio_segment_id, action, chunk)
            for action, ids in (("add_customers", added), ("remove_customers", removed))
            for chunk in _chunks(ids, IDS_PER_REQUEST)
        ]
    enqueue(conn, app_id, changes, now)
    return len(added), len(removed)


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
