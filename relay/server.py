"""``relay serve``: the listening socket, connection limits, and a graceful stop in two stages.

- A request must arrive whole (headers and body) within ``request_timeout_seconds`` of its
  first byte, else 408 and the connection closes; an idle keep-alive connection closes after
  ``idle_timeout_seconds``; beyond ``max_connections`` new connections are refused at once,
  with one log line per interval, not one per connection.
- SIGTERM/SIGINT: stage one stops accepting and turns ``/readyz`` to 503 at once; stage two
  gives in-flight requests the rest of ``shutdown_timeout_seconds``. Uploads still arriving
  near the end are answered 503 (clients keep their data) and closed; then the cleanup
  contexts run (the writer commits everything acknowledged) and relay exits 0. A second
  signal exits at once.

aiohttp has no header timeout and no connection cap of its own: `GuardedProtocol` and
`GuardedServer` add them to its request handler and server (tests/test_server_limits.py fails
loudly if the aiohttp internals they extend change).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import resource
import signal
import time

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from relay.api.state import LIFECYCLE
from relay.app import create_app, ssl_context
from relay.errors import CannotStart
from relay.settings import ServerSettings, Settings

log = logging.getLogger(__name__)

REFUSAL_LOG_INTERVAL_S = 10.0
# Container allocations between two young-generation collections (CPython's default: 700).
# Requests free nearly all they allocate by reference counting; at 700, a collection ran every
# ~36 requests, ~3 % of relay's CPU, and promoted enough for a full collection every few
# seconds (docs/performance.md, session 8).
YOUNG_COLLECTION_THRESHOLD = 50_000
_TIMEOUT_BODY = (
    b'{"type":"about:blank","title":"Request Timeout","status":408,'
    b'"detail":"the request did not arrive whole in time","errors":[]}'
)
_REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/problem+json\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(_TIMEOUT_BODY), _TIMEOUT_BODY)
)
_TOO_MANY_CONNECTIONS = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n"
    b"Connection: close\r\n\r\n"
)


class GuardedProtocol(RequestHandler):
    """aiohttp's request handler, timing each request from its first byte."""

    def __init__(self, manager: GuardedServer, **kwargs: object) -> None:
        super().__init__(manager, **kwargs)  # type: ignore[arg-type]
        self.request_timeout = manager.limits.request_timeout_seconds
        self.request_deadline: float | None = None  # loop time the request must be in by
        self._deadline_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        manager: GuardedServer = self._manager  # type: ignore[assignment]
        if manager.full():  # refused before aiohttp starts anything for the connection
            assert isinstance(transport, asyncio.Transport)
            transport.write(_TOO_MANY_CONNECTIONS)
            transport.close()
            manager.count_refusal()
            return
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.request_deadline is None and data:
            self.request_deadline = self._loop.time() + self.request_timeout
            self._deadline_timer = self._loop.call_at(self.request_deadline, self._deadline)
        super().data_received(data)

    def request_answered(self) -> None:
        """The handler is done: the next request on this connection gets its own time."""
        self.request_deadline = None
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
            self._deadline_timer = None

    def close_if_idle(self) -> None:
        """Close now unless a request is being handled (aiohttp's own close() would drop the
        rest of that request's body)."""
        if self._current_request is None:
            self.close()

    def _deadline(self) -> None:
        self._deadline_timer = None
        # With a handler running, it reads the body against the same deadline and answers
        # 408 itself; without one, the headers never came whole.
        if self._current_request is None and self.transport is not None:
            self.transport.write(_REQUEST_TIMEOUT)
            self.force_close()


class GuardedServer(web.Server):
    """aiohttp's server, making `GuardedProtocol`s; it knows when the connection cap is hit."""

    limits: ServerSettings
    _refused: int
    _refusals_logged_at: float

    def __call__(self) -> RequestHandler:
        return GuardedProtocol(self, loop=self._loop, **self._kwargs)

    def full(self) -> bool:
        return len(self.connections) >= self.limits.max_connections

    def count_refusal(self) -> None:
        self._refused += 1
        now = time.monotonic()
        if now - self._refusals_logged_at >= REFUSAL_LOG_INTERVAL_S:
            log.warning(
                "refused %d connections: %d open is server.max_connections",
                self._refused,
                self.limits.max_connections,
            )
            self._refused, self._refusals_logged_at = 0, now


