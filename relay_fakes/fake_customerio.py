"""A local stand-in for Customer.io's Track and Pipelines APIs, for tests and QA.

Why: relay's forwarder must be tested against something that answers like Customer.io -- auth,
size limits, request shapes from Customer.io's own OpenAPI documents, 207 partial failures,
throttling -- without touching Customer.io. Tests start it on ``127.0.0.1`` port 0, point the
forwarder at :attr:`FakeCustomerIO.url`, script failures, and assert on what was *accepted*::

    async with FakeCustomerIO(site_id="S", api_key="K") as fake:
        fake.script(Reply(status=429, retry_after=1), path="/api/v2/batch")
        ...  # run the forwarder against fake.url
        assert fake.operations() == [...]
        assert not fake.invalid

Deliberate differences from Customer.io, all towards making client bugs loud:

- Pipelines always behaves as in strict mode (``X-Strict-Mode: 1``): invalid or oversize calls
  get 400 instead of a silent 200-and-drop.
- A v2 batch with an invalid operation is rejected whole (400), not answered 207; script a 207
  to test partial failures.
- ``GET /api/v1/accounts/region`` names the fake's own URL, so clients that follow it stay here.
- If a client gives up during a scripted ``delay``, the request still completes here and its
  operations count as accepted -- as with a real server, so retry-duplicates show up.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from relay_fakes.cio_spec import validator_for
from relay_fakes.fake_routes import (
    MAX_BATCH_BYTES,
    MAX_OPERATION_BYTES,
    ROUTES,
    Route,
    error_body,
    operations_of,
    partial_failure_body,
    unauthorized_body,
)
from relay_fakes.local_server import LocalAiohttpServer
from relay_fakes.spec_errors import Issue

log = logging.getLogger(__name__)

CONTROL_PREFIX = "/_fake"


@dataclass(frozen=True)
class Reply:
    """A scripted answer for one request (see :meth:`FakeCustomerIO.script`).

    ``status`` other than 200 and 207 means nothing in the request is accepted. ``retry_after``
    (seconds) becomes the ``Retry-After`` header; fractions are sent as written (``0.2``), which
    real servers never do but keeps tests fast. ``delay`` sleeps before answering.
    ``failed_indexes`` (with 207) are the operations reported failed; the others are accepted.
    ``body`` replaces the default JSON answer.
    """

    status: int = 200
    retry_after: float | None = None
    delay: float = 0.0
    failed_indexes: tuple[int, ...] = ()
    body: Any = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> tuple[Reply, str | None]:
        """A reply and its optional ``path`` filter from the control endpoint's JSON."""
        known = {"status", "retry_after", "delay", "failed_indexes", "body", "path"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown reply fields: {sorted(unknown)}")
        reply = cls(
            status=int(data.get("status", 200)),
            retry_after=None if data.get("retry_after") is None else float(data["retry_after"]),
            delay=float(data.get("delay", 0.0)),
            failed_indexes=tuple(int(i) for i in data.get("failed_indexes", ())),
            body=data.get("body"),
        )
        return reply, data.get("path")


@dataclass
class RecordedRequest:
    """One request as received, and what the fake answered.

    ``received_at`` is wall-clock (``time.time()``) for humans; ``monotonic`` is for rate
    checks. ``path`` is percent-decoded, ``raw_path`` as sent. ``accepted`` holds the operations
    that count as delivered (see :meth:`FakeCustomerIO.operations`).
    """

    method: str
    path: str
    headers: CIMultiDictProxy[str]
    body: Any
    received_at: float
    monotonic: float
    raw_path: str = ""
    route: str | None = None
    status: int | None = None
    operation_count: int = 0
    accepted: list[Any] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "raw_path": self.raw_path,
            "route": self.route,
            "headers": dict(self.headers),
            "body": self.body,
            "received_at": self.received_at,
            "status": self.status,
            "operation_count": self.operation_count,
            "accepted": len(self.accepted),
            "errors": self.errors,
        }


