"""The outbox's value objects: what the domain enqueues, what the forwarder reads and settles."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from msgspec import Struct

BATCH = "batch"  # the endpoint of operations sent in Track v2 /api/v2/batch requests


@dataclass(frozen=True, slots=True)
class FromRow:
    """In a `RowsOp`'s payload: the value of column ``name`` of each row (``whole``: as whole
    seconds, as ``int()`` truncates)."""

    name: str
    whole: bool = False


@dataclass(frozen=True, slots=True)
class RowsOp:
    """An operation per row of a set, written by the store in one SQL statement instead of
    one `Op` per row built in Python: lane ``lane_prefix`` + the row's ``lane_column``, and a
    JSON payload shaped as ``payload``, whose `FromRow` leaves are the row's values."""

    lane_prefix: str
    lane_column: str
    payload: dict[str, Any]
    endpoint: str = BATCH


@dataclass(frozen=True, slots=True)
class Op:
    lane: str
    payload: dict[str, Any]
    endpoint: str = BATCH
    wait_lane: str | None = None


@dataclass(frozen=True, slots=True)
class OutboxRow:
    seq: int
    lane: str
    wait_lane: str | None
    endpoint: str
    payload: str
    attempts: int
    next_attempt_at: float
    first_attempt_at: float | None


@dataclass(frozen=True, slots=True)
class Retry:
    seq: int
    next_attempt_at: float
    error: str


@dataclass(slots=True)
class Settlement:
    """The outcome of sending some rows: what went, what waits, what is dead."""

    attempted_at: float
    delivered: list[int] = field(default_factory=list)
    retry: list[Retry] = field(default_factory=list)
    dead: list[tuple[int, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.delivered or self.retry or self.dead)


class OutboxStatus(Struct, kw_only=True):
    pending: int
    dead: int
    oldest_pending_age_s: float | None
    last_error: str | None


class ReplayResult(Struct):
    replayed: int
