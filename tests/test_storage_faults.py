"""Storage faults (API.md "Operations"): writes that cannot be committed answer 503 with
Retry-After, never 500; /readyz says which fault; relay recovers by itself once it clears.
Real file systems: a small tmpfs fills up, a tmpfs is remounted read-only (root only: CI runs
as root; elsewhere these tests say why they did not run)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import (
    RelayProcess,
    RelayServer,
    eventually,
    free_port,
    make_settings,
    write_config,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.sqlite_only,  # the SQLite engine's files under faulty mounts
    pytest.mark.skipif(
        os.geteuid() != 0, reason="mounting a small or read-only file system needs root"
    ),
]

TOKEN = "f00dcafe0001"


class Mount:
    def __init__(self, path: Path) -> None:
        self.path = path

    def remount(self, mode: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{mode}", str(self.path)], check=True)


@pytest.fixture
def fs(tmp_path: Path) -> Iterator[Mount]:
    """A 4 MiB tmpfs of its own, unmounted at the end whatever happened."""
    path = tmp_path / "fs"
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(path)], check=True)
    try:
        yield Mount(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


async def start_on(fs: Mount) -> RelayServer:
    server = RelayServer(make_settings(fs.path))
    await server.start()
    return server


def metrics(start: int, count: int, padding: int = 0) -> dict[str, object]:
    items = [
        {"id": f"m{i}-{'x' * padding}", "metric": "delivered", "token": TOKEN}
        for i in range(start, start + count)
    ]
    return {"metrics": items}


def fill(directory: Path) -> Path:
    """Take every free block of the file system."""
    filler = directory / "filler"
    with open(filler, "wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    return filler


async def test_a_full_disk_answers_503_and_writes_resume_once_space_is_back(fs: Mount) -> None:
    server = await start_on(fs)
    try:
        app = await server.app_api()
        assert (await app.put(f"/v1/devices/{TOKEN}", {"platform": "ios"})).status == 201
        filler = fill(fs.path)
        statuses = []
        for start in range(0, 200_000, 500):  # until the WAL needs a block there is none of
            answer = await app.post("/v1/metrics", metrics(start, 500, padding=100))
            statuses.append(answer.status)
            if answer.status != 200:
                break
        assert statuses[-1] == 503, statuses
        assert int(answer.headers["Retry-After"]) > 0
        assert "disk full" in answer.body["detail"]
        ready = await server.api().get("/readyz")
        assert (ready.status, "disk full" in ready.body["reason"]) == (503, True)
        assert 500 not in statuses

        filler.unlink()

        async def writes_again() -> bool:
            answer = await app.post("/v1/metrics", metrics(900_000, 1))
            return answer.status == 200

        await eventually(writes_again, timeout=15)
        assert (await server.api().get("/readyz")).status == 200
    finally:
        await server.close()


async def seeded_then_read_only(fs: Mount) -> dict[tuple[str, str], str]:
    """A database with a device and keys on it, relay stopped, then the file system made
    read-only (a mount cannot turn read-only under open writers: this is how an operator
    meets it). Returns the keys, for the next server."""
    server = await start_on(fs)
    app = await server.app_api()
    await server.admin_api()
    assert (await app.put(f"/v1/devices/{TOKEN}", {"platform": "ios"})).status == 201
    await server.close()
    fs.remount("ro")
    return server.keys


async def restarted(fs: Mount, keys: dict[tuple[str, str], str]) -> RelayServer:
    server = RelayServer(make_settings(fs.path), keys=dict(keys))
    await server.start()
    return server


async def test_on_a_read_only_file_system_relay_serves_reads_refuses_writes_and_recovers(
    fs: Mount,
) -> None:
    server = await restarted(fs, await seeded_then_read_only(fs))
    try:
        app, admin = await server.app_api(), await server.admin_api()
        refused = await app.post("/v1/metrics", metrics(0, 1))
        assert refused.status == 503, refused.text
        assert "read-only" in refused.body["detail"]
        assert "Retry-After" in refused.headers
        assert (await admin.get(f"/v1/devices/{TOKEN}")).status == 200
        ready = await server.api().get("/readyz")
        assert (ready.status, "read-only" in ready.body["reason"]) == (503, True)

        fs.remount("rw")

        async def writes_again() -> bool:
            return (await app.post("/v1/metrics", metrics(1, 1))).status == 200

        await eventually(writes_again, timeout=15)
        shown = await admin.get(f"/v1/devices/{TOKEN}")
        assert shown.body["counts"]["delivered"] == 1
        assert (await server.api().get("/readyz")).status == 200
    finally:
        await server.close()


async def test_a_compat_write_on_a_read_only_file_system_is_503_in_customerios_shape(
    fs: Mount,
) -> None:
    server = await restarted(fs, await seeded_then_read_only(fs))
    try:
        key = await server.key("app")
        answer = await server.api().post(
            "/cdp/v1/b", {"batch": [{"type": "identify", "userId": "c1"}], "writeKey": key}
        )
        assert answer.status == 503, answer.text
        assert answer.body["code"] == "unavailable"
        assert "Retry-After" in answer.headers
    finally:
        await server.close()


async def test_relay_started_on_a_read_only_database_serves_reads_then_recovers(
    fs: Mount,
) -> None:
    """Started on a read-only mount, with an empty -shm left behind that SQLite would map
    and fault on (SIGBUS): relay starts, reads work, writes are 503 until the mount is rw."""
    server = await start_on(fs)
    app = await server.app_api()
    admin_key = await server.key("admin")
    assert (await app.put(f"/v1/devices/{TOKEN}", {"platform": "ios"})).status == 201
    app_key = await server.key("app")
    await server.close()
    Path(fs.path / "relay.db-shm").write_bytes(b"")
    fs.remount("ro")

    port = free_port()
    config = write_config(fs.path.parent / "relay.toml", fs.path / "relay.db", port)
    process = RelayProcess(config, fs.path.parent, port)
    with pytest.raises(RuntimeError, match="did not become ready"):
        await process.start()  # it runs, but is not ready: writes cannot commit
    try:
        assert process.process is not None and process.process.poll() is None
        session_api = Api.for_url(process.base_url)
        read = await session_api.get(f"/v1/devices/{TOKEN}", key=admin_key)
        assert read[0] == 200
        write = await session_api.post("/v1/metrics", metrics(0, 1), key=app_key)
        assert write[0] == 503
        fs.remount("rw")

        async def writes_again() -> bool:
            return (await session_api.post("/v1/metrics", metrics(1, 1), key=app_key))[0] == 200

        await eventually(writes_again, timeout=15)
        read = await session_api.get(f"/v1/devices/{TOKEN}", key=admin_key)
        assert read[1]["counts"]["delivered"] == 1
    finally:
        assert process.stop() == 0


class Api:
    """A minimal client for a relay in another process."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    @classmethod
    def for_url(cls, base_url: str) -> Api:
        return cls(base_url)

    async def get(self, path: str, key: str) -> tuple[int, object]:
        return await self._call("GET", path, None, key)

    async def post(self, path: str, body: object, key: str) -> tuple[int, object]:
        return await self._call("POST", path, body, key)

    async def _call(self, method: str, path: str, body: object, key: str) -> tuple[int, object]:
        import aiohttp

        async with (
            aiohttp.ClientSession() as session,
            session.request(
                method,
                self.base_url + path,
                json=body,
                headers={"Authorization": f"Bearer {key}"},
            ) as response,
        ):
            return response.status, await response.json(content_type=None)
