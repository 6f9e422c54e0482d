"""Start-up, restart and graceful shutdown of a real ``relay serve`` process."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import aiohttp

from tests.support import Api, RelayProcess, RelayServer, free_port, run_cli, write_config


async def test_data_survives_a_restart(relay: RelayServer) -> None:
    app_api = await relay.app_api()
    await app_api.put("/v1/devices/tok", {"platform": "android", "customer_id": "c1"})
    await app_api.post(
        "/v1/metrics", {"metrics": [{"id": "m1", "metric": "delivered", "token": "tok"}]}
    )
    await relay.restart()
    device = (await (await relay.admin_api()).get("/v1/devices/tok")).body
    assert device["customer_id"] == "c1"
    assert device["counts"]["delivered"] == 1


def _process(tmp_path: Path) -> RelayProcess:
    port = free_port()
    config = write_config(tmp_path / "relay.toml", tmp_path / "relay.db", port)
    return RelayProcess(config, tmp_path, port)


def _admin_key(tmp_path: Path) -> str:
    created = run_cli("keys", "create", "--role", "admin", "--config", str(tmp_path / "relay.toml"))
    assert created.returncode == 0, created.stderr
    return created.stdout.strip().splitlines()[-1]


async def test_serve_process_keeps_data_across_sigterm_and_restart(tmp_path: Path) -> None:
    relay = _process(tmp_path)
    await relay.start()
    key = _admin_key(tmp_path)
    async with aiohttp.ClientSession() as session:
        api = Api(session, relay.base_url, key)
        assert (await api.put("/v1/devices/tok", {"platform": "ios"})).status == 201
        assert relay.stop(signal.SIGTERM) == 0
        await relay.start()
        try:
            assert (await api.get("/v1/devices/tok")).body["platform"] == "ios"
        finally:
            relay.stop()


async def test_sigterm_finishes_in_flight_writes_and_exits_zero(tmp_path: Path) -> None:
    relay = _process(tmp_path)
    await relay.start()
    key = _admin_key(tmp_path)
    async with aiohttp.ClientSession() as session:
        api = Api(session, relay.base_url, key)
        await api.put("/v1/devices/tok", {"platform": "ios"})

        async def report(batch: int) -> int:
            items = [
                {"id": f"m{batch}-{i}", "metric": "delivered", "token": "tok"} for i in range(200)
            ]
            try:
                answer = await api.post("/v1/metrics", {"metrics": items})
            except aiohttp.ClientError:
                return 0  # refused before it was accepted: not acknowledged, may be lost
            return answer.body["accepted"] if answer.status == 200 else 0

        senders = [asyncio.create_task(report(b)) for b in range(40)]
        await asyncio.sleep(0.05)
        assert relay.stop(signal.SIGTERM) == 0
        acknowledged = sum(await asyncio.gather(*senders))
        await relay.start()
        try:
            stored = (await api.get("/v1/devices/tok")).body["counts"]["delivered"]
        finally:
            relay.stop()
    assert acknowledged > 0
    assert stored == acknowledged
