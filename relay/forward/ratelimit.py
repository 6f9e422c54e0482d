"""A client-side request ceiling: requests are spaced at least 1/rate seconds apart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class RateLimiter:
    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = 1.0 / per_second
        self._clock = clock
        self._next_slot = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            # The next slot counts from when this request really goes, not from when it was
            # due: a sleep that overshoots must not let the following request come closer.
            while (wait := self._next_slot - self._clock()) > 0:  # noqa: ASYNC110 - a clock, not an event
                await asyncio.sleep(wait)
            self._next_slot = self._clock() + self._interval
