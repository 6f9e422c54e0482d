"""A local stand-in for Firebase Cloud Messaging's HTTP v1 send API.

Why: relay's push sender uses firebase-admin, whose exception classes depend on the exact
shape of Google's error bodies (``error.status`` and the ``FcmError`` detail's ``errorCode``).
Tests start this fake on ``127.0.0.1`` port 0, point a Firebase App at it with
:func:`relay.push.hooks.make_firebase_app`, script errors per registration token and
assert on what arrived::

    async with FakeFCM(project_id="demo", access_token="test-token") as fake:
        fake.answer(DEAD_TOKEN, "UNREGISTERED")
        app = make_firebase_app("t", project_id="demo", endpoint=fake.url, credential=...)
        batch = await messaging.send_each_async([...], app=app)
        assert fake.messages() == [...]
        assert not fake.invalid

Only ``POST /v1/projects/{project_id}/messages:send`` is served: firebase-admin 7 sends one
request per message (``send_each_async`` gathers them), and the legacy batch endpoint is gone.
``validate_only`` requests are checked and answered like sends but named
``projects/<p>/messages/fake_message_id`` (what FCM answers) and not counted as delivered.

Deliberate differences from FCM, towards making client bugs loud: the message is checked
against a small subset of FCM's rules (one target; ``data`` keys and values are strings, not
reserved; at most 4096 bytes of ``data`` plus ``notification`` text), and refusals are listed
in :attr:`invalid`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from relay_fakes.local_server import LocalAiohttpServer

log = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 4096
VALIDATE_ONLY_ID = "fake_message_id"
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
TARGETS = ("token", "fid", "topic", "condition")
MESSAGE_FIELDS = frozenset(
    {*TARGETS, "name", "data", "notification", "android", "webpush", "apns", "fcm_options"}
)
RESERVED_DATA_KEYS = frozenset({"from", "notification", "message_type"})


@dataclass(frozen=True)
class FCMError:
    """How FCM reports one ``errorCode``: HTTP status, google.rpc status, default message."""

    status: int
    rpc_status: str
    message: str


# FCM v1 ErrorCode reference; the messages are FCM's own where known.
ERRORS: dict[str, FCMError] = {
    "UNREGISTERED": FCMError(404, "NOT_FOUND", "Requested entity was not found."),
    "INVALID_ARGUMENT": FCMError(
        400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token"
    ),
    "SENDER_ID_MISMATCH": FCMError(403, "PERMISSION_DENIED", "SenderId mismatch"),
    "QUOTA_EXCEEDED": FCMError(
        429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Send requests'."
    ),
    "UNAVAILABLE": FCMError(503, "UNAVAILABLE", "The service is currently unavailable."),
    "INTERNAL": FCMError(500, "INTERNAL", "Internal error encountered."),
    "THIRD_PARTY_AUTH_ERROR": FCMError(
        401, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service"
    ),
    "APNS_AUTH_ERROR": FCMError(401, "UNAUTHENTICATED", "Auth error from APNS"),
}


@dataclass(frozen=True)
class FCMAnswer:
    """A scripted answer (see :meth:`FakeFCM.answer`); ``code`` "OK" means success."""

    code: str
    message: str | None = None
    field: str | None = None
    retry_after: int | None = None
    delay: float = 0.0


@dataclass
class FCMRequest:
    """One request as received and what the fake answered.

    ``target`` is the message's token/fid/topic/condition value. ``name`` is the message name
    answered (None on errors); ``error`` the FCM error code answered, if any.
    """

    method: str
    path: str
    project_id: str
    headers: CIMultiDictProxy[str]
    body: Any
    received_at: float
    monotonic: float
    message: dict[str, Any] | None = None
    target: str | None = None
    validate_only: bool = False
    status: int | None = None
    name: str | None = None
    error: str | None = None


class _Refusal(Exception):
    def __init__(self, status: int, rpc_status: str, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.rpc_status, self.message, self.field = status, rpc_status, message, field


class FakeFCM(LocalAiohttpServer):
    """FCM HTTP v1 ``messages:send`` on a local port; see the module doc.

    ``project_id`` None accepts any project, otherwise others get 403 PERMISSION_DENIED.
    ``access_token`` None accepts any ``Authorization: Bearer`` token, otherwise others get 401
    UNAUTHENTICATED (firebase-admin then refreshes its credential and retries twice).
    ``on_reply`` is called with each ``messages:send`` request once its answer is decided (its
    ``status`` set), e.g. to show pushes as they arrive.
    """

    def __init__(
        self,
        *,
        project_id: str | None = None,
        access_token: str | None = None,
        on_reply: Callable[[FCMRequest], None] | None = None,
    ) -> None:
        self.project_id = project_id
        self.access_token = access_token
        self.on_reply = on_reply
        self.requests: list[FCMRequest] = []
        self.invalid: list[tuple[str, str]] = []
        self._standing: dict[str | None, FCMAnswer] = {}
        self._queued: dict[str | None, deque[FCMAnswer]] = {}
        self._by_prefix: dict[str, FCMAnswer] = {}
        self._ids = itertools.count(1)

    # -- lifecycle ------------------------------------------------------------------------

    def app(self) -> web.Application:
        """A fresh aiohttp application serving this fake's state."""
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_post("/v1/projects/{project_id}/messages:send", self._send)
        app.router.add_route("*", "/{tail:.*}", self._unknown)
        return app

    # -- scripting and inspection ---------------------------------------------------------

    def answer(
        self,
        target: str | None,
        code: str,
        message: str | None = None,
        *,
        field: str | None = None,
        times: int | None = None,
        retry_after: int | None = None,
        delay: float = 0.0,
    ) -> None:
        """Script the answer for messages to ``target`` (a token or fid; None: all others).

        ``code`` is an FCM ``errorCode`` from :data:`ERRORS` or ``"OK"``. ``message`` replaces
        FCM's text (e.g. a payload complaint for ``INVALID_ARGUMENT``, whose default names the
        token); ``field`` adds a ``google.rpc.BadRequest`` field violation (default
        ``message.token`` for INVALID_ARGUMENT without a custom message). ``times=None``
        makes it the standing answer; ``times=N`` queues it for the next N requests, after
        which the standing answer or success applies. ``retry_after`` sets ``Retry-After``.
        """
        if code != "OK" and code not in ERRORS:
            raise ValueError(f"unknown FCM error code {code!r}; known: {sorted(ERRORS)}")
        scripted = FCMAnswer(code, message, field, retry_after, delay)
        if times is None:
            self._standing[target] = scripted
        elif times > 0:
            self._queued.setdefault(target, deque()).extend([scripted] * times)

    def answer_prefix(
        self,
        prefix: str,
        code: str,
        message: str | None = None,
        *,
        field: str | None = None,
        retry_after: int | None = None,
        delay: float = 0.0,
    ) -> None:
        """Script the standing answer for every target starting with ``prefix`` (the longest
        matching prefix wins). It applies after a target's own answers and before the answer
        for all targets, so whole families of tokens (QA's ``dead…`` tokens) need no
        enumeration. Arguments as for :meth:`answer`."""
        if not prefix:
            raise ValueError("prefix must not be empty; answer(None, ...) scripts every target")
        if code != "OK" and code not in ERRORS:
            raise ValueError(f"unknown FCM error code {code!r}; known: {sorted(ERRORS)}")
        self._by_prefix[prefix] = FCMAnswer(code, message, field, retry_after, delay)

    def reset(self) -> None:
        """Forget recorded requests, invalid requests and scripted answers."""
        self.requests.clear()
        self.invalid.clear()
        self._standing.clear()
        self._queued.clear()
        self._by_prefix.clear()

    def messages(self) -> list[dict[str, Any]]:
        """Messages FCM would have delivered (answered with a name, not validate_only)."""
        return [
            r.message
            for r in self.requests
            if r.name is not None and not r.validate_only and r.message is not None
        ]

    def requests_for(self, target: str) -> list[FCMRequest]:
        return [r for r in self.requests if r.target == target]

    # -- request handling -----------------------------------------------------------------

    async def _send(self, request: web.Request) -> web.Response:
        record, response = await self._answer(request)
        if self.on_reply is not None:
            self.on_reply(record)
        return response

    async def _answer(self, request: web.Request) -> tuple[FCMRequest, web.Response]:
        record = FCMRequest(
            method=request.method,
            path=request.path,
            project_id=request.match_info["project_id"],
            headers=CIMultiDictProxy(CIMultiDict(request.headers)),
            body=None,
            received_at=time.time(),
            monotonic=time.monotonic(),
        )
        self.requests.append(record)
        raw = await request.read()
        try:
            self._check(request, record, raw)
        except _Refusal as refusal:
            self.invalid.append((record.path, f"{refusal.rpc_status}: {refusal.message}"))
            record.status = refusal.status
            fcm_code = "INVALID_ARGUMENT" if refusal.status == 400 else None
            violations = (
                [{"field": refusal.field, "description": refusal.message}] if refusal.field else []
            )
            return record, _error_response(
                refusal.status, refusal.rpc_status, refusal.message, fcm_code, violations
            )
        scripted = self._next_answer(record.target)
        if scripted.delay:
            await asyncio.sleep(scripted.delay)
        if scripted.code == "OK":
            return record, self._success(record)
        return record, self._scripted_error(record, scripted)

    def _check(self, request: web.Request, record: FCMRequest, raw: bytes) -> None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if (
            scheme.lower() != "bearer"
            or not token
            or (self.access_token is not None and token != self.access_token)
        ):
            raise _Refusal(
                401,
                "UNAUTHENTICATED",
                "Request is missing required authentication credential. Expected OAuth 2 "
                "access token, login cookie or other valid authentication credential.",
            )
        if self.project_id is not None and record.project_id != self.project_id:
            raise _Refusal(
                403,
                "PERMISSION_DENIED",
                f"Permission 'cloudmessaging.messages.create' denied on resource "
                f"'//cloudresourcemanager.googleapis.com/projects/{record.project_id}'",
            )
        try:
            record.body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            message = f"Invalid JSON payload received. {error}"
            raise _Refusal(400, "INVALID_ARGUMENT", message) from error
        _check_body(record)

    def _next_answer(self, target: str | None) -> FCMAnswer:
        own = self._scripted_for(target) if target is not None else None
        return (
            own
            or (self._prefix_answer(target) if target is not None else None)
            or self._scripted_for(None)
            or FCMAnswer("OK")
        )

    def _scripted_for(self, key: str | None) -> FCMAnswer | None:
        queued = self._queued.get(key)
        if queued:
            return queued.popleft()
        return self._standing.get(key)

    def _prefix_answer(self, target: str) -> FCMAnswer | None:
        matching = [prefix for prefix in self._by_prefix if target.startswith(prefix)]
        return self._by_prefix[max(matching, key=len)] if matching else None

    def _success(self, record: FCMRequest) -> web.Response:
        message_id = VALIDATE_ONLY_ID if record.validate_only else f"0:{next(self._ids)}%fake"
        record.status = 200
        record.name = f"projects/{record.project_id}/messages/{message_id}"
        log.info("POST %s -> 200 %s", record.path, record.name)
        return web.json_response({"name": record.name})

    def _scripted_error(self, record: FCMRequest, scripted: FCMAnswer) -> web.Response:
        error = ERRORS[scripted.code]
        record.status, record.error = error.status, scripted.code
        message = scripted.message or error.message
        field = scripted.field
        if field is None and scripted.code == "INVALID_ARGUMENT" and scripted.message is None:
            field = "message.token"
        violations = [{"field": field, "description": message}] if field else []
        headers = {"Retry-After": str(scripted.retry_after)} if scripted.retry_after else {}
        log.info("POST %s -> %d %s", record.path, error.status, scripted.code)
        return _error_response(
            error.status, error.rpc_status, message, scripted.code, violations, headers
        )

    async def _unknown(self, request: web.Request) -> web.Response:
        """Anything else is a client bug (firebase-admin 7 has no batch endpoint): 404."""
        await request.read()
        self.invalid.append((request.path, f"no such FCM endpoint: {request.method}"))
        return _error_response(404, "NOT_FOUND", "The requested URL was not found.", None, [])


