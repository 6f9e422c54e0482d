"""The SQLite engine: group commit, per-job rollback, migrations, and the aiosqlite hook."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest

from relay.errors import NotFound, Unavailable
from relay.store.sqlite import engine as engine_module
from relay.store.sqlite import migrate
from relay.store.sqlite.engine import Engine
from relay.store.sqlite.migrate import apply_migrations, available_migrations
from tests.support import eventually

# The SQLite engine itself: its files, mounts and backup.
pytestmark = pytest.mark.sqlite_only


def test_aiosqlite_still_offers_the_private_hook_the_writer_relies_on() -> None:
    # relay runs whole group-commit batches in aiosqlite's thread via these two members.
    assert callable(getattr(aiosqlite.Connection, "_execute", None))
    assert isinstance(getattr(aiosqlite.Connection, "_conn", None), property)


async def test_the_hook_runs_a_function_on_the_connection_thread(tmp_path: Path) -> None:
    async with aiosqlite.connect(tmp_path / "x.db") as conn:
        assert (
            await conn._execute(lambda c: c.execute("SELECT 41 + 1").fetchone()[0], conn._conn)
            == 42
        )


def _insert(value: int):
    def job(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO t (v) VALUES (?)", (value,))
        return value

    return job


def _fails(conn: sqlite3.Connection) -> None:
    conn.execute("INSERT INTO t (v) VALUES (100)")
    raise NotFound("nothing here")


async def _engine(tmp_path: Path, commits: list[int]) -> Engine:
    engine = Engine(tmp_path / "e.db", on_commit=lambda jobs, _s: commits.append(jobs))
    await engine.open()
    await engine.write(lambda c: c.execute("CREATE TABLE t (v INTEGER UNIQUE)"))
    commits.clear()
    return engine


@pytest.fixture
def commits() -> list[int]:
    """The jobs in each commit of `engine`, after its table was created."""
    return []


@pytest.fixture
async def engine(tmp_path: Path, commits: list[int]) -> AsyncIterator[Engine]:
    """An open engine on a fresh file with one table, t (v INTEGER UNIQUE)."""
    engine = await _engine(tmp_path, commits)
    yield engine
    await engine.close()


async def test_concurrent_writes_share_commits(engine: Engine, commits: list[int]) -> None:
    results = await asyncio.gather(*(engine.write(_insert(i)) for i in range(200)))
    assert results == list(range(200))
    assert sum(commits) == 200
    assert len(commits) < 200


async def test_a_failing_write_rolls_back_alone(engine: Engine) -> None:
    outcomes = await asyncio.gather(
        engine.write(_insert(1)),
        engine.write(_fails),
        engine.write(_insert(2)),
        return_exceptions=True,
    )
    assert outcomes[0] == 1 and outcomes[2] == 2
    assert isinstance(outcomes[1], NotFound)
    rows = await engine.read(lambda c: [r[0] for r in c.execute("SELECT v FROM t ORDER BY v")])
    assert rows == [1, 2]


async def test_a_failing_write_alone_in_its_commit_leaves_nothing(engine: Engine) -> None:
    with pytest.raises(NotFound):
        await engine.write(_fails)
    assert await engine.read(lambda c: c.execute("SELECT count(*) FROM t").fetchone()[0]) == 0


def _insert_all(conn: sqlite3.Connection, table: str, values: list[int]) -> list[int]:
    if any(v < 0 for v in values):
        raise NotFound("a negative value")
    conn.execute(f"INSERT INTO {table} (v) VALUES (?)", (len(values) * 1000 + min(values),))
    conn.executemany(f"INSERT INTO {table} (v) VALUES (?)", [(v,) for v in values])
    return [v * 10 for v in values]


async def test_merged_writes_queued_together_run_as_one(engine: Engine) -> None:
    results = await asyncio.gather(
        *(engine.write_merged(_insert_all, "t", v) for v in range(1, 51))
    )
    assert results == [v * 10 for v in range(1, 51)]
    runs = await engine.read(lambda c: c.execute("SELECT count(*) FROM t").fetchone()[0])
    assert 50 < runs < 100  # every value, plus one row per run: fewer runs than items


async def test_a_failing_merged_run_runs_its_items_alone(engine: Engine) -> None:
    outcomes = await asyncio.gather(
        *(engine.write_merged(_insert_all, "t", v) for v in (1, -1, 2)),
        return_exceptions=True,
    )
    assert outcomes[0] == 10 and outcomes[2] == 20
    assert isinstance(outcomes[1], NotFound)
    rows = await engine.read(lambda c: [r[0] for r in c.execute("SELECT v FROM t ORDER BY v")])
    assert rows == [1, 2, 1001, 1002]  # each alone: no trace of the failed merged run


async def test_close_commits_what_was_already_submitted(tmp_path: Path) -> None:
    commits: list[int] = []
    engine = await _engine(tmp_path, commits)
    pending = [asyncio.ensure_future(engine.write(_insert(i))) for i in range(50)]
    await asyncio.sleep(0)
    await engine.close()
    assert [p.result() for p in pending] == list(range(50))
    with sqlite3.connect(tmp_path / "e.db") as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 50


def _rows_in_database_file_alone(db: Path, copy: Path) -> int:
    """Rows of t as the main database file holds them, without its WAL."""
    copy.write_bytes(db.read_bytes())
    with sqlite3.connect(copy) as conn:
        tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 't'").fetchone()
        return conn.execute("SELECT count(*) FROM t").fetchone()[0] if tables[0] else 0


async def test_commits_reach_the_database_file_without_an_automatic_checkpoint(
    tmp_path: Path, engine: Engine
) -> None:
    await asyncio.gather(*(engine.write(_insert(i)) for i in range(20)))
    # 20 small rows are far below SQLite's automatic threshold: the engine's loop does it.
    await eventually(
        lambda: _rows_in_database_file_alone(tmp_path / "e.db", tmp_path / "copy.db") == 20
    )


async def test_the_wal_starts_over_under_continuous_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "CHECKPOINT_INTERVAL_S", 0.02)
    monkeypatch.setattr(engine_module, "WAL_RESTART_FRAMES", 64)
    monkeypatch.setattr(engine_module, "WAL_SIZE_LIMIT_BYTES", 256 * 1024)
    engine = await _engine(tmp_path, [])
    await engine.write(lambda c: c.execute("CREATE TABLE blobs (b BLOB)"))

    async def writer(n: int) -> None:
        for _ in range(n):
            await engine.write(lambda c: c.execute("INSERT INTO blobs VALUES (randomblob(3000))"))

    try:
        # ~3,000 commits of a page or more each: a WAL that never started over would hold
        # them all (12 MB and more).
        await asyncio.gather(*(writer(750) for _ in range(4)))
        wal = tmp_path / "e.db-wal"
        assert wal.stat().st_size < 4 * 1024 * 1024
    finally:
        await engine.close()


async def test_writes_after_close_are_refused_as_unavailable(tmp_path: Path) -> None:
    engine = await _engine(tmp_path, [])
    await engine.close()
    with pytest.raises(Unavailable):
        await engine.write(_insert(1))


def test_migrations_apply_once_and_are_recorded(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    assert apply_migrations(conn) == [v for v, _, _ in available_migrations()]
    assert apply_migrations(conn) == []
    versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
    assert versions == [v for v, _, _ in available_migrations()]
    conn.close()


def test_an_upgrade_to_device_seen_keeps_every_devices_last_seen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain = available_migrations()
    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    monkeypatch.setattr(migrate, "available_migrations", lambda: [m for m in chain if m[0] < 11])
    apply_migrations(conn)
    conn.execute(
        "INSERT INTO devices (app_id, token, platform, first_seen, last_seen, token_updated_at)"
        " VALUES ('default', 'tok-a', 'ios', 1, 5, 1), ('default', 'tok-b', 'android', 1, 7, 1)"
    )
    monkeypatch.setattr(migrate, "available_migrations", lambda: chain)

    assert apply_migrations(conn) == [v for v, _, _ in chain if v >= 11]
    seen = conn.execute(
        "SELECT device_seen.last_seen FROM devices JOIN device_seen ON device_id = devices.id"
    )
    assert sorted(row[0] for row in seen) == [5.0, 7.0]
    conn.close()


async def test_the_database_runs_in_wal_mode(engine: Engine) -> None:
    mode = await engine.read(lambda c: c.execute("PRAGMA journal_mode").fetchone()[0])
    assert mode == "wal"
