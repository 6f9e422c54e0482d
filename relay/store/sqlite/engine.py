"""SQLite connections: one group-committing writer, a small pool of readers.

Every write is a plain function ``fn(conn) -> result``; the writer (relay/store/writer.py)
runs the jobs queued meanwhile in one ``BEGIN IMMEDIATE … COMMIT`` in its thread (again with a
SAVEPOINT per job when one of them fails, so that it fails alone: `writer.commit_batch`) and
answers their callers after COMMIT: a hundred concurrent requests cost one fsync instead of a
hundred.

Jobs run inside aiosqlite's connection thread through ``Connection._execute``; running a whole
batch in one hop to the thread (instead of one hop per statement) is where the speed comes
from. tests/test_storage_engine.py fails loudly if that hook disappears.

WAL checkpoints (copying committed pages from the WAL into the database file) run on their
own connection every ``CHECKPOINT_INTERVAL_S``, not inside whichever COMMIT crosses SQLite's
automatic threshold: that COMMIT, and every request waiting on it, would pay for the copy
and its fsync. A checkpoint that runs beside the writer never catches up with it, though,
and SQLite only starts the WAL over after one did; so once the WAL holds more than
``WAL_RESTART_FRAMES``, the writer itself checkpoints between two transactions (after
answering its callers), which finishes what the background ones copied and lets the next
transaction start the WAL from the beginning.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar, cast

import aiosqlite

from relay.errors import CannotStart, Unavailable
from relay.store.dialect import SQLITE, Dialect
from relay.store.sqlite.faults import fault_of, must_read_immutable, writable
from relay.store.sqlite.key_signal import KeyFile
from relay.store.sqlite.migrate import apply_migrations
from relay.store.writer import GroupCommitter, Outcome, Pending, WriteObserver, commit_batch

log = logging.getLogger(__name__)

T = TypeVar("T")
Job = Callable[[sqlite3.Connection], Any]

BUSY_TIMEOUT_MS = 10_000
INLINE_BUSY_TIMEOUT_MS = 100
CHECKPOINT_INTERVAL_S = 1.0
WAL_RESTART_FRAMES = 8192  # pages: 32 MiB at SQLite's default page size
WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024  # what a restarted WAL file is truncated to


def _cause(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


def configure(conn: sqlite3.Connection, synchronous: str) -> None:
    # WAL lets readers (and CLI commands in other processes) run while the writer commits.
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {'FULL' if synchronous == 'full' else 'NORMAL'}")
    # Another process (a CLI command) may hold the write lock briefly: wait, don't fail.
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.row_factory = sqlite3.Row


def _configure_writer(conn: sqlite3.Connection, synchronous: str) -> None:
    configure(conn, synchronous)
    conn.execute("PRAGMA wal_autocheckpoint = 0")  # Engine._checkpoint_loop does it
    conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES}")


def _checkpoint(conn: sqlite3.Connection) -> int:
    """Frames in the WAL. PASSIVE waits for nobody: it copies what no reader still needs."""
    _busy, wal_frames, _copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return int(wal_frames)


async def _run(conn: aiosqlite.Connection, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(sqlite3_connection, *args)`` in the aiosqlite connection's own thread."""
    # aiosqlite leaves its private _execute unannotated; it awaits and returns fn(*args)'s result.
    execute = cast("Callable[..., Awaitable[T]]", conn._execute)
    return await execute(fn, conn._conn, *args)


def _commit_batch(conn: sqlite3.Connection, jobs: list[Job]) -> list[Outcome]:
    return commit_batch(conn, jobs, "BEGIN IMMEDIATE", lambda exc: fault_of(exc) is not None)


def _probe_write(conn: sqlite3.Connection) -> None:
    """The smallest write that must reach the disk to commit: does storage take writes?"""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS storage_probe (id INTEGER PRIMARY KEY, at REAL)")
        conn.execute("INSERT OR REPLACE INTO storage_probe (id, at) VALUES (1, ?)", (time.time(),))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


