"""/v1/outbox: what is waiting for Customer.io, and replaying dead letters (admin)."""

from __future__ import annotations

from aiohttp import web

from relay.api.responses import json_response
from relay.api.routing import APP_PARAM, Route, caller
from relay.api.state import STORE
from relay.models.outbox import OutboxStatus, ReplayResult


async def outbox_status(request: web.Request) -> web.Response:
    """Pending and dead operations of this app, the oldest pending age, the last error."""
    return json_response(await request.app[STORE].outbox_status(caller(request).app_id))


async def replay_outbox(request: web.Request) -> web.Response:
    """Put this app's dead letters back in line (with a fresh give-up horizon)."""
    replayed = await request.app[STORE].replay_outbox(caller(request).app_id)
    return json_response(ReplayResult(replayed))


ROUTES = [
    Route(
        "GET",
        "/v1/outbox",
        outbox_status,
        "Outbox status",
        role="admin",
        responses={200: OutboxStatus},
        params=(APP_PARAM,),
    ),
    Route(
        "POST",
        "/v1/outbox/replay",
        replay_outbox,
        "Replay dead letters",
        role="admin",
        responses={200: ReplayResult},
        params=(APP_PARAM,),
    ),
]
