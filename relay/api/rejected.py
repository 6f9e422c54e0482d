"""/v1/rejected: the items a Pipelines batch answered 200 for but relay refused (admin)."""

from __future__ import annotations

from aiohttp import web

from relay.api.responses import json_response
from relay.api.routing import APP_PARAM, Param, Route, caller
from relay.api.state import STORE
from relay.errors import ValidationFailed
from relay.models.common import Problem
from relay.models.rejected import RejectedItem

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def limit_of(request: web.Request) -> int:
    raw = request.query.get("limit", str(DEFAULT_LIMIT))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise ValidationFailed.at("limit", f"must be a whole number from 1 to {MAX_LIMIT}")
    return int(raw)


async def rejected_items(request: web.Request) -> web.Response:
    """The newest refused items first, with where they came from and why (tokens masked)."""
    limit = limit_of(request)
    return json_response(await request.app[STORE].rejected_items(caller(request).app_id, limit))


ROUTES = [
    Route(
        "GET",
        "/v1/rejected",
        rejected_items,
        "The rejected-items log",
        role="admin",
        responses={200: list[RejectedItem], 422: Problem},
        params=(
            Param(
                "limit",
                "query",
                f"How many entries, newest first (1-{MAX_LIMIT}, default {DEFAULT_LIMIT}).",
                schema={"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                required=False,
            ),
            APP_PARAM,
        ),
    ),
]