@dataclass
class Engine(GroupCommitter):
    """Owns the SQLite connections of one database file."""

    dialect: ClassVar[Dialect] = SQLITE

    path: Path
    synchronous: str = "full"
    read_connections: int = 2
    on_commit: WriteObserver | None = None
    _writer: aiosqlite.Connection | None = None
    _inline: sqlite3.Connection | None = None
    _checkpointer: aiosqlite.Connection | None = None
    _checkpoint_task: asyncio.Task[None] | None = None
    _commits_since_checkpoint: int = 0
    _wal_frames: int = 0
    _readers: asyncio.Queue[aiosqlite.Connection] = field(default_factory=asyncio.Queue)
    _all_readers: list[aiosqlite.Connection] = field(default_factory=list)
    _queue: asyncio.Queue[Pending | None] = field(default_factory=asyncio.Queue)
    _task: asyncio.Task[None] | None = None
    _accepting: bool = False
    # The storage fault writes hit (None: writes commit); probed until it clears.
    fault: str | None = None
    _migrated: bool = False
    _readers_immutable: bool = False
    _key_file: KeyFile = field(init=False)

    def __post_init__(self) -> None:
        self._key_file = KeyFile(self.path)

    @property
    def keys_generation(self) -> int | None:
        """Changes whenever API keys change, in this process or another (key_signal.py)."""
        return self._key_file.generation()

    def keys_changed(self) -> None:
        """API keys changed and the change is committed: tell every relay process."""
        self._key_file.bump()

    async def open(self) -> None:
        """Create the file if needed, apply migrations, start the writer loop.

        A database that cannot be opened is a `CannotStart` naming the file; what was opened
        is closed again (an aiosqlite thread left running would keep the process alive).
        """
        try:
            await self._open()
        except (sqlite3.Error, OSError) as exc:
            await self.close()
            raise CannotStart(f"{self.path}: {_cause(exc)}") from None
        except BaseException:
            await self.close()
            raise

    async def _open(self) -> None:
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        await self._connect_writer()
        if self._writer is None and not self.path.exists():
            raise CannotStart(f"{self.path}: cannot create the database ({self.fault})")
        await self._connect_readers()
        self._start_writing("relay-sqlite-writer")
        self._checkpoint_task = asyncio.create_task(
            self._checkpoint_loop(), name="relay-sqlite-checkpoint"
        )

    async def _connect_writer(self) -> None:
        """Open the writer and migrate. A storage fault leaves relay up, serving reads, with
        ``fault`` set: writes answer 503 and the write loop probes until it clears. The files
        are checked first: on a read-only file system no connection maps a -shm it cannot
        grow (SIGBUS)."""
        if not writable(self.path):
            self.fault = "read-only"
            return
        writer = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            await _run(writer, _configure_writer, self.synchronous)
            if not self._migrated:
                await _run(writer, apply_migrations)
                self._migrated = True
        except sqlite3.Error as exc:
            await writer.close()
            if fault_of(exc) is None:
                raise
            self.fault = fault_of(exc)
            log.error("storage fault: %s (%s); serving reads, writes answer 503", self.fault, exc)
            return
        self._writer = writer
        self._key_file.create()

    async def _connect_readers(self) -> None:
        # Readers of a file that cannot be written open it immutable: no -shm is mapped.
        self._readers_immutable = self._writer is None and must_read_immutable(self.path)
        target = str(self.path)
        if self._readers_immutable:
            target = f"file:{self.path}?mode=ro&immutable=1"
        uri = self._readers_immutable
        self._checkpointer = await aiosqlite.connect(target, isolation_level=None, uri=uri)
        await _run(self._checkpointer, configure, self.synchronous)
        self._inline = sqlite3.connect(target, isolation_level=None, uri=uri)
        configure(self._inline, self.synchronous)
        # It runs in the event loop: a lock it cannot get soon fails one request, not all.
        self._inline.execute(f"PRAGMA busy_timeout = {INLINE_BUSY_TIMEOUT_MS}")
        for _ in range(self.read_connections):
            reader = await aiosqlite.connect(target, isolation_level=None, uri=uri)
            await _run(reader, configure, self.synchronous)
            self._all_readers.append(reader)
            self._readers.put_nowait(reader)

    async def _close_readers(self, wait_for_reads: bool = True) -> None:
        if self._checkpointer is not None:
            await self._checkpointer.close()
            self._checkpointer = None
        if wait_for_reads:  # a reopen waits for reads in flight; a close at shutdown does not
            for _ in self._all_readers:
                await self._readers.get()
        for reader in self._all_readers:
            await reader.close()
        self._all_readers.clear()
        if self._inline is not None:
            self._inline.close()
            self._inline = None

    async def _probe(self) -> None:
        """Try a write; on success the fault is over. A writer that hit a read-only file or
        never migrated is reopened first; immutable readers then see the live file again."""
        try:
            if self._writer is None or not self._migrated or self.fault == "read-only":
                if self._writer is not None:
                    await self._writer.close()
                    self._writer = None
                await self._connect_writer()
                if self._writer is None:
                    return
            await _run(self._writer, _probe_write)
        except sqlite3.Error as exc:
            self.fault = fault_of(exc) or f"write failed: {exc}"
            return
        log.warning("storage takes writes again (was: %s)", self.fault)
        self.fault = None
        if self._readers_immutable:
            await self._close_readers()
            await self._connect_readers()

    async def close(self) -> None:
        """Commit everything already submitted, then close every connection."""
        await self._stop_writing()
        if self._checkpoint_task is not None:
            self._checkpoint_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpoint_task
            self._checkpoint_task = None
        await self._close_readers(wait_for_reads=False)
        if self._writer is not None:
            await self._writer.close()
            self._writer = None

    async def read(self, query: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``query`` on a reader connection (WAL snapshot, never blocks the writer)."""
        if not self._all_readers:
            raise Unavailable("storage is closed")
        reader = await self._readers.get()
        try:
            return await _run(reader, query)
        finally:
            self._readers.put_nowait(reader)

    def read_inline(self, query: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``query`` right here, in the event loop's thread.

        Only for point reads of small tables (an API key by its hash): such a read costs a
        few microseconds, a hop to a reader thread and back costs far more. In WAL mode a
        reader never waits for the writer.
        """
        if self._inline is None:
            raise Unavailable("storage is closed")
        try:
            return query(self._inline)
        except sqlite3.OperationalError as exc:
            raise Unavailable(f"storage read failed: {exc}; retry") from exc

    async def read_point(self, query: Callable[[sqlite3.Connection], T]) -> T:
        return self.read_inline(query)

    async def stream(
        self, sql: str, params: dict[str, Any], chunk: int = 1000
    ) -> AsyncIterator[list[sqlite3.Row]]:
        """Rows of ``sql`` in chunks, holding one reader (and its snapshot) until done.

        Only ``chunk`` rows are in memory at a time, however large the result.
        """
        if not self._all_readers:
            raise Unavailable("storage is closed")
        reader = await self._readers.get()
        cursors: list[sqlite3.Cursor] = []
        try:
            cursors.append(await _run(reader, lambda conn: conn.execute(sql, params)))
            while rows := await _run(reader, lambda _conn: cursors[0].fetchmany(chunk)):
                yield rows
        finally:
            if cursors:
                await _run(reader, lambda _conn: cursors[0].close())
            self._readers.put_nowait(reader)

    async def _commit_jobs(self, jobs: list[Job]) -> list[Outcome]:
        if self._writer is None:
            raise sqlite3.OperationalError("attempt to write a readonly database")
        outcomes = await _run(self._writer, _commit_batch, jobs)
        self._commits_since_checkpoint += 1
        return outcomes

    def _fault_of(self, exc: BaseException) -> str | None:
        return fault_of(exc)

    async def _between_commits(self) -> None:
        if self._wal_frames > WAL_RESTART_FRAMES:
            await self._checkpoint_between_transactions()

    async def _checkpoint_loop(self) -> None:
        assert self._checkpointer is not None
        while True:
            await asyncio.sleep(CHECKPOINT_INTERVAL_S)
            if not self._commits_since_checkpoint:
                continue
            self._commits_since_checkpoint = 0
            try:
                self._wal_frames = await _run(self._checkpointer, _checkpoint)
            except sqlite3.Error as exc:  # the next round tries again; the data is in the WAL
                log.warning("WAL checkpoint failed: %s", exc)

    async def _checkpoint_between_transactions(self) -> None:
        if self._writer is None:
            return
        try:
            self._wal_frames = 0
            await _run(self._writer, _checkpoint)
        except sqlite3.Error as exc:
            log.warning("WAL checkpoint by the writer failed: %s", exc)


@contextlib.asynccontextmanager
async def opened(engine: Engine):  # type: ignore[no-untyped-def]
    await engine.open()
    try:
        yield engine
    finally:
        await engine.close()
