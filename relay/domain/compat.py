"""Applying Customer.io-shaped calls: each once per messageId, all of a request in one commit."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from relay.domain import devices, identity, ingest
from relay.domain.actions import (
    Call,
    DeletePerson,
    Forward,
    Identify,
    Merge,
    RecordEvent,
    RecordMetric,
    Reject,
    SuppressPerson,
    UnregisterDevice,
    UpsertDevice,
)
from relay.domain.conversions import AttributionRules
from relay.forward import ops
from relay.store.connection import Connection
from relay.store.sql import health, rejected
from relay.store.sql.compat import remember_message
from relay.store.sql.outbox import enqueue
from relay.store.sql.records import fetch_device


def apply_calls(
    conn: Connection,
    app_id: str,
    calls: list[Call],
    now: float,
    rules: AttributionRules,
    violations: Mapping[tuple[str, str], int] | None = None,
) -> list[Call]:
    """Apply the calls not seen before; returns those (replays are left out).

    A replayed event or metric counts as a duplicate in the data-health counters, as does
    one whose id was already stored; ``violations`` (what the doors found) are counted too.
    """
    applied = []
    duplicates = {"events": 0, "metrics": 0}
    for call in calls:
        if call.message_id is not None and not remember_message(
            conn, app_id, call.message_id, now
        ):  # a replay: already applied
            for action in call.actions:
                kind = _fact_kind(action)
                if kind is not None:
                    duplicates[kind] += 1
            continue
        applied.append(call)
        for action in call.actions:
            kind = _fact_kind(action)
            repeated = _apply(conn, app_id, action, now, rules)
            if kind is not None:
                duplicates[kind] += repeated
    health.count_at_door(conn, app_id, now, "events", duplicates["events"], violations)
    health.count_at_door(conn, app_id, now, "metrics", duplicates["metrics"], None)
    return applied


def _fact_kind(action: object) -> str | None:
    if isinstance(action, RecordEvent):
        return "events"
    if isinstance(action, RecordMetric):
        return "metrics"
    return None


def _apply(
    conn: Connection, app_id: str, action: object, now: float, rules: AttributionRules
) -> int:
    """Apply one action; returns how many of its facts were duplicates (already stored)."""
    match action:
        case UpsertDevice(token, body, platform_given):
            known = None if platform_given else fetch_device(conn, app_id, token)
            if known is not None:
                body = msgspec.structs.replace(body, platform=known["platform"])
            devices.put_device(conn, app_id, token, body, now, rules)
        case UnregisterDevice(token, customer_id):
            device = fetch_device(conn, app_id, token)
            if device is not None and (
                customer_id is None or device["customer_id"] in (None, customer_id)
            ):
                devices.unregister_device(conn, app_id, token, now)
            elif customer_id is not None:
                # not relay's device of this person, but Customer.io may have it: pass it on
                enqueue(conn, app_id, [ops.delete_device(customer_id, token)], now)
        case Identify(customer_id, anonymous_id, email, attributes):
            identity.identify(
                conn, app_id, customer_id, anonymous_id, email, attributes, now, rules
            )
        case Merge(primary, secondary):
            identity.merge_known(conn, app_id, primary, secondary, now, rules)
        case DeletePerson(customer_id):
            identity.delete_person(conn, app_id, customer_id, now)
        case SuppressPerson(customer_id, suppressed):
            identity.set_suppressed(conn, app_id, customer_id, suppressed, now)
        case RecordMetric(metric):
            return ingest.ingest_metrics(conn, app_id, [metric], now, rules)[1]
        case RecordEvent(event):
            return ingest.ingest_events(conn, app_id, [event], now, rules)[1]
        case Forward(op):
            enqueue(conn, app_id, [op], now)
        case Reject(surface, path, reason, message, item):
            rejected.record(conn, app_id, now, (surface, path), (reason, message), item)
    return 0
