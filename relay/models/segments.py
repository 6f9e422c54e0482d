"""Segments: the catalogue and sync results."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from msgspec import Struct

OPENS = ("opened", "tapped")  # the metrics that count as an open


class SegmentInfo(Struct):
    name: str
    description: str
    params: dict[str, int]


class SyncResult(Struct):
    added: int
    removed: int


@dataclass(frozen=True, slots=True)
class SegmentQuery:
    """Which profiles, which columns, as of when: the store turns it into its engine's SQL
    (relay/store/sql/segment_sql.py)."""

    where: str  # the segment's predicate over the statistics; parameters as :name
    columns: tuple[str, ...]
    params: dict[str, Any]
