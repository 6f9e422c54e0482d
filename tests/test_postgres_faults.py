"""PostgreSQL faults: a lost connection is a storage fault (503, /readyz says so), healed by
reconnecting, without a restart; a database that cannot be reached at start is one line; a
writer elsewhere that keeps the write turn delays writes, then they answer 503."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from relay.store.postgres.engine import WRITE_TURN_LOCK
from tests import engines
from tests.support import RelayServer, eventually, free_port, make_settings, run_cli, write_config

pytestmark = pytest.mark.postgresql_only


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RelayServer]:
    relay = RelayServer(make_settings(tmp_path))
    await relay.start()
    yield relay
    await relay.close()


@contextlib.contextmanager
def another_writers_turn(server: RelayServer) -> Iterator[Callable[[], None]]:
    """Another relay writer's session holding the write turn, until the test calls the
    function given (or the block ends)."""
    with psycopg.connect(server.settings.storage.url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (WRITE_TURN_LOCK,))
        yield lambda: other.execute("SELECT pg_advisory_unlock(%s)", (WRITE_TURN_LOCK,))


def _drop_relays_connections(database_url: str) -> int:
    database = database_url.rpartition("/")[2]
    rows = engines.query(
        engines.ADMIN_URL,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE datname = ? AND pid <> pg_backend_pid()",
        (database,),
    )
    return int(str(rows[0][0]))


async def test_a_lost_connection_answers_503_then_heals_without_a_restart(
    server: RelayServer,
) -> None:
    api = await server.app_api()
    assert (await api.put("/v1/devices/tok-a", {"platform": "ios"})).status == 201
    assert _drop_relays_connections(server.settings.storage.url) > 0
    first = await api.put("/v1/devices/tok-b", {"platform": "ios"})
    assert first.status in (201, 503)  # the writer may notice at once or heal first
    if first.status == 503:
        assert "Retry-After" in first.headers

    async def writes_again() -> bool:
        answer = await api.put("/v1/devices/tok-b", {"platform": "ios"})
        return answer.status in (200, 201)

    await eventually(writes_again, timeout=15)
    admin = await server.admin_api()
    assert (await admin.get("/v1/devices/tok-a")).status == 200  # the readers healed too
    assert (await admin.get("/readyz")).status == 200


async def test_a_process_holds_pool_size_connections_in_all(server: RelayServer) -> None:
    # API.md: pool_size is the connections per process (writer, key listener, readers).
    database = server.settings.storage.url.rpartition("/")[2]

    def connections() -> int:
        rows = engines.query(
            engines.ADMIN_URL,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = ? AND pid <> pg_backend_pid()",
            (database,),
        )
        return int(str(rows[0][0]))

    await eventually(lambda: connections() == server.settings.storage.pool_size)


def test_a_database_that_cannot_be_reached_exits_1_naming_it(tmp_path: Path) -> None:
    unreachable = "postgresql://relay:secret@127.0.0.1:1/relay"
    config = write_config(tmp_path / "relay.toml", unreachable, free_port())
    result = run_cli("migrate", "--config", str(config))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "127.0.0.1:1" in lines[0]
    assert "secret" not in result.stderr  # the password is never printed


async def test_a_write_waits_while_another_process_writes(server: RelayServer) -> None:
    api = await server.app_api()
    with another_writers_turn(server) as end_turn:
        put = asyncio.ensure_future(api.put("/v1/devices/tok-a", {"platform": "ios"}))
        await asyncio.sleep(0.5)
        assert not put.done()  # the other writer's transaction may still be open
        end_turn()
        assert (await put).status == 201


async def test_a_writer_elsewhere_keeping_its_turn_gets_503_not_a_hang(
    server: RelayServer,
) -> None:
    api = await server.app_api()
    with another_writers_turn(server):
        stuck = await api.put("/v1/devices/tok-a", {"platform": "ios"})  # after lock_timeout
    assert stuck.status == 503
    assert "locked" in stuck.body["detail"]
    assert (await api.put("/v1/devices/tok-a", {"platform": "ios"})).status == 201


async def test_writes_leave_no_predicate_locks_for_a_long_serializable_transaction(
    server: RelayServer,
) -> None:
    # While a SERIALIZABLE transaction is open anywhere on the server, PostgreSQL keeps the
    # predicate locks of every serializable transaction since, in a table of fixed size. When
    # relay's writers ran SERIALIZABLE, a long report elsewhere filled it within seconds under
    # load: "out of shared memory", and every write answered 503.
    api = await server.app_api()
    for i in range(20):
        assert (await api.put(f"/v1/devices/tok-{i}", {"platform": "ios"})).status == 201
    # e.g. an analyst's long report, in another database of the same server
    with psycopg.connect(engines.ADMIN_URL, autocommit=True) as report:
        report.execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
        report.execute("SELECT count(*) FROM pg_class")
        items = [
            {"id": f"m-{i}", "metric": "delivered", "token": f"tok-{i}", "delivery_id": f"d-{i}"}
            for i in range(20)
        ]
        assert (await api.post("/v1/metrics", {"metrics": items})).status == 200
        database = server.settings.storage.url.rpartition("/")[2]
        kept = engines.query(
            engines.ADMIN_URL,
            "SELECT count(*) FROM pg_locks JOIN pg_database AS d ON d.oid = pg_locks.database"
            " WHERE mode = 'SIReadLock' AND d.datname = ?",
            (database,),
        )
        assert kept[0][0] == 0
