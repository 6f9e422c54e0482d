"""Structs shared across resources: counts, problem documents, ingest results."""

from __future__ import annotations

from msgspec import Struct, field


class Counts(Struct, kw_only=True):
    sent: int = 0
    delivered: int = 0
    opened: int = 0
    tapped: int = 0
    deep_link_failed: int = 0
    converted: int = 0


class FieldErrorDoc(Struct):
    path: str
    message: str


class Problem(Struct, kw_only=True):
    """application/problem+json (RFC 9457)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldErrorDoc] = field(default_factory=list)


class Rejection(Struct):
    index: int
    errors: list[FieldErrorDoc]


class IngestResult(Struct, kw_only=True):
    accepted: int
    duplicates: int
    rejected: list[Rejection]


class Health(Struct):
    status: str


class Readiness(Struct, kw_only=True):
    status: str
    storage: str
    forwarding: str
    reason: str | None = None
    # writes that feed the outbox answer 503 until Customer.io catches up (relay stays ready)
    backpressure: bool = False