class GuardedRunner(web.AppRunner):
    def __init__(self, app: web.Application, limits: ServerSettings, **kwargs: object) -> None:
        super().__init__(app, **kwargs)  # type: ignore[arg-type]
        self.limits = limits

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # aiohttp builds its Server inside Application._make_handler; adopt that instance
        # (same state, same constructor arguments) as the guarded kind.
        server.__class__ = GuardedServer
        guarded: GuardedServer = server  # type: ignore[assignment]
        guarded.limits = self.limits
        guarded._refused, guarded._refusals_logged_at = 0, float("-inf")
        return guarded


def serve(settings: Settings) -> None:
    """Run until SIGTERM/SIGINT, then stop gracefully; start-up failures are `CannotStart`."""
    _raise_open_files_limit()
    asyncio.run(_serve(settings))


def _settle_garbage_collector() -> None:
    """Keep the cyclic garbage collector off the request path's tail.

    Once started, relay's ~80,000 long-lived objects (modules, routes, settings, connections)
    never become garbage, yet every full collection walked them all: 54 ms each under load,
    which set the 64-client p99 (75 → 45 ms once frozen). Frozen, a full collection walks
    only what requests left behind.
    """
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, middle, old)


async def _serve(settings: Settings) -> None:
    limits = settings.server
    app = create_app(settings)
    grace = _grace(limits.shutdown_timeout_seconds)
    runner = GuardedRunner(
        app,
        limits,
        access_log=None,
        keepalive_timeout=limits.idle_timeout_seconds,
        shutdown_timeout=grace,
        handle_signals=False,
    )
    try:
        await runner.setup()
        site = web.TCPSite(runner, limits.host, limits.port, ssl_context=ssl_context(settings))
        try:
            await site.start()
        except OSError as exc:
            reason = str(exc).rpartition(": ")[2]  # "address already in use", …
            raise CannotStart(f"cannot listen on {limits.listen}: {reason}") from None
        log.info("serving on %s://%s", "https" if limits.tls_cert else "http", limits.listen)
        _settle_garbage_collector()
        await _until_signalled()
        await _stop_gracefully(app, runner, site, limits.shutdown_timeout_seconds, grace)
    finally:
        await runner.cleanup()


async def _until_signalled() -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            log.warning("second %s: exiting now", signal.Signals(signum).name)
            os._exit(1)
        log.info("%s: stopping (a second signal exits at once)", signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    await stop.wait()


async def _stop_gracefully(
    app: web.Application, runner: GuardedRunner, site: web.TCPSite, allowed: float, grace: float
) -> None:
    lifecycle = app[LIFECYCLE]
    lifecycle.ready = False  # /readyz: 503 from now on
    await site.stop()  # no new connections
    assert runner.server is not None
    lifecycle.stopping = True  # answers from now on close their connection
    for connection in runner.server.connections:
        if isinstance(connection, GuardedProtocol):
            connection.close_if_idle()
    if lifecycle.in_flight and not await _drained(lifecycle.drained, allowed - 2 * grace):
        lifecycle.stop_reading.set()  # uploads still arriving: 503, connection closed
        await _drained(lifecycle.drained, grace)
    log.info("stopped accepting; %d requests still in flight", lifecycle.in_flight)


async def _drained(drained: asyncio.Event, seconds: float) -> bool:
    try:
        await asyncio.wait_for(drained.wait(), max(seconds, 0))
    except TimeoutError:
        return False
    return True


def _grace(timeout: float) -> float:
    """What the last steps of a stop may take: answering uploads 503, cancelling the rest."""
    return min(1.0, timeout / 10)


def _raise_open_files_limit() -> None:
    """Every connection is a file descriptor: allow as many as the hard limit permits."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
