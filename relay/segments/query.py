"""One SQL query computes every profile's push statistics as of a moment; a segment filters it.

Each statistic is a correlated subquery that seeks into an index for one profile: a latest
moment is one seek per metric kind into ``metrics_by_customer`` (app, customer, metric,
occurred_at), a count in a window scans only that window's entries. The statistics form a
subquery that SQLite flattens into the outer query, so a statistic is computed only where
the segment's predicate or an exported column needs it, and columns only for members: an
export costs a few seeks per profile, not a pass over every stored metric. Profiles come in
primary-key order, so the result needs no sort.
"""

from __future__ import annotations

import json
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

OPENS = ("opened", "tapped")
_OF_PROFILE = "app_id = p.app_id AND customer_id = p.customer_id"


_NONE = "-1e308"  # stands for NULL inside a scalar max(), which returns NULL if any argument is


def _latest(metrics: tuple[str, ...], since: str | None = None) -> str:
    """The latest moment of any of ``metrics``: one max() seek per kind (SQLite answers a
    max() over an index prefix with a single seek, but not across an IN list)."""
    window = f" AND occurred_at > {since}" if since else ""
    seeks = [
        f"(SELECT max(occurred_at) FROM metrics WHERE {_OF_PROFILE}"
        f" AND metric = '{metric}' AND occurred_at <= :as_of{window})"
        for metric in metrics
    ]
    if len(seeks) == 1:
        return seeks[0]
    latest = ", ".join(f"coalesce({seek}, {_NONE})" for seek in seeks)
    return f"nullif(max({latest}), {_NONE})"


def _in_window(metrics: tuple[str, ...], since: str) -> str:
    """The profile's index entries of ``metrics`` in the window ``since < t <= as_of``."""
    kinds = ", ".join(f"'{metric}'" for metric in metrics)
    return (
        f"FROM metrics WHERE {_OF_PROFILE} AND metric IN ({kinds})"
        f" AND occurred_at > {since} AND occurred_at <= :as_of"
    )


def _count(metrics: tuple[str, ...], since: str) -> str:
    return f"(SELECT count(*) {_in_window(metrics, since)})"


def _any(metrics: tuple[str, ...], since: str) -> str:
    """Whether any of ``metrics`` falls in the window: stops at the first index entry."""
    return f"EXISTS (SELECT 1 {_in_window(metrics, since)})"


def _count_up_to(metric: str, since: str, limit: str) -> str:
    """``min(count, limit)`` in the window: enough for "at least N", without counting on."""
    return f"(SELECT count(*) FROM (SELECT 1 {_in_window((metric,), since)} LIMIT {limit}))"


def _devices(condition: str) -> str:
    # The unary + keeps SQLite from ever preferring an index on status (every active device)
    # to the one on the profile (its two or three devices): it did, while one existed.
    return f"(SELECT count(*) FROM devices WHERE {_OF_PROFILE} AND +status = 'active'{condition})"


_STATS = {
    "devices": _devices(""),
    "reachable_devices": _devices(" AND push_enabled = 1"),
    "last_delivered_at": _latest(("delivered",)),
    "last_opened_at": _latest(OPENS),
    "opens_window": _count(OPENS, ":window_start"),
    "deliveries_window": _count(("delivered",), ":window_start"),
    "last_open_in_window": _latest(OPENS, since=":window_start"),
    # what predicates use: each stops as soon as the answer is known
    "opened_in_window": _any(OPENS, ":window_start"),
    "opened_in_lapsed_window": _any(OPENS, ":lapsed_start"),
    "deep_link_failed_in_window": _any(("deep_link_failed",), ":window_start"),
    "deliveries_up_to_min": _count_up_to("delivered", ":window_start", ":min_deliveries"),
    "last_converted_at": (
        f"(SELECT max(occurred_at) FROM events WHERE {_OF_PROFILE}"
        " AND name IN (SELECT value FROM json_each(:conversion_names)) AND occurred_at <= :as_of)"
    ),
}

_QUERY = """
SELECT {columns} FROM (
    SELECT p.customer_id, p.email, {stats}
    FROM profiles p
    WHERE p.app_id = :app_id AND p.suppressed = 0
)
WHERE {where}
ORDER BY customer_id
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
    stats = ",\n        ".join(f"{sql} AS {name}" for name, sql in _STATS.items())
    sql = _QUERY.format(columns=", ".join(columns), stats=stats, where=segment.where)
    params: dict[str, Any] = {
        "min_deliveries": 1,  # bound in every query; only some segments have the parameter
        **values,
        "conversion_names": json.dumps(conversion_events),
        "app_id": app_id,
        "as_of": as_of,
        "window_start": window_start,
        "lapsed_start": as_of - lapsed_days * DAY if lapsed_days else window_start,
    }
    return SegmentQuery(sql, params)
