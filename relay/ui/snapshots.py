"""Figures that are exact while cheap and snapshots once expensive.

A `Figure` computes a value per key (an app id). While the last computation of a key was
cheap (under ``inline_budget`` seconds) every page view computes it again, so small fleets
always see live numbers. Once it is expensive the page shows the latest snapshot and says
when it was taken; a snapshot older than ``max_age`` is refreshed in the background (one
expensive computation at a time, so the dashboard never takes more than one storage reader
for itself), and `refresh_loop` keeps every known key warm.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from relay.errors import Unavailable

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Snapshot(Generic[T]):
    value: T
    taken_at: float  # unix seconds, when the computation started
    seconds: float  # how long it took
    live: bool  # computed for this page view

    def as_seen(self) -> Snapshot[T]:
        """The same figures, shown again later: no longer live."""
        return Snapshot(self.value, self.taken_at, self.seconds, False)


class Figure(Generic[T]):
    def __init__(
        self,
        name: str,
        compute: Callable[[str], Awaitable[T]],
        *,
        inline_budget: float,
        max_age: float,
        wait: float = 0.2,
        background: asyncio.Semaphore,
    ) -> None:
        self.name = name
        self._compute = compute
        self.inline_budget = inline_budget
        self.max_age = max_age
        self.wait = wait  # how long a page waits for a first or cheap computation
        self._background = background
        self._latest: dict[str, Snapshot[T]] = {}
        self._running: dict[str, asyncio.Task[Snapshot[T]]] = {}

    async def get(self, key: str) -> Snapshot[T] | None:
        """The figure for a page: computed now while cheap, else the latest snapshot (None
        while the very first one takes longer than ``wait``)."""
        latest = self._latest.get(key)
        if latest is not None and latest.seconds <= self.inline_budget:
            # never joins a computation that began before this request: figures written
            # just before it must show
            return await self._take(key, background=False)
        if latest is None:
            task = self._refresh(key, background=False)
            done, _ = await asyncio.wait({task}, timeout=self.wait)
            return task.result() if done else None  # a storage fault surfaces on the page
        if time.time() - latest.taken_at > self.max_age:
            self._refresh(key, background=True)
        return latest.as_seen()

    def refresh_if_old(self, key: str) -> None:
        """Background upkeep: only snapshots (cheap figures are computed per page view)."""
        latest = self._latest.get(key)
        if latest is None or (
            latest.seconds > self.inline_budget and time.time() - latest.taken_at > self.max_age
        ):
            self._refresh(key, background=True)

    def _refresh(self, key: str, background: bool) -> asyncio.Task[Snapshot[T]]:
        running = self._running.get(key)
        if running is not None:
            return running
        task = asyncio.create_task(self._take(key, background), name=f"relay-ui-{self.name}")
        self._running[key] = task
        task.add_done_callback(lambda t: self._settled(key, t))
        return task

    async def _take(self, key: str, background: bool) -> Snapshot[T]:
        async with self._background if background else contextlib.nullcontext():
            taken_at, started = time.time(), time.perf_counter()
            value = await self._compute(key)
            snapshot = Snapshot(value, taken_at, time.perf_counter() - started, True)
        self._latest[key] = snapshot
        if snapshot.seconds > self.inline_budget:
            log.info("dashboard %s snapshot of %s took %.2fs", self.name, key, snapshot.seconds)
        return snapshot

    def _settled(self, key: str, task: asyncio.Task[Snapshot[T]]) -> None:
        self._running.pop(key, None)
        if task.cancelled():
            return
        exc = task.exception()
        if isinstance(exc, Unavailable):
            log.warning("dashboard %s of %s skipped: %s", self.name, key, exc.detail)
        elif exc is not None:
            log.error("dashboard %s of %s failed", self.name, key, exc_info=exc)

    async def cancel(self) -> None:
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def refresh_loop(
    figures: Iterable[Figure[object]], keys: Iterable[str], every: float
) -> None:
    """Warm every figure for every key now, then keep them within their ``max_age``."""
    figures, keys = list(figures), list(keys)
    while True:
        for figure in figures:
            for key in keys:
                figure.refresh_if_old(key)
        await asyncio.sleep(every)
