"""The data-health report, assembled from what a backend counted (backend-neutral, pure).

The backend gives, for the facts received since a moment: per event name and per metric the
count and the lateness percentiles, the JSON types each event property came with, and the
door counters (plan violations, duplicates). This module turns them into the report: type
drift, unknown names (against the plan) and warnings.
"""

from __future__ import annotations

from collections.abc import Collection

from relay.models.health import (
    DataHealth,
    EventHealth,
    HealthRows,
    Lateness,
    MetricHealth,
    NameCount,
)
from relay.timeutil import parse_timestamp
from relay.tracking_plan import TrackingPlan

# (name, count, (p50, p95, p99)) per event name or metric


def _lateness(percentiles: tuple[float | None, float | None, float | None]) -> Lateness:
    p50, p95, p99 = percentiles
    return Lateness(p50=p50, p95=p95, p99=p99)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.3g} h"


def assemble(
    rows: HealthRows,
    plan: TrackingPlan | None,
    conversion_events: Collection[str],
    window_hours: float,
) -> DataHealth:
    drift: dict[str, dict[str, list[str]]] = {}
    types: dict[tuple[str, str], set[str]] = {}
    for name, prop, kind in rows.property_types:
        types.setdefault((name, prop), set()).add(kind)
    for (name, prop), kinds in sorted(types.items()):
        if len(kinds) > 1:
            drift.setdefault(name, {})[prop] = sorted(kinds)
    violations: dict[str, dict[str, int]] = {}
    for (name, prop), n in sorted(rows.violations.items()):
        violations.setdefault(name, {})[prop] = n
    events = {
        name: EventHealth(name=name, count=count, lateness_seconds=_lateness(percentiles))
        for name, count, percentiles in rows.events
    }
    for name in violations.keys() - events.keys():  # refused in enforce mode: none stored
        events[name] = EventHealth(name=name, count=0)
    for name, entry in events.items():
        entry.violations = violations.get(name, {})
        entry.type_drift = drift.get(name, {})
    report = DataHealth(
        events=[events[name] for name in sorted(events)],
        metrics=[
            MetricHealth(metric=metric, count=count, lateness_seconds=_lateness(percentiles))
            for metric, count, percentiles in rows.metrics
        ],
        duplicates=rows.duplicates,
    )
    if plan is not None:
        report.unknown_names = [
            NameCount(name=e.name, count=e.count)
            for e in report.events
            if e.count and not plan.known(e.name)
        ]
    report.warnings = _warnings(report, conversion_events, window_hours)
    return report


def _warnings(
    report: DataHealth, conversion_events: Collection[str], window_hours: float
) -> list[str]:
    warnings = []
    for event in report.events:
        p95 = event.lateness_seconds.p95
        if event.name in conversion_events and p95 is not None and p95 > window_hours * 3600:
            warnings.append(
                f"conversion events {event.name!r} arrive later (p95 {_hours(p95)}) than the"
                f" attribution window ({window_hours:g} h) allows: they cannot be attributed"
            )
        for prop, kinds in event.type_drift.items():
            warnings.append(
                f"property {prop!r} of {event.name!r} arrives with several types:"
                f" {', '.join(kinds)}"
            )
    return warnings


DEFAULT_WINDOW_SECONDS = 24 * 3600


def since_from(raw: str | None, now: float) -> float:
    """A report's ``since`` (RFC 3339 or unix seconds) as unix seconds; 24 hours before
    ``now`` when absent. ValueError says what is wrong."""
    if raw is None:
        return now - DEFAULT_WINDOW_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        return parse_timestamp(raw)
    return parse_timestamp(seconds)
