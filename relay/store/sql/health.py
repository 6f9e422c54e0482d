"""Data health: the door counters (written with the facts) and the report's queries."""

from __future__ import annotations

from collections.abc import Mapping

from relay.models.health import FactRows, HealthRows
from relay.store.connection import Connection
from relay.store.dialect import dialect_of

HOUR = 3600


def hour_of(moment: float) -> int:
    return int(moment // HOUR) * HOUR


def count_at_door(
    conn: Connection,
    app_id: str,
    now: float,
    kind: str,
    duplicates: int,
    violations: Mapping[tuple[str, str], int] | None,
) -> None:
    """Add to this hour's counters; nothing is written when there is nothing to count, so
    the common ingest (no duplicate, no violation) pays nothing."""
    rows = [(name, prop, "violation", n) for (name, prop), n in (violations or {}).items()]
    if duplicates:
        rows.append((kind, "", "duplicate", duplicates))
    if rows:
        conn.executemany(
            "INSERT INTO data_health_counts (app_id, hour, kind, name, property, n)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (app_id, hour, kind, name, property)"
            " DO UPDATE SET n = data_health_counts.n + excluded.n",
            [(app_id, hour_of(now), kind_, name, prop, n) for name, prop, kind_, n in rows],
        )


# Per name: how many, and the lateness at the nearest ranks ceil(p/100 * n) of 50, 95, 99
# (integer arithmetic: SQLite's ceil() needs the optional math functions).
_LATENESS = """
SELECT {name}, max(n),
    max(CASE WHEN rank = (n * 50 + 99) / 100 THEN late END),
    max(CASE WHEN rank = (n * 95 + 99) / 100 THEN late END),
    max(CASE WHEN rank = (n * 99 + 99) / 100 THEN late END)
FROM (
    SELECT {name}, received_at - occurred_at AS late,
        row_number() OVER (PARTITION BY {name} ORDER BY received_at - occurred_at) AS rank,
        count(*) OVER (PARTITION BY {name}) AS n
    FROM {table} WHERE app_id = ? AND received_at >= ?
) AS ranked
GROUP BY {name} ORDER BY {name}
"""

# The JSON type of each top-level property, in the tracking plan's vocabulary.
_PROPERTY_TYPES = """
SELECT DISTINCT e.name, p.key,
    CASE p.type WHEN 'integer' THEN 'number' WHEN 'real' THEN 'number'
        WHEN 'true' THEN 'bool' WHEN 'false' THEN 'bool' WHEN 'text' THEN 'string'
        ELSE p.type END
FROM events AS e, {entries} AS p
WHERE e.app_id = ? AND e.received_at >= ?
"""


def _facts(conn: Connection, table: str, name: str, app_id: str, since: float) -> FactRows:
    sql = _LATENESS.format(table=table, name=name)
    return [
        (row[0], row[1], (row[2], row[3], row[4])) for row in conn.execute(sql, (app_id, since))
    ]


def rows(conn: Connection, app_id: str, since: float) -> HealthRows:
    counters = conn.execute(
        "SELECT kind, name, property, CAST(sum(n) AS BIGINT) FROM data_health_counts"
        " WHERE app_id = ? AND hour >= ? GROUP BY kind, name, property",
        (app_id, hour_of(since)),
    ).fetchall()
    return HealthRows(
        events=_facts(conn, "events", "name", app_id, since),
        metrics=_facts(conn, "metrics", "metric", app_id, since),
        property_types=[
            tuple(row)
            for row in conn.execute(
                _PROPERTY_TYPES.format(entries=dialect_of(conn).json_entries("e.properties")),
                (app_id, since),
            )
        ],
        violations={(name, prop): n for kind, name, prop, n in counters if kind == "violation"},
        duplicates=sum(n for kind, _, _, n in counters if kind == "duplicate"),
    )
