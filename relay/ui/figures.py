"""What the dashboard's pages show, computed through the Store and the segment queries the
API uses, so every figure equals its API counterpart."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from relay.domain import Store
from relay.segments.definitions import SEGMENTS, Segment
from relay.segments.query import DAY, build_query
from relay.settings import Settings
from relay.timeutil import now
from relay.ui.snapshots import Figure

STATUSES = ("active", "stale", "invalid", "unregistered", "replaced")
CHURN_DAYS = 30
HISTORY_DAYS = 14


@dataclass(frozen=True, slots=True)
class Devices:
    rows: list[tuple[str, str, int]]  # (platform, status, count)

    def total(self, status: str | None = None) -> int:
        return sum(n for _, s, n in self.rows if status is None or s == status)

    def count(self, platform: str, status: str) -> int:
        return sum(n for p, s, n in self.rows if p == platform and s == status)

    def platform_total(self, platform: str) -> int:
        return sum(n for p, _, n in self.rows if p == platform)

    @property
    def platforms(self) -> list[str]:
        return sorted({p for p, _, _ in self.rows})

    @property
    def statuses(self) -> list[str]:
        extra = sorted({s for _, s, _ in self.rows} - set(STATUSES))
        return [*STATUSES, *extra]


@dataclass(frozen=True, slots=True)
class Churn:
    start: int  # unix seconds of the first day's midnight (UTC)
    series: dict[str, list[int]]  # new, replaced, invalid: one count per day

    @property
    def days(self) -> list[int]:
        return [self.start + i * DAY for i in range(CHURN_DAYS)]


@dataclass(frozen=True, slots=True)
class SegmentSizes:
    as_of: float
    sizes: dict[str, int]


@dataclass(frozen=True, slots=True)
class SegmentHistory:
    as_ofs: list[float]  # the end of each of the last days (UTC midnights)
    sizes: dict[str, list[int]]


def midnight(at: float) -> int:
    return int(at // DAY * DAY)


class Dashboard:
    """The dashboard's figures for one relay; snapshots when expensive (see snapshots.py)."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self._store = store
        # Set by the first page an admin opens: until then nobody looks, and the snapshots'
        # queries would only take CPU and a reader from ingest.
        self.in_use = asyncio.Event()
        self._conversions = settings.attribution.conversion_events
        one_at_a_time = asyncio.Semaphore(1)
        self.devices = Figure(
            "devices", self._devices, inline_budget=0.1, max_age=60, background=one_at_a_time
        )
        self.churn = Figure(
            "token churn", self._churn, inline_budget=0.1, max_age=600, background=one_at_a_time
        )
        self.segments = Figure(
            "segment sizes",
            self._segment_sizes,
            inline_budget=0.2,
            max_age=300,
            background=one_at_a_time,
        )
        self.history = Figure(
            "segment history",
            self._segment_history,
            inline_budget=0.08,
            max_age=3600,
            background=one_at_a_time,
        )

    @property
    def all(self) -> list[Figure[object]]:
        return [self.devices, self.churn, self.segments, self.history]  # type: ignore[list-item]

    async def _devices(self, app_id: str) -> Devices:
        return Devices(await self._store.devices_by_status(app_id))

    async def _churn(self, app_id: str) -> Churn:
        start = midnight(now()) - (CHURN_DAYS - 1) * DAY
        return Churn(start, await self._store.daily_token_changes(app_id, start, CHURN_DAYS))

    async def segment_size(self, segment: Segment, app_id: str, as_of: float) -> int:
        """The number of rows the segment's export has at ``as_of`` (default parameters)."""
        query = build_query(
            segment, dict(segment.params), as_of, app_id, self._conversions, ("customer_id",)
        )
        size = 0
        async for rows in self._store.segment_rows(query):
            size += len(rows)
        return size

    async def _segment_sizes(self, app_id: str) -> SegmentSizes:
        as_of = now()
        sizes = {name: await self.segment_size(s, app_id, as_of) for name, s in SEGMENTS.items()}
        return SegmentSizes(as_of, sizes)

    async def _segment_history(self, app_id: str) -> SegmentHistory:
        today = midnight(now())
        as_ofs = [float(today - i * DAY) for i in reversed(range(HISTORY_DAYS))]
        sizes = {
            name: [await self.segment_size(s, app_id, at) for at in as_ofs]
            for name, s in SEGMENTS.items()
        }
        return SegmentHistory(as_ofs, sizes)
