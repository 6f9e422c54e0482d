"""A local stand-in for Apple's APNs provider API (``POST /3/device/{token}`` over HTTP/2).

Why: relay's push sender uses aioapns, and its behaviour on every APNs answer (dead tokens,
throttling, credential errors, outages) must be tested without Apple. Tests start this fake on
``127.0.0.1`` port 0, point aioapns at it with :func:`relay.push.hooks.make_apns_client`,
script answers per device token and assert on what arrived::

    async with FakeAPNs(key_id="KEY1234567", team_id="TEAM123456") as fake:
        fake.answer(DEAD_TOKEN, 410, timestamp_ms=1_700_000_000_000)
        apns = make_apns_client(key=P8, key_id=..., team_id=..., topic=..., endpoint=fake.url)
        ...
        assert [r.token for r in fake.requests] == [...]
        assert not fake.invalid

Like Apple, it checks the provider JWT (``authorization: bearer``; ES256, ``kid`` and ``iss``,
not older than an hour, optionally its signature), the ``apns-*`` headers and the 4 KB payload
limit (5 KB for VoIP), echoes ``apns-id`` (a new UUID when the request had none), and answers
errors as ``{"reason": ...}`` (plus ``timestamp`` in ms for 410).

Deliberate differences from Apple, towards making client bugs loud:

- A payload that is not a JSON object gets 400 ``BadPayload`` (Apple's answer is undocumented).
- Device tokens must be hex (Apple's are 64 hex digits); anything else gets 400
  ``BadDeviceToken`` unless a scripted answer for that token says otherwise, or the fake was
  made with ``hex_tokens_only=False`` (``relay-fakes serve``: QA registers made-up tokens).
- Requests refused by these checks (not by scripted answers) are listed in :attr:`invalid`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import ssl
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey

from relay_fakes.h2server import H2Request, H2Response, H2Server

log = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 4096
MAX_VOIP_PAYLOAD_BYTES = 5120
JWT_MAX_AGE_SECONDS = 3600
PUSH_TYPES = frozenset(
    {
        "alert",
        "background",
        "location",
        "voip",
        "complication",
        "fileprovider",
        "mdm",
        "liveactivity",
        "pushtotalk",
        "widgets",
        "controls",
    }
)
PRIORITIES = frozenset({"1", "5", "10"})
DEFAULT_REASONS = {
    400: "BadDeviceToken",
    403: "InvalidProviderToken",
    404: "BadPath",
    405: "MethodNotAllowed",
    410: "Unregistered",
    413: "PayloadTooLarge",
    429: "TooManyRequests",
    500: "InternalServerError",
    503: "ServiceUnavailable",
}
_PATH = re.compile(r"^/3/device/(?P<token>[^/?]*)$")
_HEX = re.compile(r"^[0-9a-fA-F]+$")


@dataclass(frozen=True)
class APNsAnswer:
    """A scripted answer (see :meth:`FakeAPNs.answer`). ``reason`` None means Apple's usual
    reason for ``status``; ``timestamp_ms`` None on a 410 means "now"."""

    status: int
    reason: str | None = None
    timestamp_ms: int | None = None
    delay: float = 0.0


@dataclass
class APNsRequest:
    """One request as received and what the fake answered.

    ``headers`` maps lower-case names to the first value. ``payload`` is the parsed JSON (None
    if it did not parse). ``received_at`` is wall-clock, ``monotonic`` for rate checks.
    ``jwt_header``/``jwt_claims`` are the provider token's, decoded without verification.
    """

    token: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    payload: Any
    stream_id: int
    connection_id: int
    received_at: float
    monotonic: float
    apns_id: str = ""
    jwt_header: dict[str, Any] = field(default_factory=dict)
    jwt_claims: dict[str, Any] = field(default_factory=dict)
    status: int | None = None
    reason: str | None = None
    timestamp_ms: int | None = None
    scripted: bool = False


class _Refusal(Exception):
    """A request APNs would refuse on its own (not a scripted answer)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


