"""/v1/health/data: the data-health report of what arrived recently (admin)."""

from __future__ import annotations

from aiohttp import web

from relay import timeutil
from relay.api.responses import json_response
from relay.api.routing import APP_PARAM, Param, Route, caller
from relay.api.state import SETTINGS, STORE
from relay.errors import ValidationFailed
from relay.health import since_from
from relay.models.common import Problem
from relay.models.health import DataHealth


def since_of(request: web.Request) -> float:
    try:
        return since_from(request.query.get("since"), timeutil.now())
    except ValueError as exc:
        raise ValidationFailed.at("since", str(exc)) from None


async def data_health(request: web.Request) -> web.Response:
    """Counts, plan violations, type drift, lateness and duplicates of the facts received."""
    since = since_of(request)
    plan = request.app[SETTINGS].tracking_plan.plan
    return json_response(await request.app[STORE].data_health(caller(request).app_id, since, plan))


ROUTES = [
    Route(
        "GET",
        "/v1/health/data",
        data_health,
        "The data-health report",
        role="admin",
        responses={200: DataHealth, 422: Problem},
        params=(
            Param(
                "since",
                "query",
                "Facts received since then: RFC 3339 or unix seconds (default 24 hours ago).",
                schema={"type": "string"},
                required=False,
            ),
            APP_PARAM,
        ),
    ),
]
