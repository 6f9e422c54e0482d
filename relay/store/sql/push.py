"""Writes and reads for test pushes and token hygiene."""

from __future__ import annotations

from dataclasses import dataclass

from ulid import ULID

from relay.errors import NotFound, ValidationFailed
from relay.models.common import Counts
from relay.models.push import DeliveryTrace, TimelineEntry
from relay.store.connection import Connection, Row
from relay.store.sql.records import DEVICE_COLUMNS, LAST_SEEN, fetch_device, registered_device
from relay.timeutil import format_timestamp


@dataclass(frozen=True, slots=True)
class PushTarget:
    token: str
    platform: str
    environment: str
    status: str
    push_enabled: bool


def _target(row: Row) -> PushTarget:
    return PushTarget(
        row["token"], row["platform"], row["environment"], row["status"], bool(row["push_enabled"])
    )


def push_targets(
    conn: Connection, app_id: str, token: str | None, customer_id: str | None
) -> list[PushTarget]:
    """The device of ``token``, or every device of ``customer_id``; 404 if unknown."""
    if token is not None:
        return [_target(registered_device(conn, app_id, token))]
    profile = conn.execute(
        "SELECT suppressed FROM profiles WHERE app_id = ? AND customer_id = ?",
        (app_id, customer_id),
    ).fetchone()
    if profile is None:
        raise NotFound(f"profile {customer_id!r} does not exist")
    if profile[0]:
        raise ValidationFailed.at(
            "customer_id", f"customer {customer_id!r} is suppressed; relay will not send to it"
        )
    rows = conn.execute(
        f"SELECT {DEVICE_COLUMNS} FROM devices WHERE app_id = ? AND customer_id = ?"
        " ORDER BY first_seen, id",
        (app_id, customer_id),
    )
    return [_target(row) for row in rows]


def record_test_delivery(
    conn: Connection,
    app_id: str,
    delivery_id: str,
    title: str | None,
    body: str | None,
    deep_link: str | None,
    now: float,
) -> None:
    conn.execute(
        "INSERT INTO test_deliveries (app_id, delivery_id, created_at, title, body, deep_link)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (app_id, delivery_id, now, title, body, deep_link),
    )


def record_sent(
    conn: Connection, app_id: str, delivery_id: str, tokens: list[str], now: float
) -> None:
    """A ``sent`` metric per device, on the profile each has now."""
    for token in tokens:
        _record_sent(conn, app_id, delivery_id, token, now)


def _record_sent(conn: Connection, app_id: str, delivery_id: str, token: str, now: float) -> None:
    device = fetch_device(conn, app_id, token)
    conn.execute(
        "INSERT INTO metrics (app_id, client_id, metric, token, device_id, customer_id,"
        " anonymous_id, delivery_id, occurred_at, received_at, source)"
        " VALUES (?, ?, 'sent', ?, ?, ?, ?, ?, ?, ?, 'relay')",
        (
            app_id,
            f"relay-sent-{ULID()}",
            token,
            device["id"] if device else None,
            device["customer_id"] if device else None,
            device["anonymous_id"] if device else None,
            delivery_id,
            now,
            now,
        ),
    )


def mark_stale(
    conn: Connection, cutoff: float, after_id: int, limit: int
) -> tuple[int, int | None]:
    """Active tokens unseen since ``cutoff`` become ``stale`` (any app), among the ``limit``
    devices after ``after_id``: (how many, the last id looked at, None past the last device).

    A scan in id order, one chunk per call: no index on last_seen (every metric would have
    to move its entry), and no write transaction long enough to stall ingest.
    """
    last_id = conn.execute(
        "SELECT max(id) FROM (SELECT id FROM devices WHERE id > ? ORDER BY id LIMIT ?) AS chunk",
        (after_id, limit),
    ).fetchone()[0]
    if last_id is None:
        return 0, None
    cursor = conn.execute(
        "UPDATE devices SET status = 'stale'"
        f" WHERE id > ? AND id <= ? AND status = 'active' AND {LAST_SEEN} < ?",
        (after_id, last_id, cutoff),
    )
    return cursor.rowcount, last_id


_FUNNEL_METRICS = ("sent", "delivered", "opened", "tapped", "deep_link_failed", "converted")


def delivery_trace(conn: Connection, app_id: str, delivery_id: str) -> DeliveryTrace:
    rows = conn.execute(
        "SELECT occurred_at, metric, token, customer_id, action, deep_link, reason, source"
        " FROM metrics WHERE app_id = ? AND delivery_id = ? ORDER BY occurred_at, seq",
        (app_id, delivery_id),
    ).fetchall()
    known = conn.execute(
        "SELECT 1 FROM test_deliveries WHERE app_id = ? AND delivery_id = ?",
        (app_id, delivery_id),
    ).fetchone()
    if not rows and known is None:
        raise NotFound(f"no delivery {delivery_id!r}")
    funnel = Counts()
    timeline = []
    for row in rows:
        if row["metric"] in _FUNNEL_METRICS:
            setattr(funnel, row["metric"], getattr(funnel, row["metric"]) + 1)
        detail = {k: row[k] for k in ("action", "deep_link", "reason", "source") if row[k]}
        timeline.append(
            TimelineEntry(
                at=format_timestamp(row["occurred_at"]) or "",
                metric=row["metric"],
                token=row["token"],
                customer_id=row["customer_id"],
                detail=detail,
            )
        )
    return DeliveryTrace(delivery_id=delivery_id, funnel=funnel, timeline=timeline)
