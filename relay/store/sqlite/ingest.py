"""Batch ingest of push metrics and conversion events: de-duplicated, attributed at receipt."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from relay.store.sqlite.attribution import ensure_profile, linked_customer
from relay.store.sqlite.records import NewEvent, NewMetric

# Replacement chains are short (one per token refresh); the bound only guards against a cycle.
_MAX_REPLACEMENT_HOPS = 16


@dataclass(frozen=True, slots=True)
class Owner:
    """Who a fact belongs to at receipt."""

    device_id: int | None
    customer_id: str | None
    anonymous_id: str | None


_NOBODY = Owner(None, None, None)


def resolve_device(conn: sqlite3.Connection, app_id: str, token: str) -> Owner:
    """The device a token reports for (following refreshes) and that device's profile."""
    for _ in range(_MAX_REPLACEMENT_HOPS):
        row = conn.execute(
            "SELECT id, customer_id, anonymous_id, status, replaced_by FROM devices"
            " WHERE app_id = ? AND token = ?",
            (app_id, token),
        ).fetchone()
        if row is None:
            return _NOBODY
        if row["status"] != "replaced" or row["replaced_by"] is None:
            return Owner(row["id"], row["customer_id"], row["anonymous_id"])
        token = row["replaced_by"]
    return _NOBODY


def _insert_counting(
    conn: sqlite3.Connection, sql: str, rows: list[tuple[object, ...]]
) -> tuple[int, int]:
    """INSERT OR IGNORE ``rows``; returns (accepted, duplicates). The first stored copy wins."""
    before = conn.total_changes
    conn.executemany(sql, rows)
    accepted = conn.total_changes - before
    return accepted, len(rows) - accepted


def _touch_devices(conn: sqlite3.Connection, device_ids: set[int], now: float) -> None:
    """A metric is a sign of life: last_seen moves forward and a stale token is active again."""
    conn.executemany(
        "UPDATE devices SET last_seen = max(last_seen, ?),"
        " status = CASE status WHEN 'stale' THEN 'active' ELSE status END WHERE id = ?",
        [(now, device_id) for device_id in device_ids],
    )


def ingest_metrics(
    conn: sqlite3.Connection, app_id: str, metrics: list[NewMetric], received_at: float
) -> tuple[int, int]:
    owners: dict[str, Owner] = {}
    rows = []
    for m in metrics:
        owner = owners.get(m.token)
        if owner is None:
            owner = owners[m.token] = resolve_device(conn, app_id, m.token)
        rows.append(
            (
                app_id,
                m.client_id,
                m.metric,
                m.token,
                owner.device_id,
                owner.customer_id,
                owner.anonymous_id,
                m.delivery_id,
                m.occurred_at,
                received_at,
                m.action,
                m.deep_link,
                m.reason,
                m.source,
            )
        )
    result = _insert_counting(
        conn,
        "INSERT OR IGNORE INTO metrics (app_id, client_id, metric, token, device_id, customer_id,"
        " anonymous_id, delivery_id, occurred_at, received_at, action, deep_link, reason, source)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    _touch_devices(
        conn, {o.device_id for o in owners.values() if o.device_id is not None}, received_at
    )
    return result


def ingest_events(
    conn: sqlite3.Connection, app_id: str, events: list[NewEvent], received_at: float
) -> tuple[int, int]:
    rows = []
    for e in events:
        owner = resolve_device(conn, app_id, e.token) if e.token else _NOBODY
        anonymous_id = e.anonymous_id or owner.anonymous_id
        customer_id = (
            e.customer_id or owner.customer_id or linked_customer(conn, app_id, e.anonymous_id)
        )
        if customer_id is not None:
            ensure_profile(conn, app_id, customer_id, received_at)
        rows.append(
            (
                app_id,
                e.client_id,
                e.name,
                e.original_name,
                e.token,
                owner.device_id,
                customer_id,
                anonymous_id,
                e.occurred_at,
                received_at,
                e.properties,
            )
        )
    return _insert_counting(
        conn,
        "INSERT OR IGNORE INTO events (app_id, client_id, name, original_name, token, device_id,"
        " customer_id, anonymous_id, occurred_at, received_at, properties)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
