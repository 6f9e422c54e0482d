"""The forwarder: drains the outbox to Customer.io in order, within limits, through outages.

One cycle reads the oldest pending rows, keeps those whose lane is free (no earlier row of
the same lane, or of the lane it waits for, still waiting), and sends them: anonymous events
one by one (v1), everything else packed into ``/api/v2/batch`` requests of at most 500 KB.
Each request's outcome is committed before the next request goes out, so a crash resends at
most one request (Customer.io de-duplicates events on their ULID ``id``).

A retryable failure ends the cycle and blocks the lanes involved; ``Retry-After`` pauses all
sending. After `OUTAGE_AFTER` consecutive failures the forwarder is ``degraded``: it sends one
probe request per `probe interval <ForwardingSettings.retry_max_seconds>` until one succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
from collections.abc import Callable

from ulid import ULID

from relay.domain import Store
from relay.forward.client import BATCH_PATH, ApiClient
from relay.forward.ops import BATCH, PIPELINES
from relay.forward.policy import Decision, Verdict, backoff, classify
from relay.forward.ratelimit import RateLimiter
from relay.models.outbox import OutboxRow, Retry, Settlement
from relay.observability import Metrics
from relay.settings import ForwardingSettings

log = logging.getLogger(__name__)

WINDOW = 5000
MAX_BATCH_BYTES = 500_000
MAX_OPERATION_BYTES = 32_000
MAX_BATCH_OPERATIONS = 1000
OUTAGE_AFTER = 5
IDLE_POLL_SECONDS = 0.1
GAUGE_REFRESH_SECONDS = 1.0


def ready_rows(rows: list[OutboxRow], now: float) -> list[OutboxRow]:
    """Rows that may go now without overtaking an earlier row of their lane or wait lane."""
    blocked: set[str] = set()
    ready = []
    for row in rows:
        if row.next_attempt_at > now or row.lane in blocked or row.wait_lane in blocked:
            blocked.add(row.lane)
        else:
            ready.append(row)
    return ready


class Forwarder:
    def __init__(
        self,
        store: Store,
        client: ApiClient,
        settings: ForwardingSettings,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
        rand: random.Random | None = None,
        pipelines: ApiClient | None = None,
    ) -> None:
        self._store = store
        self._client = client
        self.pipelines = pipelines
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        self._rand = rand or random.Random()
        self._limiter = RateLimiter(settings.max_requests_per_second)
        self._failures = 0
        self._last_failure = ""
        self._paused_until = 0.0
        # Operations waiting (pending, not dead) at the last count, less those settled since:
        # read by every write request, so it must never cost a query of its own.
        self.pending = 0
        self.stopping = asyncio.Event()
        # Relay processes sharing a database take turns: only the holder of the forwarder
        # lease sends (docs/architecture.md, "One forwarder at a time").
        self._holder = f"{socket.gethostname()}:{os.getpid()}:{ULID()}"
        self._lease_until = 0.0

    @property
    def state(self) -> str:
        return "degraded" if self._failures >= OUTAGE_AFTER else "enabled"

    @property
    def degraded_reason(self) -> str | None:
        """Why forwarding is degraded (None when it is not): for /readyz and operators."""
        if self.state != "degraded":
            return None
        return f"Customer.io failed {self._failures} requests in a row; last: {self._last_failure}"

    @property
    def backlogged(self) -> bool:
        """``max_pending`` operations wait for Customer.io: writes must wait until they drain."""
        return 0 < self._settings.max_pending <= self.pending

    async def run(self) -> None:
        """Cycle until `stopping` is set; a cycle in progress finishes its current request."""
        # Counted on its own clock: a cycle can hang on Customer.io for a whole request timeout
        # or sleep through an outage, and backpressure must still see writes pile up meanwhile.
        counting = asyncio.create_task(self._count_outbox(), name="relay-outbox-count")
        try:
            await self._cycle_until_stopped()
        finally:
            counting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await counting
            if self._lease_until:
                with contextlib.suppress(Exception):  # it expires by itself anyway
                    await self._store.release_forwarder_lease(self._holder)

    async def _hold_lease(self) -> bool:
        """Whether this process may send now: it holds the lease for at least half its term
        more (renewing it when less is left). Wall-clock time: other processes compare it."""
        term = self._settings.lease_seconds
        now = time.time()
        if now < self._lease_until - term / 2:
            return True
        if await self._store.hold_forwarder_lease(self._holder, now, now + term):
            if not self._lease_until:
                log.info("this process forwards now (holds the forwarder lease)")
            self._lease_until = now + term
            return True
        if self._lease_until:
            log.warning("another relay process took over forwarding")
        self._lease_until = 0.0
        return False

    async def _cycle_until_stopped(self) -> None:
        while not self.stopping.is_set():
            try:
                progressed = await self.cycle(probe=self.state == "degraded")
            except Exception:
                log.exception("forwarding cycle failed; retrying")
                progressed = False
            if not progressed or self.state == "degraded":
                await self._idle()

    async def drain(self, max_cycles: int = 10_000) -> None:
        """Burst mode: cycle until nothing is ready now (tests, tooling)."""
        for _ in range(max_cycles):
            if not await self.cycle():
                return

    async def cycle(self, probe: bool = False) -> bool:
        """Send what is ready; True if any request went out."""
        now = self._clock()
        if now < self._paused_until:
            return False
        if not await self._hold_lease():
            return False
        window = await self._store.outbox_window(WINDOW)
        if not window:
            self._failures = 0  # nothing left to fail on: not degraded
        ready = ready_rows(window, now)
        blocked: set[str] = set()
        sent = False
        for rows in self._requests(ready, blocked):
            if not await self._hold_lease():  # a slow cycle must not outlive the lease
                break
            ok = await self._send(rows, blocked)
            sent = True
            if probe or not ok or self.stopping.is_set():
                break
        return sent

    def _requests(self, ready: list[OutboxRow], blocked: set[str]):  # type: ignore[no-untyped-def]
        """Yield requests lazily so lanes blocked by an earlier failure are skipped."""
        # Single-request operations (v1: anonymous events, manual segments; Pipelines calls)
        # wait for nothing: they go first, so that an identify merging anonymous events
        # (waiting on their lane) can follow in a batch.
        for row in ready:
            if row.endpoint != BATCH and row.lane not in blocked:
                yield [row]
        batch: list[OutboxRow] = []
        size = len('{"batch":[]}')
        for row in ready:
            if row.endpoint != BATCH:
                continue
            if row.lane in blocked or row.wait_lane in blocked:
                blocked.add(row.lane)
                continue
            op_size = len(row.payload.encode()) + 1
            if batch and (size + op_size > MAX_BATCH_BYTES or len(batch) >= MAX_BATCH_OPERATIONS):
                yield batch
                batch, size = [], len('{"batch":[]}')
                if row.lane in blocked or row.wait_lane in blocked:
                    blocked.add(row.lane)
                    continue
            batch.append(row)
            size += op_size
        if batch:
            yield batch

    async def _send(self, rows: list[OutboxRow], blocked: set[str]) -> bool:
        now = self._clock()
        settlement = Settlement(attempted_at=now)
        oversized = [r for r in rows if len(r.payload.encode()) > MAX_OPERATION_BYTES]
        settlement.dead += [(r.seq, "operation larger than 32 KB") for r in oversized]
        rows = [r for r in rows if r not in oversized]
        if not rows:
            await self._settle(settlement)
            return True
        if rows[0].endpoint == BATCH:
            method, path = "POST", BATCH_PATH
            body = ('{"batch":[' + ",".join(r.payload for r in rows) + "]}").encode()
        else:
            method, path = rows[0].endpoint.split(" ", 1)
            body = rows[0].payload.encode()
        client: ApiClient | None = self._client
        if method == PIPELINES:
            method, path = path.split(" ", 1)
            client = self.pipelines
        if client is None:  # queued while a Pipelines key was set; it is gone now
            settlement.dead += [
                (r.seq, "no [customerio] cdp_api_key to send it with") for r in rows
            ]
            await self._settle(settlement)
            return True
        await self._limiter.acquire()
        answer = await client.send(method, path, body)
        # Backoff and Retry-After count from the answer (a slow answer must not eat the wait).
        answered_at = self._clock()
        decision = classify(
            answer.status, answer.body, answer.retry_after, answer.error, answered_at
        )
        self._apply(decision, rows, settlement, answered_at)
        await asyncio.shield(self._settle(settlement))
        self._observe(path, answer.status, answer.seconds, settlement, decision, len(rows))
        if decision.verdict is Verdict.RETRY:
            blocked.update(r.lane for r in rows)
            self._failures += 1
            self._last_failure = answer.error or f"{path} answered {answer.status}"
            if decision.retry_after:
                self._paused_until = answered_at + decision.retry_after
            return False
        self._failures = 0
        return True

    def _apply(
        self, decision: Decision, rows: list[OutboxRow], settlement: Settlement, now: float
    ) -> None:
        if decision.verdict is Verdict.DELIVERED:
            settlement.delivered += [r.seq for r in rows]
        elif decision.verdict is Verdict.PARTIAL:
            for index, row in enumerate(rows):
                if index in decision.failed:
                    settlement.dead.append((row.seq, decision.failed[index]))
                else:
                    settlement.delivered.append(row.seq)
        elif decision.verdict is Verdict.DEAD:
            settlement.dead += [(r.seq, decision.error) for r in rows]
        else:
            horizon = self._settings.give_up_hours * 3600
            for row in rows:
                if row.first_attempt_at is not None and now - row.first_attempt_at >= horizon:
                    error = f"gave up after {row.attempts + 1} attempts: {decision.error}"
                    settlement.dead.append((row.seq, error))
                    continue
                delay = backoff(
                    row.attempts,
                    self._settings.retry_initial_seconds,
                    self._settings.retry_max_seconds,
                    self._rand,
                )
                delay = max(delay, decision.retry_after or 0.0)
                settlement.retry.append(Retry(row.seq, now + delay, decision.error))

    def _observe(
        self,
        path: str,
        status: int | None,
        seconds: float,
        settlement: Settlement,
        decision: Decision,
        count: int,
    ) -> None:
        self._metrics.forward_seconds.labels(path, str(status or "none")).observe(seconds)
        for outcome, n in (
            ("delivered", len(settlement.delivered)),
            ("retried", len(settlement.retry)),
            ("dead", len(settlement.dead)),
        ):
            if n:
                self._metrics.forwarded.labels(outcome).inc(n)
        level = logging.INFO if decision.verdict is Verdict.DELIVERED else logging.WARNING
        log.log(
            level,
            "forwarded %d ops to %s: status=%s %.0fms %s%s",
            count,
            path,
            status,
            seconds * 1000,
            decision.verdict.value,
            f" ({decision.error})" if decision.error else "",
        )

    async def _settle(self, settlement: Settlement) -> None:
        await self._store.settle_outbox(settlement)
        # Settled rows leave the backlog now, not at the next count: refused writes resume as
        # soon as the forwarder catches up.
        settled = len(settlement.delivered) + len(settlement.dead)
        self._set_pending(max(0, self.pending - settled))

    async def _count_outbox(self) -> None:
        """Every `GAUGE_REFRESH_SECONDS` until cancelled: the gauges and `pending`."""
        while True:
            try:
                await self._refresh_gauges()
            except Exception as exc:  # storage faults: /readyz reports them; count again soon
                log.warning("counting the outbox failed: %s", exc)
            await asyncio.sleep(GAUGE_REFRESH_SECONDS)

    def _set_pending(self, pending: int) -> None:
        was_backlogged = self.backlogged
        self.pending = pending
        if self.backlogged != was_backlogged:
            log.warning(
                "outbox backlog %s: %d operations wait for Customer.io (max_pending %d)",
                "reached, writes answer 503" if self.backlogged else "drained, writes resume",
                pending,
                self._settings.max_pending,
            )

    async def _refresh_gauges(self) -> None:
        status = await self._store.outbox_status(None)
        self._set_pending(status.pending)
        self._metrics.outbox_pending.set(status.pending)
        self._metrics.outbox_dead.set(status.dead)
        self._metrics.outbox_oldest_age.set(status.oldest_pending_age_s or 0)

    async def _idle(self) -> None:
        delay = IDLE_POLL_SECONDS
        if self.state == "degraded":
            delay = min(self._settings.retry_max_seconds, 30.0)
        delay = max(delay, self._paused_until - self._clock())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), timeout=delay)
