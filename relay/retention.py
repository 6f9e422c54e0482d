"""Retention by timestamp: ``[retention] metrics_days`` / ``events_days`` (0 = keep forever).

A fact older than its horizon (now - days) is refused at every ingest door, so an id that was
pruned can never be stored again and de-duplication holds; stored ones are deleted daily by
the server and by ``relay prune``, together with the outbox items still waiting for them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from relay import timeutil
from relay.settings import RetentionSettings

if TYPE_CHECKING:  # relay.store's interface names PruneResult: a runtime import would cycle
    from relay.domain import Store

log = logging.getLogger(__name__)

DAY = 86_400
FactKind = Literal["metrics", "events"]


def horizon(days: float, now: float) -> float | None:
    """The oldest timestamp still kept; None when ``days`` is 0 (kept forever)."""
    return now - days * DAY if days > 0 else None


@dataclass(frozen=True, slots=True)
class Horizons:
    """What each kind of fact keeps at one moment (None: everything)."""

    metrics: float | None
    events: float | None

    @classmethod
    def at(cls, retention: RetentionSettings, now: float) -> Horizons:
        return cls(horizon(retention.metrics_days, now), horizon(retention.events_days, now))


def refusal(kind: FactKind, moment: float, retention: RetentionSettings, now: float) -> str | None:
    """Why a fact of ``kind`` at ``moment`` cannot be stored, or None when it can."""
    days = retention.metrics_days if kind == "metrics" else retention.events_days
    oldest = horizon(days, now)
    if oldest is None or moment >= oldest:
        return None
    return (
        f"is older than the retention horizon {timeutil.format_timestamp(oldest)}"
        f" ([retention] {kind}_days = {days:g})"
    )


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What one prune deleted: facts past their horizon, and outbox items that waited for them."""

    metrics: int = 0
    events: int = 0
    outbox_expired: int = 0

    @property
    def deleted_anything(self) -> bool:
        return bool(self.metrics or self.events or self.outbox_expired)


async def prune(store: Store) -> PruneResult:
    """Apply ``[retention]`` now; one INFO line when anything was deleted."""
    result = await store.prune(timeutil.now())
    if result.deleted_anything:
        log.info(
            "retention: deleted %d metrics and %d events older than their horizon;"
            " expired %d outbox items waiting for them",
            result.metrics,
            result.events,
            result.outbox_expired,
        )
    return result