class FakeAPNs:
    """APNs on a local port over h2c (or TLS with ``ssl_context``); see the module doc.

    ``key_id``/``team_id`` left None accept any non-empty ``kid``/``iss``; ``public_key`` (PEM
    or a key object) also verifies the JWT signature. ``topics`` None accepts any
    ``apns-topic``; otherwise others get 400 ``TopicDisallowed``. ``hex_tokens_only=False``
    accepts any device token. ``on_reply`` is called with each request once its answer is
    decided (its ``status`` set), e.g. to show pushes as they arrive.
    """

    def __init__(
        self,
        *,
        key_id: str | None = None,
        team_id: str | None = None,
        public_key: str | bytes | EllipticCurvePublicKey | None = None,
        topics: set[str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        max_concurrent_streams: int = 1000,
        hex_tokens_only: bool = True,
        on_reply: Callable[[APNsRequest], None] | None = None,
    ) -> None:
        self.key_id = key_id
        self.team_id = team_id
        self.public_key = public_key
        self.topics = topics
        self.hex_tokens_only = hex_tokens_only
        self.on_reply = on_reply
        self.requests: list[APNsRequest] = []
        self.invalid: list[tuple[str, str]] = []
        self._standing: dict[str | None, APNsAnswer] = {}
        self._queued: dict[str | None, deque[APNsAnswer]] = {}
        self._by_prefix: dict[str, APNsAnswer] = {}
        self._server = H2Server(
            self._handle,
            ssl_context=ssl_context,
            max_concurrent_streams=max_concurrent_streams,
        )
        self._url: str | None = None

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0 = any free port); returns :attr:`url`."""
        _, bound_port = await self._server.start(host, port)
        scheme = "https" if self._server.ssl_context is not None else "http"
        self._url = f"{scheme}://{host}:{bound_port}"
        return self._url

    async def stop(self, grace: float = 1.0) -> None:
        """Stop listening, finish answers in flight (up to ``grace`` seconds), GOAWAY, close."""
        await self._server.stop(grace)

    @property
    def url(self) -> str:
        """``http://host:port`` (``https://`` with TLS) of the running fake."""
        if self._url is None:
            raise RuntimeError("FakeAPNs is not started")
        return self._url

    @property
    def connections_opened(self) -> int:
        """HTTP/2 connections accepted so far (aioapns pools up to ``max_connections``)."""
        return self._server.connections_opened

    @property
    def open_connections(self) -> int:
        return self._server.open_connections

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- scripting and inspection ---------------------------------------------------------

    def answer(
        self,
        token: str | None,
        status: int,
        reason: str | None = None,
        timestamp_ms: int | None = None,
        times: int | None = None,
        *,
        delay: float = 0.0,
    ) -> None:
        """Script the answer for ``token`` (None: every token without an answer of its own).

        ``times=None`` makes it the standing answer (replacing an earlier one); ``times=N``
        queues it for the next N requests only, ahead of the standing answer, after which
        the token gets its standing answer or 200. ``delay`` seconds pass before answering
        (other streams are not held up). ``status=200`` with ``times`` lets a token succeed
        once before a standing error.
        """
        scripted = APNsAnswer(status, reason, timestamp_ms, delay)
        if times is None:
            self._standing[token] = scripted
        elif times > 0:
            self._queued.setdefault(token, deque()).extend([scripted] * times)

    def answer_prefix(
        self,
        prefix: str,
        status: int,
        reason: str | None = None,
        timestamp_ms: int | None = None,
        *,
        delay: float = 0.0,
    ) -> None:
        """Script the standing answer for every token starting with ``prefix`` (the longest
        matching prefix wins). It applies after a token's own answers and before the answer for
        all tokens, so whole families of tokens (QA's ``dead…`` tokens) need no enumeration."""
        if not prefix:
            raise ValueError("prefix must not be empty; answer(None, ...) scripts every token")
        self._by_prefix[prefix] = APNsAnswer(status, reason, timestamp_ms, delay)

    def reset(self) -> None:
        """Forget recorded requests, invalid requests and scripted answers."""
        self.requests.clear()
        self.invalid.clear()
        self._standing.clear()
        self._queued.clear()
        self._by_prefix.clear()

    def requests_for(self, token: str) -> list[APNsRequest]:
        return [r for r in self.requests if r.token == token]

    # -- request handling -----------------------------------------------------------------

    async def _handle(self, request: H2Request) -> H2Response:
        match = _PATH.match(request.path.split("?", 1)[0])
        record = APNsRequest(
            token=match["token"] if match else "",
            method=request.method,
            path=request.path,
            headers={k: v for k, v in reversed(request.headers)},
            body=request.body,
            payload=_json_or_none(request.body),
            stream_id=request.stream_id,
            connection_id=request.connection_id,
            received_at=time.time(),
            monotonic=time.monotonic(),
        )
        record.apns_id = request.header("apns-id") or str(uuid.uuid4())
        self.requests.append(record)
        try:
            self._check(request, record, match is not None)
        except _Refusal as refusal:
            self.invalid.append((record.path, f"{refusal.status} {refusal.reason}"))
            return self._reply(record, refusal.status, refusal.reason, None)
        scripted = self._next_answer(record.token)
        if scripted is None:
            return self._reply(record, 200, None, None)
        record.scripted = True
        if scripted.delay:
            await asyncio.sleep(scripted.delay)
        if scripted.status == 200:
            return self._reply(record, 200, None, None)
        reason = scripted.reason or DEFAULT_REASONS.get(scripted.status, "Unknown")
        stamp = scripted.timestamp_ms
        if scripted.status == 410 and stamp is None:
            stamp = int(time.time() * 1000)
        return self._reply(record, scripted.status, reason, stamp)

    def _check(self, request: H2Request, record: APNsRequest, path_ok: bool) -> None:
        """Raise :class:`_Refusal` for what APNs itself would refuse, in Apple's order."""
        if request.method != "POST":
            raise _Refusal(405, "MethodNotAllowed")
        if not path_ok:
            raise _Refusal(404, "BadPath")
        for name in {name for name, _ in request.headers}:
            if request.header_count(name) > 1:
                raise _Refusal(400, "DuplicateHeaders")
        self._check_provider_token(request, record)
        self._check_headers(request)
        self._check_payload(request, record)
        if not record.token:
            raise _Refusal(400, "MissingDeviceToken")
        scripted = (
            record.token in self._standing
            or self._queued.get(record.token)
            or self._prefix_answer(record.token) is not None
        )
        if self.hex_tokens_only and not _HEX.match(record.token) and not scripted:
            raise _Refusal(400, "BadDeviceToken")

    def _check_provider_token(self, request: H2Request, record: APNsRequest) -> None:
        authorization = request.header("authorization")
        if not authorization:
            raise _Refusal(403, "MissingProviderToken")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise _Refusal(403, "InvalidProviderToken")
        try:
            record.jwt_header = jwt.get_unverified_header(token)
            record.jwt_claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as error:
            log.info("undecodable provider token: %s", error)
            raise _Refusal(403, "InvalidProviderToken") from error
        kid, iss = record.jwt_header.get("kid"), record.jwt_claims.get("iss")
        if record.jwt_header.get("alg") != "ES256" or not kid or not iss:
            raise _Refusal(403, "InvalidProviderToken")
        if (self.key_id is not None and kid != self.key_id) or (
            self.team_id is not None and iss != self.team_id
        ):
            raise _Refusal(403, "InvalidProviderToken")
        issued_at = record.jwt_claims.get("iat")
        if not isinstance(issued_at, int | float):
            raise _Refusal(403, "InvalidProviderToken")
        if issued_at < time.time() - JWT_MAX_AGE_SECONDS:
            raise _Refusal(403, "ExpiredProviderToken")
        if self.public_key is not None:
            try:
                jwt.decode(
                    token,
                    key=self.public_key,
                    algorithms=["ES256"],
                    options={"verify_iat": False},
                )
            except jwt.PyJWTError as error:
                raise _Refusal(403, "InvalidProviderToken") from error

    def _check_headers(self, request: H2Request) -> None:
        topic = request.header("apns-topic")
        if not topic:
            raise _Refusal(400, "MissingTopic")
        if self.topics is not None and topic not in self.topics:
            raise _Refusal(400, "TopicDisallowed")
        push_type = request.header("apns-push-type")
        if push_type is not None and push_type not in PUSH_TYPES:
            raise _Refusal(400, "InvalidPushType")
        apns_id = request.header("apns-id")
        if apns_id is not None and not _is_uuid(apns_id):
            raise _Refusal(400, "BadMessageId")
        priority = request.header("apns-priority")
        if priority is not None and priority not in PRIORITIES:
            raise _Refusal(400, "BadPriority")
        expiration = request.header("apns-expiration")
        if expiration is not None and not expiration.isdigit():
            raise _Refusal(400, "BadExpirationDate")
        collapse_id = request.header("apns-collapse-id")
        if collapse_id is not None and len(collapse_id.encode()) > 64:
            raise _Refusal(400, "BadCollapseId")

    def _check_payload(self, request: H2Request, record: APNsRequest) -> None:
        if not request.body:
            raise _Refusal(400, "PayloadEmpty")
        voip = request.header("apns-push-type") == "voip"
        limit = MAX_VOIP_PAYLOAD_BYTES if voip else MAX_PAYLOAD_BYTES
        if len(request.body) > limit:
            raise _Refusal(413, "PayloadTooLarge")
        if not isinstance(record.payload, dict):
            raise _Refusal(400, "BadPayload")

    def _next_answer(self, token: str) -> APNsAnswer | None:
        return self._scripted_for(token) or self._prefix_answer(token) or self._scripted_for(None)

    def _scripted_for(self, key: str | None) -> APNsAnswer | None:
        queued = self._queued.get(key)
        if queued:
            return queued.popleft()
        return self._standing.get(key)

    def _prefix_answer(self, token: str) -> APNsAnswer | None:
        matching = [prefix for prefix in self._by_prefix if token.startswith(prefix)]
        return self._by_prefix[max(matching, key=len)] if matching else None

    def _reply(
        self, record: APNsRequest, status: int, reason: str | None, timestamp_ms: int | None
    ) -> H2Response:
        record.status, record.reason, record.timestamp_ms = status, reason, timestamp_ms
        log.info("POST %s -> %s %s", record.path, status, reason or "")
        if self.on_reply is not None:
            self.on_reply(record)
        headers: tuple[tuple[str, str], ...] = (("apns-id", record.apns_id),)
        if status == 200:
            return H2Response(200, headers)
        body: dict[str, Any] = {"reason": reason}
        if timestamp_ms is not None:
            body["timestamp"] = timestamp_ms
        headers += (("content-type", "application/json; charset=utf-8"),)
        return H2Response(status, headers, json.dumps(body, separators=(",", ":")).encode())


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


def _is_uuid(value: str) -> bool:
    """APNs wants the canonical 8-4-4-4-12 form."""
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False
