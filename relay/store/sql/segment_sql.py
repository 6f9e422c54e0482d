"""One SQL query computes every profile's push statistics as of a moment; a segment filters it.

Two shapes, one per engine, with the same columns (the segment tests compare both engines'
exports row for row).

On SQLite each statistic is a correlated subquery that seeks into an index for one profile:
a latest moment is one seek per metric kind into ``metrics_by_customer`` (app, customer,
metric, occurred_at), a count in a window scans only that window's entries. The statistics
form a subquery that SQLite flattens into the outer query, so a statistic is computed only
where the segment's predicate or an exported column needs it, and columns only for members:
an export costs a few seeks per profile, not a pass over every stored metric.

PostgreSQL runs such correlated subqueries as SubPlans, one executor start per profile and
statistic (a dozen per profile: 41 s for one segment at 1 M profiles / 20 M metrics). There
the statistics are aggregates instead: one ``GROUP BY customer_id`` pass over the app's
entries of ``metrics_by_customer`` with a ``FILTER`` per statistic, one over its active
devices, one over its conversion events, each joined onto ``profiles``.
A pass whose columns a query does not use is dropped by the planner (a LEFT JOIN to a
subquery unique on the join key adds nothing): a sync of ``unreachable``, which wants only
customer ids, never reads ``metrics``.

Profiles come in primary-key order on both.
"""

from __future__ import annotations

import functools

from relay.models.segments import OPENS, SegmentQuery
from relay.store.dialect import POSTGRES, Dialect

_OF_PROFILE = "app_id = p.app_id AND customer_id = p.customer_id"


def _latest(d: Dialect, metrics: tuple[str, ...], since: str | None = None) -> str:
    """The latest moment of any of ``metrics``: one max() seek per kind (a max() over an
    index prefix is a single seek, but not across an IN list)."""
    window = f" AND occurred_at > {since}" if since else ""
    seeks = [
        f"(SELECT max(occurred_at) FROM metrics WHERE {_OF_PROFILE}"
        f" AND metric = '{metric}' AND occurred_at <= :as_of{window})"
        for metric in metrics
    ]
    return seeks[0] if len(seeks) == 1 else d.greatest(*seeks)


def _kinds(metrics: tuple[str, ...]) -> str:
    return "metric IN ({})".format(", ".join(f"'{metric}'" for metric in metrics))


def _in_window(metrics: tuple[str, ...], since: str) -> str:
    """The profile's index entries of ``metrics`` in the window ``since < t <= as_of``."""
    return (
        f"FROM metrics WHERE {_OF_PROFILE} AND {_kinds(metrics)}"
        f" AND occurred_at > {since} AND occurred_at <= :as_of"
    )


def _count(metrics: tuple[str, ...], since: str) -> str:
    return f"(SELECT count(*) {_in_window(metrics, since)})"


def _any(metrics: tuple[str, ...], since: str) -> str:
    """Whether any of ``metrics`` falls in the window: stops at the first index entry."""
    return f"EXISTS (SELECT 1 {_in_window(metrics, since)})"


def _count_up_to(metric: str, since: str, limit: str) -> str:
    """``min(count, limit)`` in the window: enough for "at least N", without counting on."""
    return f"(SELECT count(*) FROM (SELECT 1 {_in_window((metric,), since)} LIMIT {limit}) AS hits)"


def _devices(d: Dialect, condition: str) -> str:
    # SQLite: the unary + keeps it from ever preferring an index on status (every active
    # device) to the one on the profile (its two or three devices): it did, while one existed.
    status = "+status" if d.name == "sqlite" else "status"
    return f"(SELECT count(*) FROM devices WHERE {_OF_PROFILE} AND {status} = 'active'{condition})"