@dataclass
class _Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class FakeCustomerIO(LocalAiohttpServer):
    """Customer.io Track (v1, v2) and Pipelines endpoints on a local port; see the module doc.

    Credentials left ``None`` are not checked. ``validate=False`` skips schema validation (it
    costs ~0.4 ms per operation) for benchmarks; size limits and auth still apply.

    ``requests`` records every request to a Customer.io path or an unknown one (control
    endpoints under ``/_fake`` are not recorded); ``invalid`` lists ``(path, errors)`` of every
    request rejected as malformed, oversize or to an unknown path -- assert it is empty.
    """

    def __init__(
        self,
        *,
        site_id: str | None = None,
        api_key: str | None = None,
        cdp_api_key: str | None = None,
        validate: bool = True,
        region: str = "us",
        environment_id: int = 1,
    ) -> None:
        self.site_id = site_id
        self.api_key = api_key
        self.cdp_api_key = cdp_api_key
        self.validate = validate
        self.region = region
        self.environment_id = environment_id
        self.requests: list[RecordedRequest] = []
        self.invalid: list[tuple[str, list[str]]] = []
        self._script: deque[tuple[str | None, Reply]] = deque()

    # -- lifecycle ------------------------------------------------------------------------

    def app(self) -> web.Application:
        """A fresh aiohttp application serving this fake's state."""
        # Above the 500 KB batch limit, so oversize batches reach us and get Customer.io's 400.
        app = web.Application(client_max_size=8 * 1024 * 1024)
        for route in ROUTES:
            app.router.add_route(route.method, route.template, self._handler(route))
        app.router.add_get(f"{CONTROL_PREFIX}/requests", self._get_requests)
        app.router.add_get(f"{CONTROL_PREFIX}/operations", self._get_operations)
        app.router.add_get(f"{CONTROL_PREFIX}/invalid", self._get_invalid)
        app.router.add_post(f"{CONTROL_PREFIX}/script", self._post_script)
        app.router.add_post(f"{CONTROL_PREFIX}/reset", self._post_reset)
        app.router.add_route("*", "/{tail:.*}", self._unknown)
        return app

    # -- scripting and inspection ---------------------------------------------------------

    def script(self, *replies: Reply, path: str | None = None) -> None:
        """Queue answers for the next matching requests, first in first out.

        ``path`` matches a request path (``/api/v1/customers/42``) or a route template
        (``/api/v1/customers/{identifier}``); ``None`` matches every Customer.io endpoint.
        Requests rejected for auth or validation do not consume a reply.
        """
        self._script.extend((path, reply) for reply in replies)

    def fail_next(self, n: int = 1, status: int = 503, *, path: str | None = None) -> None:
        """Answer the next ``n`` matching requests with ``status`` (nothing accepted)."""
        self.script(*(Reply(status=status) for _ in range(n)), path=path)

    def clear_script(self) -> None:
        """Forget queued replies (answer normally from now on); what was recorded stays."""
        self._script.clear()

    def reset(self) -> None:
        """Forget recorded requests, invalid bodies and queued replies."""
        self.requests.clear()
        self.invalid.clear()
        self._script.clear()

    def operations(self) -> list[Any]:
        """Every accepted operation, in request-arrival order (see :func:`operations_of`)."""
        return [op for request in self.requests for op in request.accepted]

    def timestamps(self, path: str | None = None) -> list[float]:
        """Monotonic arrival times of Customer.io requests (optionally for one path/template)."""
        return [
            r.monotonic
            for r in self.requests
            if r.route is not None and (path is None or path in (r.path, r.route))
        ]

    def max_rate(self, window: float = 1.0, path: str | None = None) -> int:
        """The most requests that arrived within any ``window`` seconds (a sliding window)."""
        times = sorted(self.timestamps(path))
        best, start = 0, 0
        for end, at in enumerate(times):
            while at - times[start] >= window:
                start += 1
            best = max(best, end - start + 1)
        return best

    # -- request handling -----------------------------------------------------------------

    def _handler(self, route: Route) -> Any:
        async def handle(request: web.Request) -> web.Response:
            return await self._handle(route, request)

        return handle

    async def _handle(self, route: Route, request: web.Request) -> web.Response:
        raw = await request.read()
        record = self._record(request, route.template)
        answer = await self._answer(route, request, raw, record)
        record.status = answer.status
        self._log(record)
        return _json_response(answer)

    def _record(self, request: web.Request, route: str | None) -> RecordedRequest:
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            raw_path=request.raw_path,
            headers=CIMultiDictProxy(CIMultiDict(request.headers)),
            body=None,
            received_at=time.time(),
            monotonic=time.monotonic(),
            route=route,
        )
        self.requests.append(record)
        return record

    async def _answer(
        self, route: Route, request: web.Request, raw: bytes, record: RecordedRequest
    ) -> _Answer:
        if not self._authorized(route, request):
            record.errors = ["unauthorized"]
            return _Answer(401, unauthorized_body())
        body, issues = _parse(raw)
        record.body = body
        operations = operations_of(route, request.path, body)
        record.operation_count = len(operations)
        if not issues:
            issues = _size_issues(route, raw, operations)
        if not issues and self.validate:
            issues = validator_for(route.method, route.template).issues(body)
        if issues:
            return self._reject(route, record, issues)
        reply = self._next_reply(request.path, route.template)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        return self._scripted(route, record, reply, operations)

    def _reject(self, route: Route, record: RecordedRequest, issues: list[Issue]) -> _Answer:
        record.errors = [str(issue) for issue in issues]
        self.invalid.append((record.path, record.errors))
        return _Answer(400, error_body(route.family, issues))

    def _scripted(
        self, route: Route, record: RecordedRequest, reply: Reply, operations: list[Any]
    ) -> _Answer:
        headers = {}
        if reply.retry_after is not None:
            headers["Retry-After"] = _seconds(reply.retry_after)
        if reply.status == 200:
            record.accepted = operations
            body = reply.body if reply.body is not None else self._success_body(route)
        elif reply.status == 207:
            failed = set(reply.failed_indexes)
            record.accepted = [op for i, op in enumerate(operations) if i not in failed]
            body = reply.body if reply.body is not None else partial_failure_body(sorted(failed))
        else:
            record.errors = [f"scripted {reply.status}"]
            body = reply.body
            if body is None:
                body = error_body(route.family, [("", f"scripted {reply.status}")], "scripted")
        return _Answer(reply.status, body, headers)

    def _success_body(self, route: Route) -> Any:
        if route.template == "/api/v1/accounts/region":
            return {"url": self.url, "region": self.region, "environment_id": self.environment_id}
        return {}

    def _next_reply(self, path: str, template: str) -> Reply:
        for entry in self._script:
            wanted, reply = entry
            if wanted is None or wanted in (path, template):
                self._script.remove(entry)
                return reply
        return Reply()

    def _authorized(self, route: Route, request: web.Request) -> bool:
        if route.auth == "track" and (self.site_id is not None or self.api_key is not None):
            return _basic_credentials(request) == (self.site_id or "", self.api_key or "")
        if route.auth == "cdp" and self.cdp_api_key is not None:
            return _basic_credentials(request) == (self.cdp_api_key, "")
        return True

    async def _unknown(self, request: web.Request) -> web.Response:
        """Anything else is a client bug: record it, count it invalid, answer 404."""
        await request.read()
        record = self._record(request, None)
        record.errors = [f"no such Customer.io endpoint: {request.method} {request.path}"]
        self.invalid.append((record.path, record.errors))
        answer = _Answer(404, {"meta": {"errors": record.errors}})
        record.status = answer.status
        self._log(record)
        return _json_response(answer)

    def _log(self, record: RecordedRequest) -> None:
        errors = f" errors={record.errors}" if record.errors else ""
        log.info(
            "%s %s -> %s ops=%d accepted=%d%s",
            record.method,
            record.path,
            record.status,
            record.operation_count,
            len(record.accepted),
            errors,
        )

    # -- control endpoints ----------------------------------------------------------------

    async def _get_requests(self, request: web.Request) -> web.Response:
        return web.json_response([r.as_json() for r in self.requests])

    async def _get_operations(self, request: web.Request) -> web.Response:
        return web.json_response(self.operations())

    async def _get_invalid(self, request: web.Request) -> web.Response:
        return web.json_response([{"path": p, "errors": e} for p, e in self.invalid])

    async def _post_script(self, request: web.Request) -> web.Response:
        try:
            items = await request.json()
            if not isinstance(items, list):
                raise ValueError("expected a JSON list of replies")
            parsed = [Reply.from_json(item) for item in items]
        except (ValueError, TypeError, AttributeError) as error:
            return web.json_response({"error": str(error)}, status=400)
        for reply, path in parsed:
            self.script(reply, path=path)
        return web.json_response({"queued": len(parsed)})

    async def _post_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({})


