"""A segment's query as of a moment: its predicate, the columns wanted and the parameters.

The statistics the predicates and columns name (``opened_in_window``, ``last_opened_at``…)
are computed by the store (relay/store/sql/segment_sql.py), each profile's as of ``as_of``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from relay.models.segments import OPENS, SegmentQuery
from relay.segments.definitions import Segment

__all__ = ["OPENS", "SegmentQuery", "build_query"]

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
    params: dict[str, Any] = {
        "min_deliveries": 1,  # bound in every query; only some segments have the parameter
        **values,
        "conversion_names": json.dumps(conversion_events),
        "app_id": app_id,
        "as_of": as_of,
        "window_start": window_start,
        "lapsed_start": as_of - lapsed_days * DAY if lapsed_days else window_start,
    }
    return SegmentQuery(segment.where, columns, params)