def _check_body(record: FCMRequest) -> None:
    """Fill ``record`` from the request body; raise :class:`_Refusal` where FCM would refuse."""
    body = record.body
    if not isinstance(body, dict) or not isinstance(body.get("message"), dict):
        raise _Refusal(400, "INVALID_ARGUMENT", "Request contains an invalid argument.", "message")
    unknown = set(body) - {"message", "validate_only"}
    if unknown:
        name = sorted(unknown)[0]
        raise _Refusal(
            400,
            "INVALID_ARGUMENT",
            f'Invalid JSON payload received. Unknown name "{name}": Cannot find field.',
        )
    validate_only = body.get("validate_only", False)
    if not isinstance(validate_only, bool):
        raise _Refusal(400, "INVALID_ARGUMENT", "Invalid value at 'validate_only' (TYPE_BOOL)")
    message: dict[str, Any] = body["message"]
    record.message, record.validate_only = message, validate_only
    unknown = set(message) - MESSAGE_FIELDS
    if unknown:
        name = sorted(unknown)[0]
        raise _Refusal(
            400,
            "INVALID_ARGUMENT",
            f"Invalid JSON payload received. Unknown name \"{name}\" at 'message': "
            "Cannot find field.",
        )
    targets = [key for key in TARGETS if key in message]
    if len(targets) != 1:
        raise _Refusal(
            400, "INVALID_ARGUMENT", "Exactly one of token, fid, topic or condition is required."
        )
    target = message[targets[0]]
    if not isinstance(target, str) or not target:
        where = f"message.{targets[0]}"
        raise _Refusal(400, "INVALID_ARGUMENT", f"Invalid value at '{where}'", where)
    record.target = target
    _check_data(message.get("data"))
    size = _payload_size(message)
    if size > MAX_PAYLOAD_BYTES:
        raise _Refusal(
            400, "INVALID_ARGUMENT", f"Message is too big: {size} bytes > {MAX_PAYLOAD_BYTES}"
        )


