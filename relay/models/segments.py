"""Segments: the catalogue and sync results."""

from __future__ import annotations

from msgspec import Struct


class SegmentInfo(Struct):
    name: str
    description: str
    params: dict[str, int]


class SyncResult(Struct):
    added: int
    removed: int