@functools.cache
def _stats(d: Dialect) -> str:
    stats = {
        "devices": _devices(d, ""),
        "reachable_devices": _devices(d, " AND push_enabled = 1"),
        "last_delivered_at": _latest(d, ("delivered",)),
        "last_opened_at": _latest(d, OPENS),
        "opens_window": _count(OPENS, ":window_start"),
        "deliveries_window": _count(("delivered",), ":window_start"),
        "last_open_in_window": _latest(d, OPENS, since=":window_start"),
        # what predicates use: each stops as soon as the answer is known
        "opened_in_window": _any(OPENS, ":window_start"),
        "opened_in_lapsed_window": _any(OPENS, ":lapsed_start"),
        "deep_link_failed_in_window": _any(("deep_link_failed",), ":window_start"),
        "deliveries_up_to_min": _count_up_to("delivered", ":window_start", ":min_deliveries"),
        "last_converted_at": (
            f"(SELECT max(occurred_at) FROM events WHERE {_OF_PROFILE}"
            f" AND name IN ({d.values_of('text', ':conversion_names')})"
            " AND occurred_at <= :as_of)"
        ),
    }
    return ",\n        ".join(f"{sql} AS {name}" for name, sql in stats.items())


_OPENED = _kinds(OPENS)
_DELIVERED = _kinds(("delivered",))
_POSTGRES_STATS = f"""
SELECT p.customer_id, p.email,
    coalesce(d.devices, 0) AS devices,
    coalesce(d.reachable_devices, 0) AS reachable_devices,
    m.last_delivered_at, m.last_opened_at,
    coalesce(m.opens_window, 0) AS opens_window,
    coalesce(m.deliveries_window, 0) AS deliveries_window,
    m.last_open_in_window,
    m.last_open_in_window IS NOT NULL AS opened_in_window,
    coalesce(m.opened_in_lapsed_window, false) AS opened_in_lapsed_window,
    coalesce(m.deep_link_failed_in_window, false) AS deep_link_failed_in_window,
    least(coalesce(m.deliveries_window, 0), :min_deliveries) AS deliveries_up_to_min,
    e.last_converted_at
FROM profiles p
LEFT JOIN (
    SELECT customer_id,
        max(occurred_at) FILTER (WHERE {_DELIVERED}) AS last_delivered_at,
        max(occurred_at) FILTER (WHERE {_OPENED}) AS last_opened_at,
        count(*) FILTER (WHERE {_OPENED} AND occurred_at > :window_start) AS opens_window,
        count(*) FILTER (WHERE {_DELIVERED} AND occurred_at > :window_start)
            AS deliveries_window,
        max(occurred_at) FILTER (WHERE {_OPENED} AND occurred_at > :window_start)
            AS last_open_in_window,
        bool_or({_OPENED} AND occurred_at > :lapsed_start) AS opened_in_lapsed_window,
        bool_or(metric = 'deep_link_failed' AND occurred_at > :window_start)
            AS deep_link_failed_in_window
    FROM metrics
    WHERE app_id = :app_id AND customer_id IS NOT NULL AND occurred_at <= :as_of
    GROUP BY customer_id
) AS m ON m.customer_id = p.customer_id
LEFT JOIN (
    SELECT customer_id, count(*) AS devices,
        count(*) FILTER (WHERE push_enabled = 1) AS reachable_devices
    FROM devices
    WHERE app_id = :app_id AND customer_id IS NOT NULL AND status = 'active'
    GROUP BY customer_id
) AS d ON d.customer_id = p.customer_id
LEFT JOIN (
    SELECT customer_id, max(occurred_at) AS last_converted_at
    FROM events
    WHERE app_id = :app_id AND customer_id IS NOT NULL AND occurred_at <= :as_of
        AND name IN ({POSTGRES.values_of("text", ":conversion_names")})
    GROUP BY customer_id
) AS e ON e.customer_id = p.customer_id
WHERE p.app_id = :app_id AND p.suppressed = 0
"""

_QUERY = """
SELECT {columns} FROM ({stats}) AS stats
WHERE {where}
ORDER BY customer_id
"""


_SQLITE_STATS = """
    SELECT p.customer_id, p.email, {stats}
    FROM profiles p
    WHERE p.app_id = :app_id AND p.suppressed = 0
"""


def segment_sql(query: SegmentQuery, d: Dialect) -> str:
    stats = _POSTGRES_STATS if d is POSTGRES else _SQLITE_STATS.format(stats=_stats(d))
    return _QUERY.format(columns=", ".join(query.columns), stats=stats, where=query.where)
