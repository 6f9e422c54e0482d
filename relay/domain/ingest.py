"""Batch ingest of push metrics and conversion events: de-duplicated, attributed at receipt."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from relay.domain.attribution import ensure_person, linked_customer
from relay.domain.conversions import AttributionRules, attribute_conversions
from relay.facts import NewEvent, NewMetric
from relay.forward import ops
from relay.store.connection import Connection, Row
from relay.store.dialect import dialect_of
from relay.store.sql.outbox import enqueue

# Replacement chains are short (one per token refresh); the bound only guards against a cycle.
_MAX_REPLACEMENT_HOPS = 16


@dataclass(frozen=True, slots=True)
class Owner:
    """Who a fact belongs to at receipt."""

    device_id: int | None
    customer_id: str | None
    anonymous_id: str | None
    stale: bool = False


_NOBODY = Owner(None, None, None)
_OWNER_COLUMNS = "id, customer_id, anonymous_id, status, replaced_by"


def _owner(row: Row) -> Owner:
    return Owner(row["id"], row["customer_id"], row["anonymous_id"], row["status"] == "stale")


def _is_replaced(row: Row) -> bool:
    return row["status"] == "replaced" and row["replaced_by"] is not None


def resolve_device(conn: Connection, app_id: str, token: str) -> Owner:
    """The device a token reports for (following refreshes) and that device's profile."""
    for _ in range(_MAX_REPLACEMENT_HOPS):
        row = conn.execute(
            f"SELECT {_OWNER_COLUMNS} FROM devices WHERE app_id = ? AND token = ?",
            (app_id, token),
        ).fetchone()
        if row is None:
            return _NOBODY
        if not _is_replaced(row):
            return _owner(row)
        token = row["replaced_by"]
    return _NOBODY


def resolve_devices(conn: Connection, app_id: str, tokens: set[str]) -> dict[str, Owner]:
    """`resolve_device` for many tokens: one query, then a hop per refreshed token."""
    owners = dict.fromkeys(tokens, _NOBODY)
    for row in conn.execute(
        f"SELECT token, {_OWNER_COLUMNS} FROM devices"
        f" WHERE app_id = ? AND token IN ({dialect_of(conn).values_of('text')})",
        (app_id, json.dumps(list(tokens))),
    ):
        token = row["token"]
        owners[token] = resolve_device(conn, app_id, token) if _is_replaced(row) else _owner(row)
    return owners


def _insert_new(
    conn: Connection, table: str, sql: str, rows: Sequence[tuple[object, ...]]
) -> tuple[int, int, int]:
    """Insert ``rows`` but those already stored: (accepted, duplicates, seq before). The
    first copy wins.

    Rows this call inserted are exactly those with ``seq`` above the returned one that this
    transaction sees: on SQLite relay has a single writer; on PostgreSQL the transaction's
    snapshot shows no row committed by another process after it began.
    """
    before = conn.execute(f"SELECT coalesce(max(seq), 0) FROM {table}").fetchone()[0]
    accepted = conn.executemany(sql, rows).rowcount
    return accepted, len(rows) - accepted, before


def _touch_devices(conn: Connection, owners: Iterable[Owner], now: float) -> None:
    """A metric is a sign of life: last_seen moves forward and a stale token is active again."""
    seen = [o.device_id for o in owners if o.device_id is not None]
    stale = [o.device_id for o in owners if o.stale]
    conn.execute(
        f"UPDATE devices SET last_seen = ? WHERE id IN ({dialect_of(conn).values_of()})"
        " AND last_seen < ?",
        (now, json.dumps(seen), now),
    )
    if stale:
        conn.execute(
            "UPDATE devices SET status = 'active'"
            f" WHERE id IN ({dialect_of(conn).values_of()}) AND status = 'stale'",
            (json.dumps(stale),),
        )


def ingest_metrics(
    conn: Connection,
    app_id: str,
    metrics: list[NewMetric],
    received_at: float,
    rules: AttributionRules,
) -> tuple[int, int]:
    owners = resolve_devices(conn, app_id, {m.token for m in metrics})
    rows = []
    for m in metrics:
        owner = owners[m.token]
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
    accepted, duplicates, before = _insert_new(
        conn,
        "metrics",
        "INSERT INTO metrics (app_id, client_id, metric, token, device_id, customer_id,"
        " anonymous_id, delivery_id, occurred_at, received_at, action, deep_link, reason, source)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        rows,
    )
    _touch_devices(conn, owners.values(), received_at)
    forward, opened_by = _consequences(conn, before)
    enqueue(conn, app_id, forward, received_at)
    for customer_id in opened_by:  # a new touch may attribute a conversion already stored
        attribute_conversions(conn, app_id, customer_id, rules, received_at)
    return accepted, duplicates


