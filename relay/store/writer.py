"""Group commit, the same on both engines: one writer per process, many callers.

A caller queues its job and waits. The writer takes whatever jobs are queued (up to
`MAX_JOBS_PER_COMMIT`), runs them in one transaction and only then resolves the callers'
futures: a caller that gets a result knows its data is committed, and a hundred concurrent
requests cost one commit.

Jobs of one kind can run as one: `write_merged` queues an item for a function that handles
many items at once (``run(conn, key, items)``, one result per item), and the writer calls it
once for all the items of a batch with the same function and key: sixteen concurrent
single-metric requests then cost one set of statements, not sixteen. If that call fails, its
items run again one by one, so one bad item fails alone.

While the storage has a fault (disk full, read-only, unreachable…) every caller of a batch gets
`Unavailable` (503) naming it, and the writer probes once a second until a write succeeds.
An engine supplies how to commit a batch, what a fault is and how to probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from relay.errors import Unavailable

log = logging.getLogger(__name__)

T = TypeVar("T")
Outcome = tuple[bool, Any]  # (True, the job's result) or (False, the exception it raised)
Job = Callable[[Any], Any]
MergedRun = Callable[[Any, Any, list[Any]], list[Any]]  # (conn, key, items) -> a result each
WriteObserver = Callable[[int, float], None]  # (jobs in the commit, seconds it took)

MAX_JOBS_PER_COMMIT = 512
PROBE_INTERVAL_S = 1.0  # while writes fail: how often to try one


@dataclass(slots=True)
class Pending:
    job: Job
    future: asyncio.Future[Any]
    merge: tuple[MergedRun, Any, Any] | None = None  # (run, key, item) of `write_merged`


@dataclass(slots=True)
class _Unit:
    """What the engine runs as one job: a pending job, or the merged items of several."""

    job: Job  # returns one result per pending
    pendings: list[Pending]


def _units(batch: list[Pending]) -> list[_Unit]:
    units: list[_Unit] = []
    merged: dict[tuple[MergedRun, Any], list[Pending]] = {}
    for pending in batch:
        if pending.merge is None:
            units.append(_Unit(_one(pending.job), [pending]))
            continue
        run, key, _ = pending.merge
        if (run, key) not in merged:
            merged[run, key] = []
            units.append(_Unit(_many(run, key, merged[run, key]), merged[run, key]))
        merged[run, key].append(pending)
    return units


class _JobFailed(Exception):
    """A job failed in a batch run without savepoints: `commit_batch` runs it again with them."""


def commit_batch(
    conn: Any, jobs: list[Job], begin: str, fails_batch: Callable[[BaseException], bool]
) -> list[Outcome]:
    """Run ``jobs`` in one transaction that ``begin`` opens, on either engine's connection.

    First without a SAVEPOINT around each job (two statements per job, for a rollback rarely
    needed): if a job raises, the transaction rolls back and the batch runs again with them,
    so that job fails alone (a batch of one needs no rerun). An exception for which
    ``fails_batch`` is true (the storage's own fault, a conflict lost to another writer) is
    not the job's: the batch rolls back and it propagates."""
    try:
        return _run_batch(conn, jobs, begin, fails_batch, savepoints=False)
    except _JobFailed as failed:
        if len(jobs) == 1:
            return [(False, failed.__cause__)]
        return _run_batch(conn, jobs, begin, fails_batch, savepoints=True)


def _run_batch(
    conn: Any,
    jobs: list[Job],
    begin: str,
    fails_batch: Callable[[BaseException], bool],
    savepoints: bool,
) -> list[Outcome]:
    outcomes: list[Outcome] = []
    try:
        conn.execute(begin)  # which may fail inside the transaction it opened (PostgreSQL's turn)
        for job in jobs:
            if savepoints:
                conn.execute("SAVEPOINT job")
            try:
                outcomes.append((True, job(conn)))
            except Exception as exc:
                if fails_batch(exc):
                    raise
                if not savepoints:
                    raise _JobFailed() from exc
                # the job's own error goes back to its caller only
                conn.execute("ROLLBACK TO SAVEPOINT job")
                outcomes.append((False, exc))
            if savepoints:
                conn.execute("RELEASE SAVEPOINT job")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            # A failed disk or a lost connection may refuse this too; the error that got
            # here is the one to report.
            with contextlib.suppress(Exception):
                conn.execute("ROLLBACK")
        raise
    return outcomes


def _one(job: Job) -> Job:
    return lambda conn: [job(conn)]


def _many(run: MergedRun, key: Any, pendings: list[Pending]) -> Job:
    return lambda conn: run(conn, key, [p.merge[2] for p in pendings if p.merge is not None])


class GroupCommitter:
    """The write path of an engine (mixed into its class)."""

    fault: str | None  # the storage fault writes hit (None: writes commit)
    on_commit: WriteObserver | None
    _queue: asyncio.Queue[Pending | None]
    _task: asyncio.Task[None] | None
    _accepting: bool

    # -- what an engine supplies ------------------------------------------------------------

    async def _commit_jobs(self, jobs: list[Job]) -> list[Outcome]:
        """Run ``jobs`` in one transaction; raise when the storage itself failed."""
        raise NotImplementedError

    def _fault_of(self, exc: BaseException) -> str | None:
        raise NotImplementedError

    async def _probe(self) -> None:
        """Try a write; clear ``fault`` when it succeeds."""
        raise NotImplementedError

    async def _between_commits(self) -> None:
        """Housekeeping the writer does after answering a batch's callers."""

    # -- the write path ---------------------------------------------------------------------

    def _start_writing(self, name: str) -> None:
        self._accepting = True
        self._task = asyncio.create_task(self._write_loop(), name=name)

    async def _stop_writing(self) -> None:
        """Commit everything already submitted, then stop."""
        self._accepting = False
        if self._task is not None:
            self._queue.put_nowait(None)
            await self._task
            self._task = None

    @property
    def is_open(self) -> bool:
        return self._accepting and self._task is not None and not self._task.done()

    async def write(self, job: Callable[[Any], T]) -> T:
        """Run ``job`` in a group-committed transaction; returns once it is committed."""
        result: T = await self._submit(job)
        return result

    async def write_merged(self, run: MergedRun, key: Any, item: Any) -> Any:
        """`write` of ``run(conn, key, [item])[0]``, run once with the other items of the
        same ``run`` and ``key`` that are queued for the same commit (that job alone runs
        only if the merged run fails)."""
        return await self._submit(lambda conn: run(conn, key, [item])[0], (run, key, item))

    async def _submit(self, job: Job, merge: tuple[MergedRun, Any, Any] | None = None) -> Any:
        if not self.is_open:
            raise Unavailable("storage is not accepting writes (starting or shutting down)")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(Pending(job, future, merge))
        return await future

    async def _write_loop(self) -> None:
        stopping = False
        while not stopping:
            if self.fault is not None:
                try:
                    first = await asyncio.wait_for(self._queue.get(), PROBE_INTERVAL_S)
                except TimeoutError:
                    await self._probe()
                    continue
            else:
                first = await self._queue.get()
            batch: list[Pending] = []
            if first is None:
                stopping = True
            else:
                batch.append(first)
            while len(batch) < MAX_JOBS_PER_COMMIT and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    stopping = True
                else:
                    batch.append(item)
            if batch:
                await self._commit(batch)
            await self._between_commits()

    async def _commit(self, batch: list[Pending], merge: bool = True) -> None:
        if self.fault is not None:
            await self._probe()
        units = _units(batch) if merge else [_Unit(_one(p.job), [p]) for p in batch]
        started = time.perf_counter()
        try:
            outcomes = await self._commit_jobs([unit.job for unit in units])
        except Exception as exc:
            fault = self._fault_of(exc)
            if fault != self.fault:
                log.error("storage cannot commit (%s): %s", fault or "unexpected", exc)
            self.fault = fault or f"write failed: {exc}"
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(
                        Unavailable(f"storage cannot commit: {self.fault}; retry")
                    )
            return
        self.fault = None
        if self.on_commit is not None:
            self.on_commit(len(batch), time.perf_counter() - started)
        alone: list[Pending] = []
        for unit, (ok, value) in zip(units, outcomes, strict=True):
            if ok:
                for pending, result in zip(unit.pendings, value, strict=True):
                    _resolve(pending.future, result)
            elif len(unit.pendings) == 1:
                _resolve(unit.pendings[0].future, value, failed=True)
            else:
                alone.extend(unit.pendings)  # nothing of theirs was committed: each again
        if alone:
            await self._commit(alone, merge=False)


def _resolve(future: asyncio.Future[Any], value: Any, failed: bool = False) -> None:
    if future.done():  # the caller went away; the data is committed anyway
        return
    if failed:
        future.set_exception(value)
    else:
        future.set_result(value)
