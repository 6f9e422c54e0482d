"""A segment's members as of its last sync, against its members now.

A sync fills the connection's temporary table ``current_members`` with the segment's members
now (`load_current_members`), reads who joined and who left, then makes them the members as
of this sync (`replace_members`).
"""

from __future__ import annotations

from dataclasses import replace

from relay.models.segments import SegmentQuery
from relay.store.connection import Connection
from relay.store.dialect import dialect_of
from relay.store.sql.segment_sql import segment_sql


def load_current_members(conn: Connection, query: SegmentQuery) -> None:
    """Fill ``current_members`` with the customer ids ``query`` selects now."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS current_members (customer_id TEXT PRIMARY KEY)")
    conn.execute("DELETE FROM current_members")
    sql = segment_sql(replace(query, columns=("customer_id",)), dialect_of(conn))
    conn.execute(f"INSERT INTO current_members {sql}", query.params)


def joined_members(conn: Connection, app_id: str, segment: str) -> list[str]:
    """The current members that were not members as of the last sync, in id order."""
    return [
        row[0]
        for row in conn.execute(
            "SELECT customer_id FROM current_members WHERE customer_id NOT IN"
            " (SELECT customer_id FROM segment_members WHERE app_id = ? AND segment = ?)"
            " ORDER BY customer_id",
            (app_id, segment),
        )
    ]


def left_members(conn: Connection, app_id: str, segment: str) -> list[str]:
    """The members as of the last sync that are no longer members and still have a profile
    (not merged away since), in id order."""
    return [
        row[0]
        for row in conn.execute(
            "SELECT customer_id FROM segment_members WHERE app_id = ? AND segment = ?"
            " AND customer_id NOT IN (SELECT customer_id FROM current_members)"
            " AND customer_id IN (SELECT customer_id FROM profiles WHERE app_id = ?)"
            " ORDER BY customer_id",
            (app_id, segment, app_id),
        )
    ]


def replace_members(conn: Connection, app_id: str, segment: str) -> None:
    """The current members become the segment's members as of this sync."""
    conn.execute("DELETE FROM segment_members WHERE app_id = ? AND segment = ?", (app_id, segment))
    conn.execute(
        "INSERT INTO segment_members (app_id, segment, customer_id)"
        " SELECT ?, ?, customer_id FROM current_members",
        (app_id, segment),
    )
    conn.execute("DELETE FROM current_members")