_PERSON_EVENT_OF_METRIC = {
    "tapped": ops.ACTION_TAPPED_EVENT,
    "deep_link_failed": ops.DEEP_LINK_FAILED_EVENT,
}


# Customer.io hears one delivered and one opened (an open or a tap) per delivery and token,
# whatever relay received: a metric is forwarded if no earlier one of its kind exists. (A
# `converted` is unique per delivery and token by an index, so it is always the first.)
_KIND = "CASE {0}.metric WHEN 'tapped' THEN 'opened' ELSE {0}.metric END"
_NEW_DELIVERY_METRICS = f"""
SELECT metric, token, delivery_id, customer_id, anonymous_id, occurred_at, action, deep_link,
    reason,
    NOT EXISTS (
        SELECT 1 FROM metrics AS earlier
        WHERE earlier.app_id = m.app_id AND earlier.delivery_id = m.delivery_id
            AND earlier.seq < m.seq AND earlier.token = m.token
            AND {_KIND.format("earlier")} = {_KIND.format("m")}
    ) AS first_of_its_kind
FROM metrics AS m
WHERE seq > ? AND delivery_id IS NOT NULL
"""


def _consequences(conn: Connection, since_seq: int) -> tuple[list[ops.Op], set[str]]:
    """One pass over the metrics just stored that name a delivery (the others neither forward
    nor attribute): what Customer.io must hear, and the profiles that got an open or tap."""
    forward: list[ops.Op] = []
    opened_by: set[str] = set()
    test_deliveries = {
        row[0]
        for row in conn.execute(
            "SELECT delivery_id FROM test_deliveries WHERE delivery_id IN"
            " (SELECT delivery_id FROM metrics WHERE seq > ? AND delivery_id IS NOT NULL)",
            (since_seq,),
        )
    }
    for m in conn.execute(_NEW_DELIVERY_METRICS, (since_seq,)):
        delivery_id, token, moment = m["delivery_id"], m["token"], m["occurred_at"]
        if m["metric"] in ("opened", "tapped") and m["customer_id"] is not None:
            opened_by.add(m["customer_id"])
        if delivery_id in test_deliveries:
            continue  # relay's own QA push: Customer.io does not know this delivery
        metric = ops.DELIVERY_METRIC.get(m["metric"])
        if metric and m["first_of_its_kind"]:
            forward.append(ops.delivery_metric(delivery_id, token, metric, moment))
        event_name = _PERSON_EVENT_OF_METRIC.get(m["metric"])
        if event_name:
            details = {"delivery_id": delivery_id, "token": token}
            details |= {k: m[k] for k in ("action", "deep_link", "reason") if m[k] is not None}
            person_event = ops.event(
                event_name, moment, details, m["customer_id"], m["anonymous_id"]
            )
            if person_event is not None:
                forward.append(person_event)
    return forward, opened_by


def ingest_events(
    conn: Connection,
    app_id: str,
    events: list[NewEvent],
    received_at: float,
    rules: AttributionRules,
) -> tuple[int, int, frozenset[str]]:
    """Store the new events: (accepted, duplicates, the client ids that were new)."""
    rows = []
    for e in events:
        owner = resolve_device(conn, app_id, e.token) if e.token else _NOBODY
        anonymous_id = e.anonymous_id or owner.anonymous_id
        customer_id = (
            e.customer_id or owner.customer_id or linked_customer(conn, app_id, e.anonymous_id)
        )
        if customer_id is not None:
            ensure_person(conn, app_id, customer_id, received_at)
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
    accepted, duplicates, before = _insert_new(
        conn,
        "events",
        "INSERT INTO events (app_id, client_id, name, original_name, token, device_id,"
        " customer_id, anonymous_id, occurred_at, received_at, properties)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        rows,
    )
    new_events = conn.execute(
        "SELECT client_id, name, occurred_at, properties, customer_id, anonymous_id FROM events"
        " WHERE seq > ?",
        (before,),
    ).fetchall()
    event_ops = (
        ops.event(
            e["name"],
            e["occurred_at"],
            json.loads(e["properties"]),
            e["customer_id"],
            e["anonymous_id"],
        )
        for e in new_events
    )
    enqueue(conn, app_id, [op for op in event_ops if op is not None], received_at)
    customers = conn.execute(
        "SELECT DISTINCT customer_id FROM events WHERE seq > ? AND customer_id IS NOT NULL",
        (before,),
    ).fetchall()
    for (customer_id,) in customers:
        attribute_conversions(conn, app_id, customer_id, rules, received_at)
    return accepted, duplicates, frozenset(e["client_id"] for e in new_events)
