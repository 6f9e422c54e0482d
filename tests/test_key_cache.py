"""API keys cached: a request need not read its key, and a revoke is honoured at once by every
relay process (PostgreSQL: LISTEN/NOTIFY, even by one whose listener was down meanwhile;
SQLite: the file beside the database that every key change appends to), and within
`MAX_AGE_S` even when nobody signalled it.

The cache's bookkeeping is tested alone; the rest on a real relay and a real database, where
keys are revoked from outside it — by the CLI, in a process of its own, or by SQL no relay
sent — so only the cache's invalidation can make them refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest

from relay.domain.key_cache import MAX_AGE_S, KeyCache
from relay.domain.service import RelayStore
from relay.keys import KeyRecord, generate_secret
from relay.store.connection import Connection
from relay.store.postgres.key_signal import APPLICATION_NAME
from relay.store.sqlite.key_signal import KeyFile
from tests import engines
from tests.support import (
    Api,
    RelayServer,
    eventually,
    free_port,
    make_settings,
    run_cli,
    write_config,
)


def _relay_store(relay: RelayServer) -> RelayStore:
    store = relay.store
    assert isinstance(store, RelayStore)
    return store


async def _listening(store: RelayStore) -> int:
    """The keys generation, once the engine's listener listens: until then nothing is cached
    (and these tests would prove nothing)."""
    generation = await eventually(lambda: store.engine.keys_generation, timeout=15)
    return int(generation)


async def _heard(store: RelayStore, since: int) -> None:
    """Until the notification of a key created since ``since`` arrives, what is cached is
    forgotten when it does."""
    await eventually(lambda: (store.engine.keys_generation or since) > since)


async def _new_app_key(relay: RelayServer) -> Api:
    store = _relay_store(relay)
    before = await _listening(store)
    app = await relay.app_api()
    await _heard(store, before)
    return app


async def _key_id(relay: RelayServer) -> str:
    (record,) = [k for k in await relay.store.list_keys() if k.role == "app"]
    return record.id


def _listeners(database_url: str, terminate: bool = False) -> int:
    """How many key listeners are connected to the database (terminated, if asked)."""
    database = database_url.rpartition("/")[2]
    rows = engines.query(
        engines.ADMIN_URL,
        f"SELECT count({'pg_terminate_backend(pid)' if terminate else '*'}) FROM pg_stat_activity"
        " WHERE datname = ? AND application_name = ?",
        (database, APPLICATION_NAME),
    )
    return int(str(rows[0][0]))


@contextlib.contextmanager
def _connections_refused(database_url: str) -> Iterator[None]:
    """New connections to the database fail (those open stay up), until the block ends."""
    database = database_url.rpartition("/")[2]
    engines.query(engines.ADMIN_URL, f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
    try:
        yield
    finally:
        engines.query(engines.ADMIN_URL, f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')


@pytest.fixture
async def outside(relay: RelayServer) -> AsyncIterator[psycopg.Connection[tuple[object, ...]]]:
    """A connection to relay's database that is not relay's: its writes notify nobody."""
    conn = await asyncio.to_thread(
        psycopg.connect, relay.settings.storage.url, autocommit=True, connect_timeout=5
    )
    yield conn
    conn.close()


async def test_a_key_revoked_by_the_cli_is_refused_by_the_very_next_request(
    relay: RelayServer, tmp_path: Path
) -> None:
    app = await _new_app_key(relay)
    assert (await app.put("/v1/devices/tok-cli", {"platform": "ios"})).status == 201
    assert (await app.put("/v1/devices/tok-cli", {"platform": "ios"})).status == 200
    config = write_config(tmp_path / "cli.toml", relay.settings.storage.url, free_port())
    key_id = await _key_id(relay)
    revoked = await asyncio.to_thread(run_cli, "keys", "revoke", key_id, "--config", str(config))
    assert revoked.returncode == 0, revoked.stderr
    assert (await app.put("/v1/devices/tok-cli", {"platform": "ios"})).status == 401


@pytest.mark.postgresql_only
async def test_a_cached_key_authenticates_while_every_reader_is_busy(tmp_path: Path) -> None:
    base = make_settings(tmp_path)
    settings = replace(base, storage=replace(base.storage, pool_size=2))  # one reader
    store = RelayStore(settings)
    await store.open()
    try:
        before = await _listening(store)
        secret = generate_secret()
        record = await store.create_key("default", "app", "cached", secret)
        await _heard(store, before)
        assert await store.authenticate(secret) == record
        holding = threading.Event()

        def hold_the_reader(conn: Connection) -> None:
            holding.set()
            conn.execute("SELECT pg_sleep(1.5)")

        held = asyncio.create_task(store.engine.read(hold_the_reader))
        assert await asyncio.to_thread(holding.wait, 10)
        unknown = asyncio.create_task(store.authenticate(generate_secret()))
        async with asyncio.timeout(0.5):
            assert await store.authenticate(secret) == record
        assert not unknown.done(), "the reader was not busy: the test proves nothing"
        await held
        assert await unknown is None
    finally:
        await store.close()


@pytest.mark.postgresql_only
async def test_a_revoke_while_the_listener_is_down_is_honoured_and_it_listens_again(
    relay: RelayServer, outside: psycopg.Connection[tuple[object, ...]]
) -> None:
    app = await _new_app_key(relay)
    assert (await app.put("/v1/devices/tok-down", {"platform": "ios"})).status == 201
    url = relay.settings.storage.url
    engine = _relay_store(relay).engine
    with _connections_refused(url):
        assert _listeners(url, terminate=True) == 1
        await eventually(lambda: engine.keys_generation is None)
        # A revoke nobody is told of, as one committed while no listener heard it would be.
        outside.execute("UPDATE api_keys SET revoked_at = 1 WHERE id = %s", (await _key_id(relay),))
        assert (await app.put("/v1/devices/tok-down", {"platform": "ios"})).status == 401
    await _listening(_relay_store(relay))
    assert _listeners(url) == 1


@pytest.mark.sqlite_only
async def test_a_revoke_nobody_signalled_is_honoured_once_the_cached_key_expires(
    relay: RelayServer,
) -> None:
    app = await _new_app_key(relay)
    assert (await app.put("/v1/devices/tok-quiet", {"platform": "ios"})).status == 201
    url = relay.settings.storage.url
    engines.query(url, "UPDATE api_keys SET revoked_at = 1 WHERE id = ?", (await _key_id(relay),))
    started = asyncio.get_running_loop().time()
    assert (await app.put("/v1/devices/tok-quiet", {"platform": "ios"})).status == 200, (
        "the key was read again: nothing was cached, and the test proves nothing"
    )
    await eventually(
        lambda: _refused(app.put("/v1/devices/tok-quiet", {"platform": "ios"})), MAX_AGE_S + 5
    )
    assert asyncio.get_running_loop().time() - started < MAX_AGE_S + 2


@pytest.mark.sqlite_only
async def test_without_the_keys_file_every_request_reads_its_key(relay: RelayServer) -> None:
    app = await _new_app_key(relay)
    assert (await app.put("/v1/devices/tok-nofile", {"platform": "ios"})).status == 201
    KeyFile(relay.settings.storage.sqlite_path).path.unlink()
    url = relay.settings.storage.url
    engines.query(url, "UPDATE api_keys SET revoked_at = 1 WHERE id = ?", (await _key_id(relay),))
    assert (await app.put("/v1/devices/tok-nofile", {"platform": "ios"})).status == 401


async def _refused(answer: Awaitable[Any]) -> bool:
    """Whether the request was refused for its key."""
    return bool((await answer).status == 401)


FOUND = (KeyRecord("key_1", "default", "app", "test", 0.0), "hash-1")


def test_a_key_cached_in_an_older_generation_is_a_miss() -> None:
    cache = KeyCache()
    cache.put("hash-1", FOUND, cache.stamp(1))
    assert cache.get("hash-1", cache.stamp(1)) == FOUND
    assert cache.get("hash-1", cache.stamp(2)) is None


def test_a_key_read_before_an_invalidation_here_is_a_miss_after_it() -> None:
    cache = KeyCache()
    read_in = cache.stamp(1)  # a read in flight while this process revokes a key
    cache.invalidate()
    cache.put("hash-1", FOUND, read_in)
    assert cache.get("hash-1", cache.stamp(1)) is None


def test_a_key_read_longer_ago_than_the_max_age_is_a_miss() -> None:
    now = [100.0]
    cache = KeyCache(clock=lambda: now[0])
    cache.put("hash-1", FOUND, cache.stamp(1))
    now[0] += MAX_AGE_S - 0.01
    assert cache.get("hash-1", cache.stamp(1)) == FOUND
    now[0] += 0.01
    assert cache.get("hash-1", cache.stamp(1)) is None


def test_nothing_is_cached_while_the_engine_cannot_say_when_keys_change() -> None:
    cache = KeyCache()
    cache.put("hash-1", FOUND, cache.stamp(None))
    assert len(cache) == 0


def test_a_full_cache_starts_over() -> None:
    cache = KeyCache(max_entries=2)
    for n in range(3):
        cache.put(f"hash-{n}", FOUND, cache.stamp(1))
    assert len(cache) == 1
    assert cache.get("hash-2", cache.stamp(1)) == FOUND
