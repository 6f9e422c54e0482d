"""Reads for the dashboard (`relay/ui/`): fleet breakdowns and daily token churn.

Plain SQL that PostgreSQL runs as well: ``?`` placeholders, no SQLite-only functions, rows
read by index. Days are bucketed by integer arithmetic on whole seconds —
``(CAST(ts AS BIGINT) - start) / 86400`` with an integer ``start`` and ``ts >= start`` is an
integer division of non-negative integers, which truncates (= floors) in both engines
(a float cast rounds in PostgreSQL but truncates in SQLite: at most one second apart).
"""

from __future__ import annotations

from relay.store.connection import Connection
from relay.store.sql.records import LAST_SEEN

DAY = 86_400


def devices_by_status(conn: Connection, app_id: str) -> list[tuple[str, str, int]]:
    """(platform, status, devices) of every combination the app has."""
    rows = conn.execute(
        "SELECT platform, status, count(*) FROM devices WHERE app_id = ?"
        " GROUP BY platform, status ORDER BY platform, status",
        (app_id,),
    ).fetchall()
    return [(str(row[0]), str(row[1]), int(row[2])) for row in rows]


def daily_token_changes(
    conn: Connection, app_id: str, start: int, days: int
) -> dict[str, list[int]]:
    """Per day from ``start`` (unix seconds, whole): tokens first seen (``new``), tokens
    replaced by a refresh (``replaced``, at their last sighting: the refresh) and tokens
    invalid now (``invalid``, by the day they were last seen — relay keeps no invalidation
    time)."""
    series = {name: [0] * days for name in ("new", "replaced", "invalid")}
    new = conn.execute(
        "SELECT (CAST(first_seen AS BIGINT) - ?) / 86400, count(*) FROM devices"
        " WHERE app_id = ? AND first_seen >= ? GROUP BY 1",
        (start, app_id, start),
    ).fetchall()
    for day, count in new:
        if 0 <= int(day) < days:
            series["new"][int(day)] += int(count)
    changed = conn.execute(
        f"SELECT (CAST({LAST_SEEN} AS BIGINT) - ?) / 86400, status, count(*) FROM devices"
        f" WHERE app_id = ? AND status IN ('replaced', 'invalid') AND {LAST_SEEN} >= ?"
        " GROUP BY 1, status",
        (start, app_id, start),
    ).fetchall()
    for day, status, count in changed:
        if 0 <= int(day) < days:
            series[str(status)][int(day)] += int(count)
    return series
