"""The built-in segments, one declaration each.

Every segment is a predicate over the same per-profile statistics (see `query.py`), computed
"as of" a moment: **within N days** of ``as_of`` means ``as_of - N*86400 < t <= as_of``, and
anything after ``as_of`` is ignored. An **open** is an ``opened`` or ``tapped`` metric, a
**delivery** a ``delivered`` metric, a **conversion** a conversion event (configured names,
after aliasing) on the profile.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Segment:
    name: str
    description: str
    where: str  # SQL predicate over the stats columns; params appear as :name
    params: Mapping[str, int] = field(default_factory=dict)  # name → default
    # the window of the window statistics: a param name, or a fixed number of days
    window: str | int = "days"
    # the longer window of `opened_in_lapsed_window`, if the segment uses one
    lapsed_window: str | None = None

    def window_days(self, values: Mapping[str, int]) -> int:
        return values[self.window] if isinstance(self.window, str) else self.window


SEGMENTS: dict[str, Segment] = {
    s.name: s
    for s in (
        Segment(
            "push_engaged",
            "Profiles with an open within `days` days.",
            "opened_in_window",
            {"days": 7},
        ),
        Segment(
            "delivered_not_opened",
            "At least `min_deliveries` deliveries within `days` days, and no open within them.",
            "deliveries_up_to_min >= :min_deliveries AND NOT opened_in_window",
            {"days": 30, "min_deliveries": 3},
        ),
        Segment(
            "opened_not_converted",
            "An open within `days` days, and no conversion after the latest such open.",
            "opened_in_window"
            " AND (last_converted_at IS NULL OR last_converted_at <= last_open_in_window)",
            {"days": 7},
        ),
        Segment(
            "deep_link_failures",
            "At least one failed deep link within `days` days.",
            "deep_link_failed_in_window",
            {"days": 7},
        ),
        Segment(
            "push_fatigued",
            "At least `min_deliveries` deliveries within 7 days.",
            "deliveries_up_to_min >= :min_deliveries",
            {"min_deliveries": 5},
            window=7,
        ),
        Segment(
            "lapsed_push_engaged",
            "An open within `lapsed_days` days but none within `days` days.",
            "opened_in_lapsed_window AND NOT opened_in_window",
            {"days": 30, "lapsed_days": 90},
            lapsed_window="lapsed_days",
        ),
        Segment(
            "unreachable",
            "No active, push-enabled device (profiles without any device included).",
            "reachable_devices = 0",
            window=30,
        ),
    )
}

MAX_DAYS = 36_500
