"""Batch ingest of push metrics and conversion events: de-duplicated, attributed at receipt."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from relay.domain.attribution import ensure_person, linked_customer
from relay.domain.conversions import AttributionRules, attribute_conversions
from relay.facts import NewEvent, NewMetric
from relay.forward import ops
from relay.store.connection import Connection, Row
from relay.store.sql import facts
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


def _owner(row: Row) -> Owner:
    return Owner(row["id"], row["customer_id"], row["anonymous_id"], row["status"] == "stale")


def _is_replaced(row: Row) -> bool:
    return row["status"] == "replaced" and row["replaced_by"] is not None


def resolve_device(conn: Connection, app_id: str, token: str) -> Owner:
    """The device a token reports for (following refreshes) and that device's profile."""
    for _ in range(_MAX_REPLACEMENT_HOPS):
        row = facts.device_owner(conn, app_id, token)
        if row is None:
            return _NOBODY
        if not _is_replaced(row):
            return _owner(row)
        token = row["replaced_by"]
    return _NOBODY


def resolve_devices(conn: Connection, app_id: str, tokens: set[str]) -> dict[str, Owner]:
    """`resolve_device` for many tokens: one query, then a hop per refreshed token."""
    owners = dict.fromkeys(tokens, _NOBODY)
    for row in facts.device_owners(conn, app_id, tokens):
        token = row["token"]
        owners[token] = resolve_device(conn, app_id, token) if _is_replaced(row) else _owner(row)
    return owners


def _touch_devices(conn: Connection, owners: Iterable[Owner], now: float) -> None:
    """A metric is a sign of life: last_seen moves forward and a stale token is active again."""
    seen = [o.device_id for o in owners if o.device_id is not None]
    stale = [o.device_id for o in owners if o.stale and o.device_id is not None]
    facts.mark_devices_seen(conn, seen, now)
    if stale:
        facts.reactivate_stale_devices(conn, stale)


def ingest_metrics(
    conn: Connection,
    app_id: str,
    metrics: list[NewMetric],
    received_at: float,
    rules: AttributionRules,
) -> tuple[int, int]:
    """Store the new metrics: (accepted, duplicates)."""
    return ingest_metric_requests(conn, app_id, [metrics], received_at, rules)[0]


def ingest_metric_requests(
    conn: Connection,
    app_id: str,
    requests: list[list[NewMetric]],
    received_at: float,
    rules: AttributionRules,
) -> list[tuple[int, int]]:
    """`ingest_metrics` of several requests at once, in one set of statements: (accepted,
    duplicates) of each. Of copies of one metric, the first in request order is accepted."""
    metrics = [m for request in requests for m in request]
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
    accepted, stored = facts.insert_new_metrics(conn, rows)
    _touch_devices(conn, owners.values(), received_at)
    opened_by = _consequences(conn, app_id, stored, received_at)
    for customer_id in opened_by:  # a new touch may attribute a conversion already stored
        attribute_conversions(conn, app_id, customer_id, rules, received_at)
    if accepted == len(rows):
        return [(len(request), 0) for request in requests]
    new = set(facts.client_ids_among(conn, "metrics", stored))
    counts = []
    for request in requests:
        fresh = 0
        for m in request:
            if m.client_id in new:
                new.discard(m.client_id)  # a later copy is a duplicate
                fresh += 1
        counts.append((fresh, len(request) - fresh))
    return counts


_PERSON_EVENT_OF_METRIC = {
    "tapped": ops.ACTION_TAPPED_EVENT,
    "deep_link_failed": ops.DEEP_LINK_FAILED_EVENT,
}
_OPENS = ("opened", "tapped")


def _consequences(conn: Connection, app_id: str, stored: facts.Stored, now: float) -> set[str]:
    """What Customer.io must hear of the metrics just stored that name a delivery (the others
    neither forward nor attribute), and the profiles that got an open or tap.

    Customer.io hears one delivered and one opened (an open or a tap) per delivery and token,
    whatever relay received, written by one statement for all of them; a tap and a failed
    deep link are also an event of the person (`ops.event`, built per metric: they are few).
    A `converted` is unique per delivery and token by an index, so it is always the first.
    """
    facts.enqueue_delivery_metrics(conn, stored, ops.DELIVERY_METRIC_ROWS, ops.DELIVERY_METRIC, now)
    person_events = []
    for m in facts.delivery_metrics_among(conn, stored, tuple(_PERSON_EVENT_OF_METRIC)):
        details = {"delivery_id": m["delivery_id"], "token": m["token"]}
        details |= {k: m[k] for k in ("action", "deep_link", "reason") if m[k] is not None}
        name = _PERSON_EVENT_OF_METRIC[m["metric"]]
        op = ops.event(name, m["occurred_at"], details, m["customer_id"], m["anonymous_id"])
        if op is not None:
            person_events.append(op)
    enqueue(conn, app_id, person_events, now)
    return facts.customers_among(conn, stored, _OPENS)


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
    accepted, stored = facts.insert_new_events(conn, rows)
    new_events = facts.events_among(conn, stored)
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
    for (customer_id,) in facts.event_customers_among(conn, stored):
        attribute_conversions(conn, app_id, customer_id, rules, received_at)
    return accepted, len(rows) - accepted, frozenset(e["client_id"] for e in new_events)
