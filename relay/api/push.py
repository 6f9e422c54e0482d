"""/v1/test-pushes and /v1/deliveries: QA sends a push and follows it end to end (admin)."""

from __future__ import annotations

from aiohttp import web

from relay.api.bodies import read_json
from relay.api.limits import check_id, raise_if_any
from relay.api.responses import json_response
from relay.api.routing import APP_PARAM, Param, Route, caller
from relay.api.state import PUSH, STORE
from relay.errors import FieldError
from relay.models.common import Problem
from relay.models.push import DeliveryTrace, TestPushIn, TestPushOut


async def send_test_push(request: web.Request) -> web.Response:
    """Send (or with dry_run, validate) a push to one token or every reachable device of a
    customer. Provider refusals are results, not HTTP errors."""
    body = await read_json(request, TestPushIn)
    errors: list[FieldError] = []
    check_id(errors, "customer_id", body.customer_id)
    # ``data`` is not properties: only the provider's 4 KB payload limit applies (413).
    raise_if_any(errors)
    return json_response(await request.app[PUSH].test_push(caller(request).app_id, body))


async def get_delivery(request: web.Request) -> web.Response:
    """The delivery's funnel and timeline: sent → delivered → opened → link → conversion."""
    delivery_id = request.match_info["delivery_id"]
    errors: list[FieldError] = []
    check_id(errors, "delivery_id", delivery_id)
    raise_if_any(errors)
    trace = await request.app[STORE].delivery_trace(caller(request).app_id, delivery_id)
    return json_response(trace)


ROUTES = [
    Route(
        "POST",
        "/v1/test-pushes",
        send_test_push,
        "Send a test push",
        role="admin",
        body=TestPushIn,
        responses={200: TestPushOut, 404: Problem, 413: Problem, 422: Problem},
        params=(APP_PARAM,),
    ),
    Route(
        "GET",
        "/v1/deliveries/{delivery_id}",
        get_delivery,
        "Trace a delivery",
        role="admin",
        responses={200: DeliveryTrace, 404: Problem},
        params=(Param("delivery_id", "path", "CIO-Delivery-ID or relay delivery id."), APP_PARAM),
    ),
]
