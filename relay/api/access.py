"""One access line per request (method, path with tokens masked, status, duration, app; never
a key, a token or a query string), and the count of requests in flight a graceful stop waits
for."""

from __future__ import annotations

import logging
import time

from aiohttp import web

from relay.api.state import CALLER, CLOSE_AFTER, LIFECYCLE
from relay.redact import mask_token

log = logging.getLogger("relay.access")

TOKEN_PARAMS = ("token", "device_id")  # path parameters that carry a device token


@web.middleware
async def access_middleware(request: web.Request, handler):  # type: ignore[no-untyped-def]
    lifecycle = request.app[LIFECYCLE]
    lifecycle.request_started()
    started = time.perf_counter()
    status = 499  # the client went away before an answer
    try:
        response = await handler(request)
        status = response.status
        if request.get(CLOSE_AFTER) or lifecycle.stopping:
            response.force_close()
        return response
    finally:
        lifecycle.request_finished()
        answered = getattr(request.protocol, "request_answered", None)
        if answered is not None:
            answered()
        caller = request.get(CALLER)
        log.info(
            "%s %s %d %.1fms app=%s",
            request.method,
            masked_path(request),
            status,
            (time.perf_counter() - started) * 1000,
            caller.app_id if caller is not None else "-",
        )


def masked_path(request: web.Request) -> str:
    path = request.path
    for name in TOKEN_PARAMS:
        value = request.match_info.get(name)
        if value:
            path = path.replace(value, mask_token(value))
    return path
