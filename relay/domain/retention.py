"""Pruning by timestamp, a bounded chunk per write transaction (ingest commits in between).

The outbox has no column naming the fact an item was enqueued for, but every item that
forwards a stored fact carries that fact's time in its payload, so the rule is:

    an outbox item (pending or dead) expires when it forwards a stored fact — a delivery
    metric, a person event or an event of an anonymous (or unknown) person — whose payload
    ``timestamp`` shows the fact is older than its kind's horizon.

Delivery metrics (``type: delivery`` in a device's ``token:`` lane, relay's conversions
included) and the person events relay derives from metrics (``Push Action Tapped``, ``Deep Link
Failed``, carrying the delivery and token) follow the metrics horizon; other events the events
horizon. Everything else (identifies, devices, merges, deletes, views, calls relay passes on as
they came) is never expired: no stored fact stands behind it. Payload timestamps are whole
seconds, cut down from the fact's time: an item expires only when ``timestamp + 1`` is at or
before the horizon, i.e. when its fact is certainly older than the horizon (and so pruned too).
"""

from __future__ import annotations

import functools

from relay.forward import ops
from relay.retention import FactKind
from relay.store.connection import Connection
from relay.store.dialect import Dialect, dialect_of


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


def delete_older(conn: Connection, table: FactKind, before: float, limit: int) -> int:
    """Delete up to ``limit`` rows of ``table`` that occurred before ``before``; how many."""
    cursor = conn.execute(
        f"DELETE FROM {table} WHERE seq IN"
        f" (SELECT seq FROM {table} WHERE occurred_at < ? ORDER BY occurred_at LIMIT ?)",
        (before, limit),
    )
    return cursor.rowcount


def delete_counters(conn: Connection, before: float) -> None:
    """The data-health counters of hours before ``before``: they describe nothing kept."""
    conn.execute("DELETE FROM data_health_counts WHERE hour < ?", (before,))


def expire_outbox(
    conn: Connection,
    metrics_before: float | None,
    events_before: float | None,
    after_seq: int,
    limit: int,
) -> tuple[int, int | None]:
    """Expire what the next ``limit`` outbox items after ``after_seq`` forward of facts past
    their horizon (None: that kind is kept forever). (expired, where to go on; None: done)."""
    upto = conn.execute(
        "SELECT max(seq) FROM (SELECT seq FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?) AS chunk",
        (after_seq, limit),
    ).fetchone()[0]
    if upto is None:
        return 0, None
    cursor = conn.execute(
        _expire_chunk(dialect_of(conn)),
        {
            "after": after_seq,
            "upto": upto,
            "metrics_before": metrics_before,
            "events_before": events_before,
            "batch": ops.BATCH,
            "v1_events": ops.V1_ANONYMOUS_EVENT,
            "tapped_event": ops.ACTION_TAPPED_EVENT,
            "link_failed_event": ops.DEEP_LINK_FAILED_EVENT,
        },
    )
    return cursor.rowcount, upto
