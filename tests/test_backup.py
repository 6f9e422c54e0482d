"""``relay backup PATH`` (API.md "CLI"): a consistent online copy of the SQLite database,
taken by a real ``relay`` subprocess while a real server keeps writing; restoring it is
copying it over the database file."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.support import RelayServer, make_settings, run_cli, write_config

# The SQLite engine itself: its files, mounts and backup.
pytestmark = pytest.mark.sqlite_only

TOKEN = "f00dcafe0001"


async def seeded(tmp_path: Path) -> RelayServer:
    server = RelayServer(make_settings(tmp_path))
    await server.start()
    app = await server.app_api()
    assert (await app.put(f"/v1/devices/{TOKEN}", {"platform": "ios"})).status == 201
    return server


def metrics(start: int, count: int) -> dict[str, object]:
    items = [
        {"id": f"m{i}", "metric": "delivered", "token": TOKEN} for i in range(start, start + count)
    ]
    return {"metrics": items}


async def test_a_backup_taken_while_serving_is_a_consistent_database(tmp_path: Path) -> None:
    server = await seeded(tmp_path)
    app = await server.app_api()
    stop = asyncio.Event()
    acknowledged = 0

    async def keep_writing() -> None:
        nonlocal acknowledged
        while not stop.is_set():
            answer = await app.post("/v1/metrics", metrics(acknowledged, 50))
            assert answer.status == 200
            acknowledged += 50

    writer = asyncio.create_task(keep_writing())
    await asyncio.sleep(0.2)
    before = acknowledged
    config = write_config(tmp_path / "relay.toml", server.settings.storage.sqlite_path, 0)
    target = tmp_path / "backups" / "relay-backup.db"
    target.parent.mkdir()
    result = await asyncio.to_thread(run_cli, "backup", str(target), "--config", str(config))
    stop.set()
    await writer
    await server.close()
    assert result.returncode == 0, result.stderr
    assert str(target) in result.stdout

    with sqlite3.connect(target) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        (stored,) = copy.execute("SELECT count(*) FROM metrics").fetchone()
    assert before <= stored <= acknowledged
    assert stored % 50 == 0  # whole requests only: one snapshot, never half a commit
    assert sorted(p.name for p in target.parent.iterdir()) == ["relay-backup.db"]


async def test_restoring_a_backup_brings_back_its_data(tmp_path: Path) -> None:
    server = await seeded(tmp_path)
    database = server.settings.storage.sqlite_path
    config = write_config(tmp_path / "relay.toml", database, 0)
    target = tmp_path / "relay-backup.db"
    result = await asyncio.to_thread(run_cli, "backup", str(target), "--config", str(config))
    assert result.returncode == 0, result.stderr
    await server.close()

    # the documented restore: relay stopped, the copy over the file, -wal and -shm removed
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(target, database)
    restored = RelayServer(make_settings(tmp_path))
    await restored.start()
    try:
        shown = await (await restored.admin_api()).get(f"/v1/devices/{TOKEN}")
        assert shown.status == 200, shown.text
    finally:
        await restored.close()


def test_a_backup_onto_a_directory_exits_1_with_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path / "relay.toml", tmp_path / "relay.db", 0)
    result = run_cli("backup", str(tmp_path), "--config", str(config))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(("relay: error:", "Error:"))
