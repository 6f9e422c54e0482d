"""The HTTP server's limits and its graceful stop (API.md "Config" [server], "Operations"),
driven over raw sockets against a real ``relay serve`` process: requests that do not arrive
whole in time get 408, idle keep-alive connections close, connections over the cap are
refused with a rate-limited log line, SIGTERM stops accepting at once, lets in-flight requests
finish, answers stalled uploads 503 and exits 0 within the timeout; a second signal exits at
once. The access log has a line per request and never a key or a whole token."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from relay.server import GuardedProtocol, GuardedRunner, GuardedServer
from tests.support import RelayProcess, eventually, free_port, run_cli, write_config

pytestmark = pytest.mark.slow

TOKEN = "a1b2c3d4e5f60718293a4b5c6d7e8f90"


def test_the_aiohttp_internals_the_guards_extend_still_exist() -> None:
    from aiohttp import web
    from aiohttp.web_protocol import RequestHandler
    from aiohttp.web_runner import AppRunner

    for name in ("connection_made", "data_received", "force_close", "close"):
        assert hasattr(RequestHandler, name), name
    assert "_current_request" in RequestHandler.__slots__
    assert hasattr(AppRunner, "_make_server")
    assert issubclass(GuardedProtocol, RequestHandler) and issubclass(GuardedRunner, AppRunner)
    assert isinstance(vars(web.Server).get("connections"), property)  # GuardedServer.full
    assert issubclass(GuardedServer, web.Server)


Start = Callable[..., "asyncio.Future[RelayProcess]"]


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Callable[..., object]]:
    """Start ``relay serve`` with [server] settings; stopped at the end if still running."""
    started: list[RelayProcess] = []

    async def run(**server: float) -> RelayProcess:
        port = free_port()
        extra = "".join(f"{key} = {value}\n" for key, value in server.items())
        config = write_config(tmp_path / "relay.toml", tmp_path / "relay.db", port)
        text = config.read_text().replace("[storage]", f"{extra}\n[storage]", 1)
        config.write_text(text)
        process = RelayProcess(config, tmp_path, port)
        await process.start()
        started.append(process)
        return process

    yield run
    for process in started:
        if process.process is not None:
            process.process.kill()
            process.process.wait()


def app_key(process: RelayProcess) -> str:
    created = run_cli("keys", "create", "--role", "app", "--config", str(process.config_path))
    assert created.returncode == 0, created.stderr
    return created.stdout.strip().splitlines()[-1]


def connect(process: RelayProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", process.port), timeout=3)
    return sock


def answer_of(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (or 10 s pass)."""
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except (TimeoutError, ConnectionResetError):
        pass
    return b"".join(chunks)


