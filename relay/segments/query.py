"""One SQL query computes every profile's push statistics as of a moment; a segment filters it.

The metrics part scans the ``metrics_by_customer`` index (app, customer, metric, occurred_at)
in customer order, so SQLite aggregates as it goes instead of sorting; profiles without any
metric still appear (left joins), which ``unreachable`` needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from relay.segments.definitions import Segment

DAY = 86_400

COLUMNS = (
    "customer_id",
    "email",
    "devices",
    "last_delivered_at",
    "last_opened_at",
    "opens_window",
    "deliveries_window",
    "last_converted_at",
)
TIMESTAMP_COLUMNS = frozenset({"last_delivered_at", "last_opened_at", "last_converted_at"})

_STATS = """
WITH touch AS (
    SELECT customer_id,
        max(CASE WHEN metric = 'delivered' THEN occurred_at END) AS last_delivered_at,
        max(CASE WHEN metric IN ('opened', 'tapped') THEN occurred_at END) AS last_opened_at,
        sum(metric IN ('opened', 'tapped') AND occurred_at > :window_start) AS opens_window,
        sum(metric = 'delivered' AND occurred_at > :window_start) AS deliveries_window,
        max(CASE WHEN metric IN ('opened', 'tapped') AND occurred_at > :window_start
            THEN occurred_at END) AS last_open_in_window,
        sum(metric = 'deep_link_failed' AND occurred_at > :window_start)
            AS deep_link_failures_window,
        sum(metric IN ('opened', 'tapped') AND occurred_at > :lapsed_start) AS opens_lapsed_window
    FROM metrics
    WHERE app_id = :app_id AND customer_id IS NOT NULL AND occurred_at <= :as_of
    GROUP BY customer_id
),
conversion AS (
    SELECT customer_id, max(occurred_at) AS last_converted_at
    FROM events
    WHERE app_id = :app_id AND customer_id IS NOT NULL AND occurred_at <= :as_of
        AND name IN ({conversion_names})
    GROUP BY customer_id
),
reach AS (
    SELECT customer_id,
        sum(status = 'active') AS devices,
        sum(status = 'active' AND push_enabled = 1) AS reachable_devices
    FROM devices
    WHERE app_id = :app_id AND customer_id IS NOT NULL
    GROUP BY customer_id
),
stats AS (
    SELECT p.customer_id, p.email,
        coalesce(r.devices, 0) AS devices,
        coalesce(r.reachable_devices, 0) AS reachable_devices,
        t.last_delivered_at, t.last_opened_at,
        coalesce(t.opens_window, 0) AS opens_window,
        coalesce(t.deliveries_window, 0) AS deliveries_window,
        t.last_open_in_window,
        coalesce(t.deep_link_failures_window, 0) AS deep_link_failures_window,
        coalesce(t.opens_lapsed_window, 0) AS opens_lapsed_window,
        c.last_converted_at
    FROM profiles p
    LEFT JOIN touch t ON t.customer_id = p.customer_id
    LEFT JOIN conversion c ON c.customer_id = p.customer_id
    LEFT JOIN reach r ON r.customer_id = p.customer_id
    WHERE p.app_id = :app_id
)
SELECT {columns} FROM stats WHERE {where} ORDER BY customer_id
"""


@dataclass(frozen=True, slots=True)
class SegmentQuery:
    sql: str
    params: dict[str, Any]


def build_query(
    segment: Segment,
    values: Mapping[str, int],
    as_of: float,
    app_id: str,
    conversion_events: tuple[str, ...],
    columns: tuple[str, ...] = COLUMNS,
) -> SegmentQuery:
    window_start = as_of - segment.window_days(values) * DAY
    lapsed_days = values[segment.lapsed_window] if segment.lapsed_window else None
    names = {f"conversion_{i}": name for i, name in enumerate(conversion_events)}
    sql = _STATS.format(
        conversion_names=", ".join(f":{key}" for key in names) or "NULL",
        columns=", ".join(columns),
        where=segment.where,
    )
    params: dict[str, Any] = {
        **values,
        **names,
        "app_id": app_id,
        "as_of": as_of,
        "window_start": window_start,
        "lapsed_start": as_of - lapsed_days * DAY if lapsed_days else window_start,
    }
    return SegmentQuery(sql, params)
