"""Batches of push metrics and conversion events."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct

from relay.models.fields import (
    EventName,
    Id,
    Properties,
    ReportedMetric,
    Text,
    Timestamp,
    Token,
    Url,
)

MAX_BATCH_ITEMS = 1000


class MetricIn(Struct, forbid_unknown_fields=True, kw_only=True):
    id: Id
    metric: ReportedMetric
    token: Token
    delivery_id: Id | None = None
    timestamp: Timestamp | None = None
    action: Text | None = None
    deep_link: Url | None = None
    reason: Text | None = None
    source: Literal["app", "notification_extension"] | None = None


class EventIn(Struct, forbid_unknown_fields=True, kw_only=True):
    id: Id
    name: EventName
    customer_id: Id | None = None
    anonymous_id: Id | None = None
    token: Token | None = None
    timestamp: Timestamp | None = None
    properties: Properties | None = None


class MetricsBatch(Struct, forbid_unknown_fields=True):
    metrics: Annotated[list[MetricIn], Meta(min_length=1, max_length=MAX_BATCH_ITEMS)]


class EventsBatch(Struct, forbid_unknown_fields=True):
    events: Annotated[list[EventIn], Meta(min_length=1, max_length=MAX_BATCH_ITEMS)]
