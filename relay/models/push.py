"""Test pushes and delivery traces (QA)."""

from __future__ import annotations

from typing import Any, Literal

from msgspec import Struct

from relay.models.common import Counts
from relay.models.fields import Id, Text, Token, Url

PushStatus = Literal["sent", "validated", "invalid_token", "failed"]


class TestPushIn(Struct, forbid_unknown_fields=True, kw_only=True):
    token: Token | None = None
    customer_id: Id | None = None
    title: Text | None = None
    body: Text | None = None
    deep_link: Url | None = None
    image: Url | None = None
    data: dict[str, Any] | None = None
    dry_run: bool = False


class PushResult(Struct, kw_only=True):
    token: str
    platform: str
    status: PushStatus
    provider_id: str | None = None
    error: str | None = None


class TestPushOut(Struct):
    delivery_id: str
    results: list[PushResult]


class TimelineEntry(Struct, kw_only=True):
    at: str
    metric: str
    token: str
    customer_id: str | None
    detail: dict[str, str]


class DeliveryTrace(Struct, kw_only=True):
    delivery_id: str
    funnel: Counts
    timeline: list[TimelineEntry]
