"""Token hygiene: a token unseen (no PUT, refresh or metric) for ``stale_after_days`` is
``stale``: excluded from customer sends and from reachable devices, until it shows up again."""

from __future__ import annotations

from relay import timeutil
from relay.domain import Store

DAY = 86_400


async def mark_stale_tokens(store: Store, stale_after_days: float) -> int:
    return await store.mark_stale(timeutil.now() - stale_after_days * DAY)
