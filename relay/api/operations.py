"""Unauthenticated operations routes: liveness, readiness, Prometheus, the OpenAPI document."""

from __future__ import annotations

from aiohttp import web

from relay.api.responses import json_response
from relay.api.routing import Route
from relay.api.state import LIFECYCLE, METRICS, OPENAPI, STORE
from relay.models.common import Health, Readiness
from relay.observability import CONTENT_TYPE_LATEST


async def healthz(request: web.Request) -> web.Response:
    """200 while the process runs."""
    return json_response(Health("ok"))


async def readyz(request: web.Request) -> web.Response:
    """200 when storage and workers are up, else 503 with the reason."""
    lifecycle = request.app[LIFECYCLE]
    problem = await request.app[STORE].check()
    if problem is None and not lifecycle.ready:
        problem = "starting or shutting down"
    body = Readiness(
        status="ready" if problem is None else "unavailable",
        storage="ok" if problem is None else "unavailable",
        forwarding=lifecycle.forwarding,
        # ready or not, a degraded forwarder says why (it never makes relay unready)
        reason=problem or lifecycle.forwarding_problem,
        backpressure=lifecycle.backpressure,
    )
    response = json_response(body, status=200 if problem is None else 503)
    if problem is not None:
        response.headers["Retry-After"] = "5"
    return response


async def prometheus(request: web.Request) -> web.Response:
    """Prometheus text exposition."""
    response = web.Response(body=request.app[METRICS].exposition())
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


async def openapi(request: web.Request) -> web.Response:
    """This document."""
    return web.Response(body=request.app[OPENAPI], content_type="application/json")


ROUTES = [
    Route("GET", "/healthz", healthz, "Liveness", role=None, responses={200: Health}),
    Route(
        "GET",
        "/readyz",
        readyz,
        "Readiness",
        role=None,
        responses={200: Readiness, 503: Readiness},
    ),
    Route(
        "GET",
        "/metrics",
        prometheus,
        "Prometheus metrics",
        role=None,
        responses={200: bytes},
        content_types=("text/plain",),
    ),
    Route(
        "GET",
        "/openapi.json",
        openapi,
        "OpenAPI 3.1 document of this API",
        role=None,
        responses={200: bytes},
    ),
]
