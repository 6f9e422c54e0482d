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

from relay.forward import ops
from relay.retention import FactKind
from relay.store.connection import Connection
from relay.store.sql import retention as retention_sql

# What tells an outbox item's kind of fact (see the rule above).
_EXPIRY_NAMES = retention_sql.ExpiryNames(
    batch=ops.BATCH,
    v1_events=ops.V1_ANONYMOUS_EVENT,
    tapped_event=ops.ACTION_TAPPED_EVENT,
    link_failed_event=ops.DEEP_LINK_FAILED_EVENT,
)


def delete_older(conn: Connection, table: FactKind, before: float, limit: int) -> int:
    """Delete up to ``limit`` rows of ``table`` that occurred before ``before``; how many."""
    return retention_sql.delete_older(conn, table, before, limit)


def delete_counters(conn: Connection, before: float) -> None:
    """The data-health counters of hours before ``before``: they describe nothing kept."""
    retention_sql.delete_counters(conn, before)


def expire_outbox(
    conn: Connection,
    metrics_before: float | None,
    events_before: float | None,
    after_seq: int,
    limit: int,
) -> tuple[int, int | None]:
    """Expire what the next ``limit`` outbox items after ``after_seq`` forward of facts past
    their horizon (None: that kind is kept forever). (expired, where to go on; None: done)."""
    upto = retention_sql.outbox_chunk_end(conn, after_seq, limit)
    if upto is None:
        return 0, None
    expired = retention_sql.expire_outbox_chunk(
        conn, after_seq, upto, metrics_before, events_before, _EXPIRY_NAMES
    )
    return expired, upto