def upload_head(key: str, length: int = 1000) -> bytes:
    return (
        f"POST /v1/metrics HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    yield opened
    for sock in opened:
        sock.close()


async def test_headers_that_never_finish_get_408_and_the_connection_closes(start) -> None:  # type: ignore[no-untyped-def]
    relay = await start(request_timeout_seconds=1)
    with connect(relay) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: relay\r\n")  # and never the blank line
        answer = await asyncio.to_thread(answer_of, sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"Connection: close" in answer


async def test_a_body_that_stalls_gets_408_and_the_connection_closes(start) -> None:  # type: ignore[no-untyped-def]
    relay = await start(request_timeout_seconds=1)
    key = await asyncio.to_thread(app_key, relay)
    with connect(relay) as sock:
        sock.sendall(upload_head(key) + b'{"metrics": [')
        answer = await asyncio.to_thread(answer_of, sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"application/problem+json" in answer


async def test_an_idle_keep_alive_connection_is_closed(start) -> None:  # type: ignore[no-untyped-def]
    relay = await start(idle_timeout_seconds=1)
    with connect(relay) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: relay\r\n\r\n")
        started = time.monotonic()
        answer = await asyncio.to_thread(answer_of, sock)  # returns when the server closes
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert time.monotonic() - started < 5


async def test_connections_over_the_cap_are_refused_with_few_log_lines(  # type: ignore[no-untyped-def]
    start, sockets: list[socket.socket]
) -> None:
    relay = await start(max_connections=5)
    for _ in range(5):  # each answered once, so the server surely counts it, then kept idle
        sock = connect(relay)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: relay\r\n\r\n")
        assert (await asyncio.to_thread(sock.recv, 65536)).startswith(b"HTTP/1.1 200 ")
        sockets.append(sock)
    refused = 0
    for _ in range(50):
        with connect(relay) as extra:
            answer = await asyncio.to_thread(answer_of, extra)
            refused += answer.startswith(b"HTTP/1.1 503 ")
    assert refused == 50
    lines = [line for line in relay.log_path.read_text().splitlines() if "refused" in line]
    assert 1 <= len(lines) <= 2, lines
    for sock in sockets:
        sock.close()
    sockets.clear()

    async def admitted() -> bool:  # the cap frees up as the server notices the closes
        with connect(relay) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n")
            return (await asyncio.to_thread(answer_of, sock)).startswith(b"HTTP/1.1 200 ")

    await eventually(admitted, timeout=10)


async def test_sigterm_answers_a_stalled_upload_503_and_exits_0_within_the_timeout(start) -> None:  # type: ignore[no-untyped-def]
    relay = await start(shutdown_timeout_seconds=3)
    key = await asyncio.to_thread(app_key, relay)
    with connect(relay) as sock:
        sock.sendall(upload_head(key) + b'{"metrics": [')
        await asyncio.sleep(0.2)
        assert relay.process is not None
        started = time.monotonic()
        relay.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        with pytest.raises(ConnectionRefusedError):  # stopped accepting at once
            socket.create_connection(("127.0.0.1", relay.port), timeout=1)
        answer = await asyncio.to_thread(answer_of, sock)
        code = await asyncio.to_thread(relay.process.wait, 10)
    assert answer.startswith(b"HTTP/1.1 503 "), answer
    assert b"Retry-After" in answer
    assert code == 0
    assert time.monotonic() - started < 3.5


async def test_sigterm_lets_an_upload_in_flight_finish(start) -> None:  # type: ignore[no-untyped-def]
    relay = await start(shutdown_timeout_seconds=5)
    key = await asyncio.to_thread(app_key, relay)
    body = f'{{"metrics": [{{"id": "m1", "metric": "delivered", "token": "{TOKEN}"}}]}}'.encode()
    with connect(relay) as sock:
        sock.sendall(upload_head(key, len(body)) + body[:10])
        await asyncio.sleep(0.2)
        assert relay.process is not None
        relay.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        sock.sendall(body[10:])
        answer = await asyncio.to_thread(answer_of, sock)
        code = await asyncio.to_thread(relay.process.wait, 10)
    assert answer.startswith(b"HTTP/1.1 200 "), answer
    assert b'"accepted":1' in answer
    assert code == 0


async def test_a_second_signal_exits_at_once(start) -> None:  # type: ignore[no-untyped-def]
    relay = await start(shutdown_timeout_seconds=30)
    key = await asyncio.to_thread(app_key, relay)
    with connect(relay) as sock:
        sock.sendall(upload_head(key) + b'{"metrics": [')
        await asyncio.sleep(0.2)
        assert relay.process is not None
        relay.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        started = time.monotonic()
        relay.process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(relay.process.wait, 10)
    assert time.monotonic() - started < 2


async def test_the_access_log_has_a_line_per_request_and_never_a_key_or_token(start) -> None:  # type: ignore[no-untyped-def]
    relay = await start()
    key = await asyncio.to_thread(app_key, relay)
    with connect(relay) as sock:
        body = b'{"platform": "ios"}'
        sock.sendall(
            f"PUT /v1/devices/{TOKEN} HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n".encode()
            + body
        )
        assert (await asyncio.to_thread(answer_of, sock)).startswith(b"HTTP/1.1 201 ")
    await asyncio.sleep(0.2)
    log = relay.log_path.read_text()
    assert TOKEN not in log and key not in log
    (line,) = [line for line in log.splitlines() if "relay.access" in line and "PUT" in line]
    assert "PUT /v1/devices/a1b2…8f90 201" in line and "app=default" in line
