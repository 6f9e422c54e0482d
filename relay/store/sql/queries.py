"""Reads for the admin API and the CLI."""

from __future__ import annotations

import json

from relay.errors import NotFound
from relay.models.devices import DeviceDetail
from relay.models.identity import Profile
from relay.store.connection import Connection
from relay.store.sql.records import (
    DEVICE_COLUMNS,
    METRIC_COLUMNS,
    counts_from,
    device_model,
    metric_view,
    registered_device,
)
from relay.timeutil import format_timestamp

RECENT_METRICS = 50


def device_detail(conn: Connection, app_id: str, token: str) -> DeviceDetail:
    row = registered_device(conn, app_id, token)
    recent = conn.execute(
        f"SELECT {METRIC_COLUMNS} FROM metrics WHERE device_id = ?"
        " ORDER BY occurred_at DESC, seq DESC LIMIT ?",
        (row["id"], RECENT_METRICS),
    ).fetchall()
    device = device_model(conn, row)
    fields = {name: getattr(device, name) for name in device.__struct_fields__}
    return DeviceDetail(**fields, recent_metrics=[metric_view(m) for m in recent])


def device_status(conn: Connection, app_id: str, token: str) -> str:
    row = registered_device(conn, app_id, token)
    return str(row["status"])


def profile(
    conn: Connection, app_id: str, customer_id: str, conversion_events: tuple[str, ...]
) -> Profile:
    row = conn.execute(
        "SELECT email, attributes, suppressed FROM profiles WHERE app_id = ? AND customer_id = ?",
        (app_id, customer_id),
    ).fetchone()
    if row is None:
        raise NotFound(f"profile {customer_id!r} does not exist")
    key = (app_id, customer_id)
    anonymous_ids = [
        r[0]
        for r in conn.execute(
            "SELECT anonymous_id FROM anonymous_ids WHERE app_id = ? AND customer_id = ?"
            " ORDER BY identified_at, anonymous_id",
            key,
        )
    ]
    devices = conn.execute(
        f"SELECT {DEVICE_COLUMNS} FROM devices WHERE app_id = ? AND customer_id = ?"
        " ORDER BY first_seen, id",
        key,
    ).fetchall()
    counts = counts_from(
        conn.execute(
            "SELECT metric, count(*) FROM metrics WHERE app_id = ? AND customer_id = ?"
            " GROUP BY metric",
            key,
        ).fetchall()
    )
    last_opened = conn.execute(
        "SELECT max(occurred_at) FROM metrics WHERE app_id = ? AND customer_id = ?"
        " AND metric IN ('opened', 'tapped')",
        key,
    ).fetchone()[0]
    placeholders = ", ".join("?" for _ in conversion_events) or "NULL"
    last_converted = conn.execute(
        "SELECT max(occurred_at) FROM events WHERE app_id = ? AND customer_id = ?"
        f" AND name IN ({placeholders})",
        (*key, *conversion_events),
    ).fetchone()[0]
    return Profile(
        customer_id=customer_id,
        email=row["email"],
        attributes=json.loads(row["attributes"]),
        suppressed=bool(row["suppressed"]),
        anonymous_ids=anonymous_ids,
        devices=[device_model(conn, d) for d in devices],
        counts=counts,
        last_opened_at=format_timestamp(last_opened),
        last_converted_at=format_timestamp(last_converted),
    )


def ping(conn: Connection) -> None:
    conn.execute("SELECT 1").fetchone()
