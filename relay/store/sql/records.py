"""Rows as the SQL modules pass them around, and their conversion to wire structs."""

from __future__ import annotations

import json

from relay.errors import NotFound
from relay.models.common import Counts
from relay.models.devices import Device, MetricView
from relay.store.connection import Connection, Row
from relay.timeutil import format_timestamp

# A device's last_seen, in a statement over ``devices``: the later of its own (PUT, refresh)
# and its ``device_seen`` row's (metrics; migration 0011 says why that row is apart).
LAST_SEEN = (
    "coalesce((SELECT seen.last_seen FROM device_seen AS seen"
    " WHERE seen.device_id = devices.id AND seen.last_seen > devices.last_seen),"
    " devices.last_seen)"
)
DEVICE_COLUMNS = (
    "id, app_id, token, platform, status, customer_id, anonymous_id, logged_out, push_enabled,"
    " environment, app_version, os_version, device_model, locale, timezone, attributes,"
    f" first_seen, {LAST_SEEN} AS last_seen, token_updated_at, invalid_reason, replaced_by"
)
METRIC_COLUMNS = (
    "client_id, metric, token, delivery_id, customer_id, occurred_at, received_at,"
    " action, deep_link, reason, source"
)


def fetch_device(conn: Connection, app_id: str, token: str) -> Row | None:
    # fetchone() is typed Any; engine.configure() sets row_factory = Row on every
    # connection, so a row is a Row.
    row: Row | None = conn.execute(
        f"SELECT {DEVICE_COLUMNS} FROM devices WHERE app_id = ? AND token = ?", (app_id, token)
    ).fetchone()
    return row


def registered_device(conn: Connection, app_id: str, token: str) -> Row:
    """`fetch_device`, or 404 naming the token."""
    row = fetch_device(conn, app_id, token)
    if row is None:
        raise NotFound(f"device {token!r} is not registered")
    return row


def counts_from(rows: list[Row]) -> Counts:
    counts = Counts()
    for metric, count in rows:
        if hasattr(counts, metric):
            setattr(counts, metric, count)
    return counts


def device_counts(conn: Connection, device_id: int) -> Counts:
    return counts_from(
        conn.execute(
            "SELECT metric, count(*) FROM metrics WHERE device_id = ? GROUP BY metric",
            (device_id,),
        ).fetchall()
    )


def device_model(conn: Connection, row: Row) -> Device:
    return Device(
        token=row["token"],
        app_id=row["app_id"],
        platform=row["platform"],
        status=row["status"],
        customer_id=row["customer_id"],
        anonymous_id=row["anonymous_id"],
        push_enabled=bool(row["push_enabled"]),
        environment=row["environment"],
        app_version=row["app_version"],
        os_version=row["os_version"],
        device_model=row["device_model"],
        locale=row["locale"],
        timezone=row["timezone"],
        attributes=json.loads(row["attributes"]),
        first_seen=format_timestamp(row["first_seen"]) or "",
        last_seen=format_timestamp(row["last_seen"]) or "",
        token_updated_at=format_timestamp(row["token_updated_at"]) or "",
        invalid_reason=row["invalid_reason"],
        replaced_by=row["replaced_by"],
        counts=device_counts(conn, row["id"]),
    )


def metric_view(row: Row) -> MetricView:
    return MetricView(
        id=row["client_id"],
        metric=row["metric"],
        token=row["token"],
        delivery_id=row["delivery_id"],
        customer_id=row["customer_id"],
        timestamp=format_timestamp(row["occurred_at"]) or "",
        received_at=format_timestamp(row["received_at"]) or "",
        action=row["action"],
        deep_link=row["deep_link"],
        reason=row["reason"],
        source=row["source"],
    )
