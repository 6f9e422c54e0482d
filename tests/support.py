"""Test support: a real relay on a real port, a thin HTTP client, a relay subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from relay.api.state import STORE
from relay.app import create_app
from relay.domain import Store
from relay.keys import Role, generate_secret
from relay.settings import AppSettings, ServerSettings, Settings, StorageSettings, load_settings
from tests import engines

REPO = Path(__file__).resolve().parent.parent


def make_settings(tmp_path: Path, **sections: Any) -> Settings:
    """Defaults, with a database of its own (on the engine under test) and any section
    replaced."""
    base = Settings(
        server=ServerSettings(listen="127.0.0.1:0"),
        storage=StorageSettings(url=engines.database_url(tmp_path / "relay.db")),
    )
    return replace(base, **sections)


def two_apps() -> tuple[AppSettings, ...]:
    return (AppSettings(id="default"), AppSettings(id="other"))


@dataclass
class Answer:
    status: int
    body: Any
    headers: Any
    text: str

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0]


@dataclass
class Api:
    """A JSON client for one relay with one key."""

    session: aiohttp.ClientSession
    base_url: str
    key: str | None = None

    def as_(self, key: str | None) -> Api:
        return Api(self.session, self.base_url, key)

    async def request(
        self,
        method: str,
        path: str,
        json: Any = None,
        data: bytes | str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        sent_headers = {}
        if self.key is not None:
            sent_headers["Authorization"] = f"Bearer {self.key}"
        if json is not None:
            import json as jsonlib

            data = jsonlib.dumps(json)
            sent_headers["Content-Type"] = "application/json"
        sent_headers.update(headers or {})
        async with self.session.request(
            method, self.base_url + path, data=data, headers=sent_headers
        ) as response:
            text = await response.text()
            body: Any = None
            if text and "json" in response.headers.get("Content-Type", ""):
                body = await response.json(content_type=None)
            return Answer(response.status, body, response.headers, text)

    async def get(self, path: str, **kw: Any) -> Answer:
        return await self.request("GET", path, **kw)

    async def put(self, path: str, json: Any = None, **kw: Any) -> Answer:
        return await self.request("PUT", path, json=json, **kw)

    async def post(self, path: str, json: Any = None, **kw: Any) -> Answer:
        return await self.request("POST", path, json=json, **kw)

    async def delete(self, path: str, **kw: Any) -> Answer:
        return await self.request("DELETE", path, **kw)


@dataclass
class RelayServer:
    """relay's real application on 127.0.0.1, a random port, a real SQLite file."""

    settings: Settings
    runner: web.AppRunner | None = None
    base_url: str = ""
    _session: aiohttp.ClientSession | None = None
    keys: dict[tuple[str, str], str] = field(default_factory=dict)

    async def start(self) -> None:
        app = create_app(self.settings)
        self.runner = web.AppRunner(app, access_log=None)
        try:
            await self.runner.setup()
        except BaseException:
            await self.runner.cleanup()  # close what the contexts that did start opened
            raise
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        if self._session is None:
            self._session = aiohttp.ClientSession()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def close(self) -> None:
        await self.stop()
        if self._session is not None:
            await self._session.close()

    @property
    def store(self) -> Store:
        assert self.runner is not None
        return self.runner.app[STORE]

    async def key(self, role: Role = "app", app_id: str = "default") -> str:
        """A key of ``role`` for ``app_id``, created once per server."""
        if (role, app_id) not in self.keys:
            secret = generate_secret()
            await self.store.create_key(app_id, role, f"test {role}", secret)
            self.keys[(role, app_id)] = secret
        return self.keys[(role, app_id)]

    def api(self, key: str | None = None) -> Api:
        assert self._session is not None
        return Api(self._session, self.base_url, key)

    async def app_api(self, app_id: str = "default") -> Api:
        return self.api(await self.key("app", app_id))

    async def admin_api(self, app_id: str = "default") -> Api:
        return self.api(await self.key("admin", app_id))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def relay_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "relay", *args]


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real ``relay`` CLI in a subprocess."""
    return subprocess.run(
        relay_command(*args),
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


@dataclass
class RelayProcess:
    """``python -m relay serve`` in its own process, for restarts and signals."""

    config_path: Path
    cwd: Path
    port: int
    process: subprocess.Popen[str] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        with open(self.log_path, "a", encoding="utf-8") as log:
            self.process = subprocess.Popen(
                relay_command("serve", "--config", str(self.config_path)),
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )
        deadline = time.monotonic() + 20
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"relay exited early: {self.log_path.read_text()}")
                try:
                    async with session.get(self.base_url + "/readyz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError("relay did not become ready")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        code = self.process.wait(timeout=timeout)
        self.process = None
        return code

    @property
    def log_path(self) -> Path:
        return self.cwd / "relay-serve.log"


def write_config(path: Path, database: Path | str, port: int, extra: str = "") -> Path:
    """A config file for relay on ``port``; ``database`` is a storage URL, or the SQLite file a
    test would use (on PostgreSQL, the database standing for it: `engines.database_url`)."""
    url = database if isinstance(database, str) else engines.database_url(database)
    path.write_text(
        f'[server]\nlisten = "127.0.0.1:{port}"\n\n[storage]\nurl = "{url}"\n{extra}',
        encoding="utf-8",
    )
    return path


__all__ = ["load_settings"]


@contextlib.asynccontextmanager
async def started_servers() -> AsyncIterator[Callable[[Settings], Awaitable[RelayServer]]]:
    """Start relay servers from settings, as many as asked; every one is closed on exit."""
    servers: list[RelayServer] = []

    async def start(settings: Settings) -> RelayServer:
        server = RelayServer(settings)
        await server.start()
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
            await server.close()


async def eventually(check, timeout: float = 10.0, interval: float = 0.02):  # type: ignore[no-untyped-def]
    """Poll ``check()`` (sync or async) until it returns a truthy value; return that value."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {check}")
        await asyncio.sleep(interval)
