"""Reading a request body within the limits of time: the request's own deadline (headers and
body within ``request_timeout_seconds`` of its first byte: 408) and a graceful stop (503)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from relay.api.state import CLOSE_AFTER, LIFECYCLE
from relay.errors import RequestTimeout, Unavailable


async def read_in_time(request: web.Request) -> bytes:
    """``request.read()``, unless its deadline passes (408) or relay stops first (503); either
    way the connection closes after the answer."""
    stop_reading = request.app[LIFECYCLE].stop_reading
    if stop_reading.is_set():
        raise _stopping(request)
    if request.content.is_eof():  # the whole body came with the headers: nothing to wait for
        return await request.read()
    deadline: float | None = getattr(request.protocol, "request_deadline", None)
    remaining = None if deadline is None else deadline - asyncio.get_running_loop().time()
    body = asyncio.ensure_future(request.read())
    stopped = asyncio.ensure_future(stop_reading.wait())
    try:
        done, _ = await asyncio.wait(
            {body, stopped}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        stopped.cancel()
    if body in done:
        return body.result()
    body.cancel()
    if stopped in done:
        raise _stopping(request)
    _close_after(request)
    raise RequestTimeout("the request did not arrive whole in time")


def _stopping(request: web.Request) -> Unavailable:
    _close_after(request)
    return Unavailable("relay is shutting down; retry", retry_after=1)


def _close_after(request: web.Request) -> None:
    """The rest of this body will never be read: the connection cannot carry another request."""
    request[CLOSE_AFTER] = True
