"""Applying Customer.io-shaped calls: each once per messageId, all of a request in one commit."""

from __future__ import annotations

import logging
import sqlite3

import msgspec

from relay.compat.actions import (
    Call,
    Forward,
    Identify,
    LeaveDevice,
    Merge,
    RecordEvent,
    RecordMetric,
    UpsertDevice,
)
from relay.errors import ClientError
from relay.models.devices import DevicePut
from relay.store.sqlite import devices, identity, ingest
from relay.store.sqlite.conversions import AttributionRules
from relay.store.sqlite.outbox import enqueue
from relay.store.sqlite.records import fetch_device

log = logging.getLogger(__name__)


def apply_calls(
    conn: sqlite3.Connection,
    app_id: str,
    calls: list[Call],
    now: float,
    rules: AttributionRules,
) -> int:
    """Apply the calls not seen before; returns how many were new."""
    applied = 0
    for call in calls:
        if call.message_id is not None:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO compat_messages (app_id, message_id, received_at)"
                " VALUES (?, ?, ?)",
                (app_id, call.message_id, now),
            )
            if cursor.rowcount == 0:
                continue  # a replay: already applied
        applied += 1
        for action in call.actions:
            try:
                _apply(conn, app_id, action, now, rules)
            except ClientError as exc:  # e.g. a merge naming an unknown profile
                log.info(
                    "compat call %s: %s skipped: %s", call.message_id, type(action).__name__, exc
                )
    return applied


def _apply(
    conn: sqlite3.Connection, app_id: str, action: object, now: float, rules: AttributionRules
) -> None:
    match action:
        case UpsertDevice(token, body, platform_given):
            known = None if platform_given else fetch_device(conn, app_id, token)
            if known is not None:
                body = msgspec.structs.replace(body, platform=known["platform"])
            devices.put_device(conn, app_id, token, body, now, rules)
        case LeaveDevice(token, customer_id):
            device = fetch_device(conn, app_id, token)
            if device is None or device["customer_id"] is None:
                return
            if customer_id is not None and device["customer_id"] != customer_id:
                return
            logout = DevicePut(platform=device["platform"], customer_id=None)
            devices.put_device(conn, app_id, token, logout, now, rules)
        case Identify(customer_id, anonymous_id, email, attributes):
            identity.identify(
                conn, app_id, customer_id, anonymous_id, email, attributes, now, rules
            )
        case Merge(primary, secondary):
            identity.merge_profiles(conn, app_id, primary, secondary, now, rules)
        case RecordMetric(metric):
            ingest.ingest_metrics(conn, app_id, [metric], now, rules)
        case RecordEvent(event):
            ingest.ingest_events(conn, app_id, [event], now, rules)
        case Forward(op):
            enqueue(conn, app_id, [op], now)
