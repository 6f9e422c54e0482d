"""Validated facts on their way into storage (backend-neutral)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NewMetric:
    """A validated metric, ready to store."""

    client_id: str
    metric: str
    token: str
    delivery_id: str | None
    occurred_at: float
    action: str | None = None
    deep_link: str | None = None
    reason: str | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class NewEvent:
    """A validated conversion event, name already aliased."""

    client_id: str
    name: str
    original_name: str
    customer_id: str | None
    anonymous_id: str | None
    token: str | None
    occurred_at: float
    properties: str
