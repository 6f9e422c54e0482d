"""A minimal HTTP/2 server (asyncio + ``h2``) for fakes of HTTP/2-only services such as APNs.

Why not aiohttp: aiohttp's server speaks HTTP/1.1 only, and aioapns speaks nothing but HTTP/2
with prior knowledge (no ALPN, no ``Upgrade: h2c``). This module does the HTTP/2 part and
nothing else: one task per connection reads frames into ``h2``'s state machine, each finished
request stream is answered by its own task (so slow answers don't block other streams), and
response bodies honour the peer's flow-control windows. The service logic is an async
``handler(H2Request) -> H2Response``.

It serves plain TCP (h2c, prior knowledge) or TLS when given an ``ssl.SSLContext``. It is a test
tool: no request size limits beyond the HTTP/2 defaults, no server push, no priorities.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import cast

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RemoteSettingsChanged,
    RequestReceived,
    StreamEnded,
    StreamReset,
    WindowUpdated,
)
from h2.exceptions import H2Error, ProtocolError
from h2.settings import SettingCodes, Settings

log = logging.getLogger(__name__)

READ_SIZE = 65536


@dataclass(frozen=True)
class H2Request:
    """One complete request stream. Header names are lower case (HTTP/2 requires it)."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    stream_id: int
    connection_id: int

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (lower case), or None."""
        return next((value for key, value in self.headers if key == name), None)

    def header_count(self, name: str) -> int:
        return sum(1 for key, _ in self.headers if key == name)


@dataclass(frozen=True)
class H2Response:
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


Handler = Callable[[H2Request], Awaitable[H2Response]]


@dataclass
class _Stream:
    headers: tuple[tuple[str, str], ...]
    body: bytearray = field(default_factory=bytearray)
    task: asyncio.Task[None] | None = None


class H2Server:
    """Serve ``handler`` over HTTP/2 on a local port; see the module doc.

    ``max_concurrent_streams`` is announced in the server's first SETTINGS frame (APNs announces
    1000 too); a client that opens more streams than that gets a connection error, as from any
    conforming server.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_concurrent_streams: int = 1000,
    ) -> None:
        self.handler = handler
        self.ssl_context = ssl_context
        self.max_concurrent_streams = max_concurrent_streams
        self.connections_opened = 0
        self._connections: set[_Connection] = set()
        self._server: asyncio.Server | None = None
        self._ids = itertools.count(1)

    @property
    def open_connections(self) -> int:
        return len(self._connections)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Listen on ``host:port`` (0 = any free port); returns the bound ``(host, port)``."""
        if self._server is not None:
            raise RuntimeError("already started")
        self._server = await asyncio.start_server(self._serve, host, port, ssl=self.ssl_context)
        bound_host, bound_port = self._server.sockets[0].getsockname()[:2]
        return bound_host, bound_port

    async def stop(self, grace: float = 1.0) -> None:
        """Stop listening; answer requests in flight (up to ``grace`` seconds); GOAWAY; close.

        Answers still pending after ``grace`` are cancelled.
        """
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close()
        await asyncio.gather(*(c.shutdown(grace) for c in list(self._connections)))
        await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = _Connection(self, next(self._ids), reader, writer)
        self.connections_opened += 1
        self._connections.add(connection)
        try:
            await connection.run()
        finally:
            self._connections.discard(connection)


class _Connection:
    """One client connection: the frame reader loop plus the tasks answering its streams."""

    def __init__(
        self,
        server: H2Server,
        connection_id: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.server = server
        self.id = connection_id
        self.reader = reader
        self.writer = writer
        config = H2Configuration(client_side=False, header_encoding="utf-8")
        self.h2 = H2Connection(config=config)
        self.h2.local_settings = Settings(
            client=False,
            initial_values={
                SettingCodes.MAX_CONCURRENT_STREAMS: server.max_concurrent_streams,
                SettingCodes.MAX_HEADER_LIST_SIZE: H2Connection.DEFAULT_MAX_HEADER_LIST_SIZE,
            },
        )
        self.streams: dict[int, _Stream] = {}
        self.closed = False
        # Set whenever the peer may have granted more send window (or the connection closed).
        self.window_changed = asyncio.Event()
        self.reader_task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        self.reader_task = asyncio.current_task()
        self.h2.initiate_connection()
        try:
            await self.flush()
            while not self.closed:
                data = await self.reader.read(READ_SIZE)
                if not data:
                    break
                try:
                    events = self.h2.receive_data(data)
                except ProtocolError as error:
                    # h2 has queued a GOAWAY naming the error; send it and hang up.
                    log.warning("connection %d: protocol error: %s", self.id, error)
                    await self.flush()
                    break
                for event in events:
                    self._on_event(event)
                await self.flush()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            await self._close()

    def _on_event(self, event: object) -> None:
        if isinstance(event, RequestReceived):
            # h2 types headers as bytes; header_encoding="utf-8" (see __init__) makes them str.
            headers = cast("list[tuple[str, str]]", event.headers)
            self.streams[event.stream_id] = _Stream(tuple(headers))
        elif isinstance(event, DataReceived):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.body += event.data
            # Reopen the windows at once: request bodies are small and we read them whole.
            self.h2.acknowledge_received_data(
                event.flow_controlled_length,
                event.stream_id,
            )
        elif isinstance(event, StreamEnded):
            stream = self.streams.get(event.stream_id)
            if stream is not None and stream.task is None:
                stream.task = asyncio.create_task(self._answer(event.stream_id, stream))
        elif isinstance(event, StreamReset):
            stream = self.streams.pop(event.stream_id, None)
            if stream is not None and stream.task is not None:
                stream.task.cancel()
        elif isinstance(event, WindowUpdated | RemoteSettingsChanged):
            self.window_changed.set()
        elif isinstance(event, ConnectionTerminated):
            self.closed = True

    async def _answer(self, stream_id: int, stream: _Stream) -> None:
        pseudo = dict(stream.headers)
        request = H2Request(
            method=pseudo.get(":method", ""),
            path=pseudo.get(":path", ""),
            headers=tuple((k, v) for k, v in stream.headers if not k.startswith(":")),
            body=bytes(stream.body),
            stream_id=stream_id,
            connection_id=self.id,
        )
        try:
            response = await self.server.handler(request)
        except Exception:
            log.exception("connection %d stream %d: handler failed", self.id, stream_id)
            response = H2Response(500)
        try:
            await self._respond(stream_id, response)
        except (H2Error, ConnectionError):
            pass  # the client reset the stream or went away; nothing left to answer
        finally:
            self.streams.pop(stream_id, None)

    async def _respond(self, stream_id: int, response: H2Response) -> None:
        if self.closed or stream_id not in self.streams:
            return
        headers = [(":status", str(response.status)), *response.headers]
        self.h2.send_headers(stream_id, headers, end_stream=not response.body)
        await self.flush()
        body = response.body
        while body:
            # Never split a body that fits in one frame: aioapns parses each DATA frame as a
            # whole JSON document, and real APNs error bodies always arrive in one frame.
            wanted = min(len(body), self.h2.max_outbound_frame_size)
            window = self.h2.local_flow_control_window(stream_id)
            if window < wanted:
                if self.closed:
                    return
                self.window_changed.clear()
                await self.window_changed.wait()
                continue
            chunk, body = body[:wanted], body[wanted:]
            self.h2.send_data(stream_id, chunk, end_stream=not body)
            await self.flush()

    async def flush(self) -> None:
        data = self.h2.data_to_send()
        if data and not self.writer.is_closing():
            self.writer.write(data)
            await self.writer.drain()

    async def shutdown(self, grace: float) -> None:
        """Finish answers in flight (up to ``grace`` seconds), then GOAWAY and close.

        Answers go out before the GOAWAY because aioapns treats GOAWAY as fatal: it closes the
        connection at once, fails every open stream and re-sends those on a new connection.
        """
        tasks = [s.task for s in self.streams.values() if s.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
        if not self.closed:
            with contextlib.suppress(H2Error, ConnectionError):
                self.h2.close_connection(error_code=ErrorCodes.NO_ERROR)
                await self.flush()
        self.closed = True
        self.window_changed.set()
        self.writer.close()  # the reader loop sees EOF and cleans up
        if self.reader_task is not None and self.reader_task is not asyncio.current_task():
            await asyncio.wait([self.reader_task], timeout=grace)

    async def _close(self) -> None:
        self.closed = True
        self.window_changed.set()
        tasks = [s.task for s in self.streams.values() if s.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self.streams.clear()
        self.writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError, OSError):
            await self.writer.wait_closed()