def _parse(raw: bytes) -> tuple[Any, list[Issue]]:
    """The JSON body (None when empty) and a parse problem, if any."""
    if not raw.strip():
        return None, []
    try:
        return json.loads(raw), []
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return None, [Issue("", f"body is not valid JSON: {error}")]


def _size_issues(route: Route, raw: bytes, operations: list[Any]) -> list[Issue]:
    """Customer.io's documented limits: 500 KB per batch request, 32 KB per operation/call."""
    if not route.size_limited:
        return []
    if route.is_batch and len(raw) > MAX_BATCH_BYTES:
        return [Issue("batch", f"request is {len(raw)} bytes, over the {MAX_BATCH_BYTES} limit")]
    issues = []
    for index, operation in enumerate(operations):
        size = len(json.dumps(operation, separators=(",", ":"), ensure_ascii=False).encode())
        if size > MAX_OPERATION_BYTES:
            where = f"batch.{index}" if route.is_batch else ""
            issues.append(
                Issue(where, f"operation is {size} bytes, over the {MAX_OPERATION_BYTES} limit")
            )
    return issues


def _basic_credentials(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def _seconds(value: float) -> str:
    """``2`` for 2 or 2.0 (the standard form), ``0.25`` for fractions (test-only)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _json_response(answer: _Answer) -> web.Response:
    return web.json_response(answer.body, status=answer.status, headers=answer.headers)
