"""The one place errors become responses; writes refused while Customer.io is behind."""

from __future__ import annotations

import logging

import msgspec
from aiohttp import web

from relay.api.access import masked_path
from relay.api.state import LIFECYCLE
from relay.compat.wire import CompatError, shape_of
from relay.compat.wire import error_response as customerio_error_response
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
        if isinstance(error, Unavailable):  # storage fault, stopping, backpressure: expected
            log.warning("%s %s: %s", request.method, masked_path(request), error.detail)
        elif error.status >= 500:
            log.error("%s %s: %s", request.method, masked_path(request), error.detail)
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
    except ConnectionResetError:  # the client went away: nobody to answer, nothing wrong here
        log.debug("client disconnected during %s %s", request.method, masked_path(request))
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, masked_path(request))
        return error_response(RelayError("internal error; the server log has the details"))


BACKPRESSURE_RETRY_AFTER_SECONDS = 5
BACKPRESSURE_DETAIL = (
    "too many operations wait for Customer.io; keep this data and retry after Retry-After"
)
# Native writes that become operations for Customer.io. Admin routes that drain or inspect the
# outbox (/v1/outbox/replay, test pushes, segments) are not among them: they must work most
# precisely while Customer.io is behind.
_NATIVE_WRITES = ("/v1/devices/", "/v1/identify", "/v1/metrics", "/v1/events", "/v1/profiles/")


@web.middleware
async def backpressure_middleware(request: web.Request, handler):  # type: ignore[no-untyped-def]
    """While Customer.io is behind (``max_pending``), writes that add to its backlog answer 503.

    Checked here, before authentication, because one rule covers every write surface; each
    surface still answers in its own shape (problem+json natively, Customer.io's on compat).
    """
    if not request.app[LIFECYCLE].backpressure or not _feeds_outbox(request):
        return await handler(request)
    shape = shape_of(request.path)
    if shape is None:
        return error_response(Unavailable(BACKPRESSURE_DETAIL, BACKPRESSURE_RETRY_AFTER_SECONDS))
    return customerio_error_response(shape, CompatError(503, "unavailable", BACKPRESSURE_DETAIL))


def _feeds_outbox(request: web.Request) -> bool:
    if request.method in ("GET", "HEAD") or request.match_info.http_exception is not None:
        return False  # reads, and unknown routes (404/405 stay what they are)
    return request.path.startswith(_NATIVE_WRITES) or shape_of(request.path) is not None
