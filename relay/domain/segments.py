"""Segment membership sync: who joined and who left since the last sync, as outbox operations."""

from __future__ import annotations

from relay.forward import ops
from relay.segments.query import SegmentQuery
from relay.store.connection import Connection
from relay.store.sql import segment_members
from relay.store.sql.outbox import enqueue

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
    segment_members.load_current_members(conn, query)
    added = segment_members.joined_members(conn, app_id, segment)
    # a profile merged away since is left out: telling Customer.io would recreate the person
    removed = segment_members.left_members(conn, app_id, segment)
    segment_members.replace_members(conn, app_id, segment)
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