def _check_data(data: Any) -> None:
    if data is None:
        return
    if not isinstance(data, dict):
        raise _Refusal(400, "INVALID_ARGUMENT", "Invalid value at 'message.data'", "message.data")
    for index, (key, value) in enumerate(data.items()):
        where = f"message.data[{index}].value"
        if not isinstance(value, str):
            raise _Refusal(
                400,
                "INVALID_ARGUMENT",
                f"Invalid value at '{where}' (TYPE_STRING), {json.dumps(value)}",
                where,
            )
        if key in RESERVED_DATA_KEYS or key.startswith(("google.", "gcm.")):
            raise _Refusal(400, "INVALID_ARGUMENT", f"Invalid data payload key: {key}")


def _payload_size(message: dict[str, Any]) -> int:
    """FCM's 4 KB limit counts the payload: data keys and values plus notification text."""
    data = message.get("data") or {}
    notification = message.get("notification") or {}
    parts = [*data.keys(), *data.values()]
    parts += [v for v in notification.values() if isinstance(v, str)]
    return sum(len(part.encode()) for part in parts)


def _error_response(
    status: int,
    rpc_status: str,
    message: str,
    fcm_code: str | None,
    violations: list[dict[str, str]],
    headers: dict[str, str] | None = None,
) -> web.Response:
    """Google's error shape, which firebase-admin maps to its exception classes."""
    details: list[dict[str, Any]] = []
    if fcm_code is not None:
        details.append({"@type": FCM_ERROR_TYPE, "errorCode": fcm_code})
    if violations:
        details.append({"@type": BAD_REQUEST_TYPE, "fieldViolations": violations})
    error: dict[str, Any] = {"code": status, "message": message, "status": rpc_status}
    if details:
        error["details"] = details
    return web.json_response({"error": error}, status=status, headers=headers)
