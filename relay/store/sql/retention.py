"""Pruning statements: facts and counters older than a horizon, outbox items that forward them.

An outbox item forwards a stored fact, of one kind or the other, as its endpoint, lane and
payload tell; the endpoint and event names that tell it are the forwarder's, so the caller
passes them in (`ExpiryNames`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

from relay.store.connection import Connection
from relay.store.dialect import Dialect, dialect_of


@dataclass(frozen=True, slots=True)
class ExpiryNames:
    """The names an outbox item's kind of fact is read from."""

    batch: str  # the endpoint of batched person and delivery operations
    v1_events: str  # the endpoint of v1 anonymous events
    tapped_event: str  # the person event derived from a tap
    link_failed_event: str  # the person event derived from a failed deep link


# A forwarded fact's time, and what kind of fact it is (NULL: not a fact).
def _fact_kind(d: Dialect) -> str:
    def field(*path: str) -> str:
        return d.json_text("payload", *path)

    return f"""
CASE
    WHEN endpoint = :batch AND lane LIKE 'token:%'
        AND {field("type")} = 'delivery'
        AND {field("action")} = 'event' THEN 'metrics'
    WHEN NOT (
        (endpoint = :batch AND lane LIKE 'person:%'
            AND {field("type")} = 'person'
            AND {field("action")} = 'event')
        OR (endpoint = :v1_events
            AND coalesce({field("type")}, 'event') = 'event')
    ) THEN NULL
    WHEN {field("name")} IN (:tapped_event, :link_failed_event)
        AND coalesce({field("attributes", "delivery_id")},
            {field("data", "delivery_id")}) IS NOT NULL
        AND coalesce({field("attributes", "token")},
            {field("data", "token")}) IS NOT NULL THEN 'metrics'
    ELSE 'events'
END
"""


@functools.cache
def _expire_chunk(d: Dialect) -> str:
    return f"""
DELETE FROM outbox
WHERE seq > :after AND seq <= :upto
    AND {d.json_number("payload", "timestamp")} + 1 <= CASE ({_fact_kind(d)})
        WHEN 'metrics' THEN CAST(:metrics_before AS double precision)
        WHEN 'events' THEN CAST(:events_before AS double precision)
    END
"""


def delete_older(
    conn: Connection, table: Literal["metrics", "events"], before: float, limit: int
) -> int:
    """Delete up to ``limit`` rows of ``table`` that occurred before ``before``; how many."""
    cursor = conn.execute(
        f"DELETE FROM {table} WHERE seq IN"
        f" (SELECT seq FROM {table} WHERE occurred_at < ? ORDER BY occurred_at LIMIT ?)",
        (before, limit),
    )
    return cursor.rowcount


def delete_counters(conn: Connection, before: float) -> None:
    """Delete the data-health counters of hours before ``before``."""
    conn.execute("DELETE FROM data_health_counts WHERE hour < ?", (before,))


def outbox_chunk_end(conn: Connection, after_seq: int, limit: int) -> int | None:
    """The last seq of the next ``limit`` outbox items after ``after_seq`` (None: none)."""
    upto: int | None = conn.execute(
        "SELECT max(seq) FROM (SELECT seq FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?) AS chunk",
        (after_seq, limit),
    ).fetchone()[0]
    return upto


def expire_outbox_chunk(
    conn: Connection,
    after_seq: int,
    upto: int,
    metrics_before: float | None,
    events_before: float | None,
    names: ExpiryNames,
) -> int:
    """Delete the outbox items in ``after_seq < seq <= upto`` that forward a metric whose
    payload timestamp (+1) is at or before ``metrics_before``, or an event one at or before
    ``events_before`` (None: none of that kind); how many."""
    cursor = conn.execute(
        _expire_chunk(dialect_of(conn)),
        {
            "after": after_seq,
            "upto": upto,
            "metrics_before": metrics_before,
            "events_before": events_before,
            "batch": names.batch,
            "v1_events": names.v1_events,
            "tapped_event": names.tapped_event,
            "link_failed_event": names.link_failed_event,
        },
    )
    return cursor.rowcount
