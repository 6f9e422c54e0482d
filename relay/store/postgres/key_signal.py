"""Whether API keys changed anywhere: PostgreSQL's LISTEN/NOTIFY, for the key cache.

Every statement that changes ``api_keys`` also runs ``pg_notify`` on `KEYS_CHANGED_CHANNEL`
(relay/store/sql/keys.py); PostgreSQL delivers the notification at commit to every session
listening, in every relay process. One connection per process listens, in an asyncio task,
and bumps `KeySignal.generation` on each notification: a key cached in an older generation
is read again (relay/domain/key_cache.py).

A notification sent while nobody listens is lost, so while the connection is down (not yet
connected, lost, reconnecting) `generation` is None — authenticate from the database — and
each (re)connection bumps it. A connection can also die silently (a NAT forgets it, the
server's host vanishes): a heartbeat every `HEARTBEAT_S` that must answer within
`CONNECT_TIMEOUT_S` bounds how long that goes unnoticed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg

from relay.store.postgres.connection import first_line
from relay.store.sql.keys import KEYS_CHANGED_CHANNEL

log = logging.getLogger(__name__)

APPLICATION_NAME = "relay key listener"  # how operators (and the tests) find it
CONNECT_TIMEOUT_S = 5
HEARTBEAT_S = 5.0
RETRY_FIRST_S = 0.05
RETRY_MAX_S = 5.0


class KeySignal:
    """A counter of key changes seen by one process; None while it may have missed some."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._generation = 0
        self._listening = False
        self._task: asyncio.Task[None] | None = None

    @property
    def generation(self) -> int | None:
        return self._generation if self._listening else None

    def start(self) -> None:
        self._task = asyncio.create_task(self._keep_listening(), name="relay-pg-key-signal")

    async def stop(self) -> None:
        self._listening = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _keep_listening(self) -> None:
        failures = 0  # in a row since it last listened
        while True:
            listened_from = self._generation
            try:
                await self._listen()
            except Exception as exc:  # whatever broke the connection: reconnect, never stop
                if self._generation != listened_from:
                    failures = 0
                if failures == 0:  # once per outage, not once per retry
                    log.warning(
                        "key-change listener down (%s); keys are read from the database"
                        " until it listens again",
                        first_line(exc),
                    )
                failures += 1
            await asyncio.sleep(min(RETRY_FIRST_S * 2 ** (failures - 1), RETRY_MAX_S))

    async def _listen(self) -> None:
        """Listen until the connection fails (this only ever returns by raising)."""
        conn = await psycopg.AsyncConnection.connect(
            self._url,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_S,
            application_name=APPLICATION_NAME,
        )
        try:
            await conn.execute(f"LISTEN {KEYS_CHANGED_CHANNEL}")
            # Keys may have changed while nobody listened: what was cached is stale.
            self._generation += 1
            self._listening = True
            while True:
                async for _notification in conn.notifies(timeout=HEARTBEAT_S):
                    self._generation += 1
                async with asyncio.timeout(CONNECT_TIMEOUT_S):
                    await conn.execute("SELECT 1")
        finally:
            self._listening = False
            await conn.close()
