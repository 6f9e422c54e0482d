"""The data-health report (``GET /v1/health/data``, ``relay health data``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from msgspec import Struct, field


class Lateness(Struct, kw_only=True):
    """Receipt time - event timestamp, in seconds, by nearest rank. All null when no item of
    the name was stored in the window (it is listed for its violations only)."""

    p50: float | None = None
    p95: float | None = None
    p99: float | None = None


class EventHealth(Struct, kw_only=True):
    name: str
    count: int  # stored in the window (duplicates excluded)
    violations: dict[str, int] = field(default_factory=dict)  # property → items breaking it
    type_drift: dict[str, list[str]] = field(default_factory=dict)  # property → JSON types
    lateness_seconds: Lateness = field(default_factory=Lateness)


class MetricHealth(Struct, kw_only=True):
    metric: str
    count: int
    lateness_seconds: Lateness = field(default_factory=Lateness)


class NameCount(Struct, kw_only=True):
    name: str
    count: int


class DataHealth(Struct, kw_only=True):
    events: list[EventHealth] = field(default_factory=list)
    metrics: list[MetricHealth] = field(default_factory=list)
    unknown_names: list[NameCount] = field(default_factory=list)  # only with a tracking plan
    duplicates: int = 0
    warnings: list[str] = field(default_factory=list)


# What storage reads for the report (relay/health.py assembles it).
FactRows = list[tuple[str, int, tuple[float | None, float | None, float | None]]]


@dataclass(frozen=True, slots=True)
class HealthRows:
    events: FactRows
    metrics: FactRows
    property_types: list[tuple[str, str, str]]  # (event, property, JSON type), distinct
    violations: Mapping[tuple[str, str], int]  # (event, property) → items
    duplicates: int
