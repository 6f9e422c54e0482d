"""Token hygiene scans devices in chunks of ids, one write transaction each."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from relay.domain import service
from relay.domain.service import RelayStore
from relay.facts import NewMetric
from relay.models.devices import DevicePut
from tests.support import make_settings


@pytest.fixture
async def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(service, "STALE_SCAN_CHUNK", 2)
    store = RelayStore(make_settings(tmp_path))
    await store.open()
    yield store
    await store.close()


def _token(prefix: str, i: int) -> str:
    return f"{prefix}{i:060x}"


async def _register(store: RelayStore, count: int, prefix: str) -> None:
    for i in range(count):
        await store.put_device("default", _token(prefix, i), DevicePut(platform="ios"))


async def _status(store: RelayStore, prefix: str, i: int) -> str:
    return (await store.device_detail("default", _token(prefix, i))).status


async def test_every_chunk_is_scanned_when_devices_outnumber_one_chunk(store: RelayStore) -> None:
    await _register(store, 5, "a")

    assert await store.mark_stale(time.time() + 1) == 5
    assert [await _status(store, "a", i) for i in range(5)] == ["stale"] * 5


async def test_devices_seen_after_the_cutoff_stay_active(store: RelayStore) -> None:
    await _register(store, 3, "old")
    cutoff = time.time() + 0.001
    time.sleep(0.01)
    await _register(store, 3, "new")

    assert await store.mark_stale(cutoff) == 3
    assert [await _status(store, "old", i) for i in range(3)] == ["stale"] * 3
    assert [await _status(store, "new", i) for i in range(3)] == ["active"] * 3


async def test_a_device_that_reported_a_metric_after_the_cutoff_stays_active(
    store: RelayStore,
) -> None:
    await _register(store, 3, "dev")
    cutoff = time.time() + 0.001
    time.sleep(0.01)
    metric = NewMetric("m-1", "delivered", _token("dev", 1), None, time.time())
    await store.ingest_metrics("default", [metric])

    assert await store.mark_stale(cutoff) == 2
    assert [await _status(store, "dev", i) for i in range(3)] == ["stale", "active", "stale"]


async def test_a_scan_over_no_devices_marks_nothing(store: RelayStore) -> None:
    assert await store.mark_stale(time.time() + 1) == 0
