"""The one place errors become responses, and where every request is counted."""

from __future__ import annotations

import logging
import time

import msgspec
from aiohttp import web

from relay.api.state import METRICS
from relay.errors import FieldError, RelayError, Unavailable
from relay.models.common import FieldErrorDoc, Problem

log = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem_response(
    status: int, title: str, detail: str, errors: list[FieldError] | None = None
) -> web.Response:
    problem = Problem(
        title=title,
        status=status,
        detail=detail,
        errors=[FieldErrorDoc(e.path, e.message) for e in errors or ()],
    )
    return web.Response(
        status=status, body=msgspec.json.encode(problem), content_type=PROBLEM_CONTENT_TYPE
    )


def error_response(error: RelayError) -> web.Response:
    response = problem_response(error.status, error.title, error.detail, error.errors)
    if isinstance(error, Unavailable):
        response.headers["Retry-After"] = str(error.retry_after)
    return response


@web.middleware
async def errors_middleware(request: web.Request, handler):  # type: ignore[no-untyped-def]
    try:
        return await handler(request)
    except RelayError as error:
        if error.status >= 500:
            log.error("%s %s: %s", request.method, request.path, error.detail)
        return error_response(error)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        # aiohttp's own answers (unknown route, wrong method, body too large) in our shape
        response = problem_response(
            exc.status, exc.reason, f"{request.method} {request.path}: {exc.reason}"
        )
        if exc.status == 405 and "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(RelayError("internal error; the server log has the details"))


@web.middleware
async def metrics_middleware(request: web.Request, handler):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    response = await handler(request)
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    metrics = request.app[METRICS]
    metrics.requests.labels(route, request.method, str(response.status)).inc()
    metrics.request_seconds.labels(route).observe(time.perf_counter() - started)
    return response
