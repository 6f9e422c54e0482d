"""Conversion attribution: last touch, by timestamp.

A conversion event (a configured name, after aliasing) on a profile produces one ``converted``
metric for the profile's most recent open or tap that happened at most ``window`` before the
event. Late facts attribute by their timestamps, so this runs whenever history joins a profile:
new events or opens, identify, login, refresh, merge. At most one ``converted`` exists per
(delivery, token): a second conversion on the same touch changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from ulid import ULID

from relay.forward import ops
from relay.store.connection import Connection
from relay.store.sql.attribution import (
    insert_conversion,
    last_touch,
    mark_event_attributed,
    unattributed_conversion_events,
)
from relay.store.sql.outbox import enqueue, is_test_delivery


@dataclass(frozen=True, slots=True)
class AttributionRules:
    conversion_events: tuple[str, ...]
    window_seconds: float


def attribute_conversions(
    conn: Connection,
    app_id: str,
    customer_id: str | None,
    rules: AttributionRules,
    now: float,
) -> None:
    if customer_id is None or not rules.conversion_events:
        return
    pending = unattributed_conversion_events(conn, app_id, customer_id, rules.conversion_events)
    for event in pending:
        occurred_at = event["occurred_at"]
        touch = last_touch(
            conn, app_id, customer_id, occurred_at - rules.window_seconds, occurred_at
        )
        if touch is None:
            continue
        inserted = insert_conversion(
            conn, app_id, f"relay-converted-{ULID()}", touch, customer_id, occurred_at, now
        )
        mark_event_attributed(conn, event["seq"])
        # An index keeps one `converted` per (delivery, token): the one inserted here is the first.
        if inserted and not is_test_delivery(conn, touch["delivery_id"]):
            op = ops.delivery_metric(touch["delivery_id"], touch["token"], "converted", occurred_at)
            enqueue(conn, app_id, [op], now)
