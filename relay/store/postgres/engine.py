"""PostgreSQL connections: one group-committing writer per process, a pool of readers.

The same jobs as on SQLite (``fn(conn) -> result``) run here on a `PgConnection`, in threads:
the writer (relay/store/writer.py) commits whatever jobs are queued in one transaction (again
with a SAVEPOINT per job when one of them fails), in its own thread, and the callers hear back
only after COMMIT.

Several relay processes write to one database, and their writers take turns: each batch
takes a transaction-scoped advisory lock (`WRITE_TURN_LOCK`) first thing after its BEGIN,
held until its COMMIT. No two relay write transactions are ever past that point at once, so
each sees every batch committed before it and the result is the one a single writer gives —
SQLite's guarantee — in READ COMMITTED, with no predicate locks. A turn costs no round trip
of its own (it travels with BEGIN); what runs in parallel across processes is everything but
the write itself (HTTP, validation, reads), and a turn carries every request its process
queued meanwhile.

Until session 6 the writers ran SERIALIZABLE side by side. Their batches of a hundred requests
overlapped all the time and lost to each other (two-process batched ingest: 75 to 90 retried
batches a run, p99 three seconds). And one long SERIALIZABLE transaction anywhere on the
server (a report, a stuck session) made PostgreSQL keep every later serializable
transaction's predicate locks, until writes failed with "out of shared memory" and relay
answered 503 to all of them. Turns remove both.

A batch that still loses a conflict or a deadlock (with a writer outside relay) is rolled
back and run again: its jobs are pure functions of the database, so running one again is
safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import psycopg
from psycopg import errors as pg_errors

from relay.errors import CannotStart, Unavailable
from relay.store.dialect import POSTGRES, Dialect
from relay.store.postgres.connection import PgConnection, Row, first_line
from relay.store.postgres.key_signal import KeySignal
from relay.store.postgres.migrate import apply_migrations
from relay.store.writer import GroupCommitter, Outcome, Pending, WriteObserver, commit_batch

log = logging.getLogger(__name__)

T = TypeVar("T")
Job = Callable[[PgConnection], Any]

# pg_advisory_lock key of the write turn ("relay-w"); the migrations use another.
WRITE_TURN_LOCK = 0x72656C61792D77
# Waiting longer than this for the turn means a writer elsewhere is stuck: 503, not a hang.
WRITE_TURN_TIMEOUT_MS = 10_000
BATCH_CONFLICT_RETRIES = 3
MAX_CONFLICT_RETRIES = 20
CONNECT_TIMEOUT_S = 5
# A serialization failure or a deadlock: the batch lost a race with another process.
_CONFLICTS = (pg_errors.SerializationFailure, pg_errors.DeadlockDetected)


def fault_of(exc: BaseException) -> str | None:
    """The storage fault ``exc`` stands for (the database's, not the job's), or None."""
    if isinstance(exc, pg_errors.DiskFull):
        return "disk full"
    if isinstance(exc, pg_errors.OutOfMemory):
        return f"database out of memory ({first_line(exc)})"
    if isinstance(exc, pg_errors.ReadOnlySqlTransaction):
        return "read-only"
    if isinstance(exc, pg_errors.LockNotAvailable | pg_errors.QueryCanceled):
        return "locked"
    if isinstance(exc, pg_errors.AdminShutdown | pg_errors.CannotConnectNow):
        return "database shutting down"
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return f"database unreachable ({first_line(exc)})"
    return None


def _open_connection(url: str) -> PgConnection:
    # Custom plans: psycopg prepares a statement run often, and a generic plan of
    # ``seq > $1`` (rows stored after a point) guesses a third of the table and scans it all.
    raw = psycopg.connect(
        url,
        autocommit=True,
        connect_timeout=CONNECT_TIMEOUT_S,
        options=f"-c plan_cache_mode=force_custom_plan -c lock_timeout={WRITE_TURN_TIMEOUT_MS}",
    )
    return PgConnection(raw)


# The write turn: this process's writer is the only relay writer inside a transaction. The
# lock is the transaction's first statement, sent with BEGIN in one round trip, and COMMIT
# (or ROLLBACK, or a lost connection) ends it; in READ COMMITTED every later statement then
# sees every batch committed before the turn began.
_BEGIN_TURN = (
    f"BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock({WRITE_TURN_LOCK})"
)


def _commit_batch(conn: PgConnection, jobs: list[Job]) -> list[Outcome]:
    # An explicit level, whatever the server's default_transaction_isolation says.
    return commit_batch(conn, jobs, _BEGIN_TURN, _fails_batch)


def _fails_batch(exc: BaseException) -> bool:
    """Not the job's error: a lost conflict (the batch runs again) or the storage's fault."""
    return isinstance(exc, _CONFLICTS) or fault_of(exc) is not None


def _commit_with_retries(conn: PgConnection, jobs: list[Job]) -> list[Outcome]:
    """The batch in one transaction; after a few lost conflicts, each job in its own (a
    small transaction conflicts less, and one hot job no longer drags the others along)."""
    for attempt in range(BATCH_CONFLICT_RETRIES):
        try:
            return _commit_batch(conn, jobs)
        except _CONFLICTS:
            _back_off(attempt)
    return [_commit_alone(conn, job) for job in jobs]


def _commit_alone(conn: PgConnection, job: Job) -> Outcome:
    for attempt in range(MAX_CONFLICT_RETRIES):
        try:
            return _commit_batch(conn, [job])[0]
        except _CONFLICTS:
            _back_off(attempt)
    return False, Unavailable("storage: too many write conflicts with other relay processes; retry")


def _back_off(attempt: int) -> None:
    # A little, at random, so two processes do not collide again in step.
    time.sleep(random.uniform(0, min(0.002 * 2**attempt, 0.25)))


@dataclass
class PgEngine(GroupCommitter):
    """Owns the PostgreSQL connections of one relay process."""

    dialect: ClassVar[Dialect] = POSTGRES

    url: str
    pool_size: int = 10
    on_commit: WriteObserver | None = None
    fault: str | None = None
    _writer: PgConnection | None = None
    _write_thread: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="relay-pg-writer")
    )
    _read_threads: ThreadPoolExecutor | None = None
    _readers: asyncio.Queue[PgConnection] = field(default_factory=asyncio.Queue)
    _all_readers: list[PgConnection] = field(default_factory=list)
    _opened: list[PgConnection] = field(default_factory=list)  # every connection, to close
    _closed: bool = False
    _queue: asyncio.Queue[Pending | None] = field(default_factory=asyncio.Queue)
    _task: asyncio.Task[None] | None = None
    _accepting: bool = False
    _key_signal: KeySignal | None = None

    @property
    def keys_generation(self) -> int | None:
        """Bumped whenever API keys may have changed; None while changes could go unseen
        (relay/store/postgres/key_signal.py)."""
        return None if self._key_signal is None else self._key_signal.generation

    def keys_changed(self) -> None:
        """Nothing to do: the change's own transaction notified every process at commit."""

    async def open(self) -> None:
        """Connect, apply migrations (one process at a time), start the writer loop."""
        try:
            self._closed = False
            self._writer = await self._in_writer(self._connect)
            await self._in_writer(lambda: apply_migrations(self._conn()))
            # pool_size in all: the writer, the key-change listener (key_signal.py), readers
            readers = max(1, self.pool_size - 2)
            self._read_threads = ThreadPoolExecutor(readers, thread_name_prefix="relay-pg-read")
            for _ in range(readers):
                reader = await self._in_reader(self._connect)
                self._all_readers.append(reader)
                self._readers.put_nowait(reader)
        except psycopg.Error as exc:
            await self.close()
            raise CannotStart(f"{_safe(self.url)}: {first_line(exc)}") from None
        except BaseException:
            await self.close()
            raise
        self._start_writing("relay-pg-writer")
        self._key_signal = KeySignal(self.url)
        self._key_signal.start()

    def _connect(self) -> PgConnection:
        """A new connection, closed with the engine whoever holds it then (a connection
        opened in a thread for a caller that was cancelled meanwhile is closed too)."""
        conn = _open_connection(self.url)
        self._opened.append(conn)
        if self._closed:
            conn.raw.close()
            raise Unavailable("storage is closed")
        return conn

    def _forget(self, conn: PgConnection) -> None:
        with contextlib.suppress(psycopg.Error):
            conn.raw.close()
        if conn in self._opened:
            self._opened.remove(conn)

    def _conn(self) -> PgConnection:
        if self._writer is None:
            raise Unavailable("storage is closed")
        return self._writer

    async def _in_writer(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._write_thread, fn)

    async def _in_reader(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._read_threads, fn)

    async def close(self) -> None:
        """Commit everything already submitted, then close every connection."""
        if self._key_signal is not None:
            await self._key_signal.stop()
            self._key_signal = None
        await self._stop_writing()
        self._closed = True
        for conn in self._opened:
            with contextlib.suppress(psycopg.Error):
                conn.raw.close()
        self._opened.clear()
        self._all_readers.clear()
        self._readers = asyncio.Queue()
        self._writer = None
        if self._read_threads is not None:
            self._read_threads.shutdown(wait=False)
            self._read_threads = None

    async def read(self, query: Callable[[PgConnection], T]) -> T:
        """Run ``query`` on a reader connection (each statement sees committed data).

        A reader whose connection was lost (the server restarted, an operator terminated it)
        is replaced, and the read, which changes nothing, runs once more on the new one: a
        pool of dead readers then heals with the next reads, not with a 503 each."""
        if not self._all_readers:
            raise Unavailable("storage is closed")
        reader = await self._readers.get()
        try:
            for attempt in range(2):
                try:
                    return await self._in_reader(functools.partial(query, reader))
                except psycopg.Error as exc:
                    fault = fault_of(exc)
                    if fault is None:
                        raise
                    # A terminated session answers its next statement with AdminShutdown
                    # before psycopg marks the connection broken.
                    lost = reader.raw.broken or reader.raw.closed
                    lost = lost or isinstance(exc, pg_errors.AdminShutdown)
                    reader = await self._replace_reader(reader)
                    if attempt > 0 or not lost:
                        raise Unavailable(f"storage read failed: {fault}; retry") from exc
            raise AssertionError("unreachable")  # the second attempt returns or raises
        finally:
            self._readers.put_nowait(reader)

    async def read_point(self, query: Callable[[PgConnection], T]) -> T:
        return await self.read(query)

    async def _replace_reader(self, broken: PgConnection) -> PgConnection:
        """A new connection in place of ``broken`` (which stays if none can be opened: the
        next read tries again); the caller returns it to the pool."""
        self._forget(broken)
        try:
            fresh = await self._in_reader(self._connect)
        except (psycopg.Error, Unavailable):
            fresh = broken
        self._all_readers = [fresh if r is broken else r for r in self._all_readers]
        return fresh

    async def stream(
        self, sql: str, params: dict[str, Any], chunk: int = 1000
    ) -> AsyncIterator[list[Row]]:
        """Rows of ``sql`` in chunks from one snapshot: only about ``chunk`` rows are in
        memory at a time, however large the result (the server waits while relay does)."""
        if not self._all_readers:
            raise Unavailable("storage is closed")
        reader = await self._readers.get()
        rows: Generator[Row, None, None] | None = None

        def start() -> None:
            nonlocal rows
            reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            # A segment is one pass over the app's metrics: compiling it (JIT) costs half a
            # second and saves nothing.
            reader.execute("SET LOCAL jit = off")
            rows = reader.stream(sql, params, chunk)

        def fetch() -> list[Row]:
            assert rows is not None
            return list(itertools.islice(rows, chunk))

        def finish() -> None:
            with contextlib.suppress(psycopg.Error):
                if rows is not None:
                    rows.close()  # cancels the query if it has not run to its end
                reader.execute("ROLLBACK")

        try:
            await self._in_reader(start)
            while batch := await self._in_reader(fetch):
                yield batch
        finally:
            await self._in_reader(finish)
            self._readers.put_nowait(reader)

    async def _probe(self) -> None:
        """Reconnect the writer and try the smallest write; on success the fault is over."""

        def probe() -> None:
            if self._writer is None or self._writer.raw.closed or self._writer.raw.broken:
                if self._writer is not None:
                    self._forget(self._writer)
                self._writer = self._connect()
            self._writer.execute("SELECT 1")

        try:
            await self._in_writer(probe)
        except psycopg.Error as exc:
            self.fault = fault_of(exc) or f"write failed: {exc}"
            return
        log.warning("storage takes writes again (was: %s)", self.fault)
        self.fault = None

    async def _commit_jobs(self, jobs: list[Job]) -> list[Outcome]:
        return await self._in_writer(lambda: _commit_with_retries(self._conn(), jobs))

    def _fault_of(self, exc: BaseException) -> str | None:
        return fault_of(exc)


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}@{host}"
