"""The Customer.io wire conventions of the compatible routes: bodies (JSON or text/plain, gzip
or not), credentials (app keys presented as Customer.io clients present theirs), answers
(exactly ``200 {}``) and Customer.io's error shapes instead of problem+json."""

from __future__ import annotations

import base64
import binascii
import enum
import zlib
from collections.abc import Awaitable, Callable
from types import UnionType
from typing import Any

import msgspec
from aiohttp import web

from relay.api.reading import read_in_time
from relay.api.responses import json_response
from relay.api.state import CALLER, SETTINGS, STORE, Caller
from relay.compat.doors import count_refused_plan_checks
from relay.compat.values import Refused
from relay.errors import RelayError, Unavailable
from relay.keys import KeyRecord

MAX_BODY_BYTES = 1024 * 1024
MAX_INFLATED_BYTES = 4 * 1024 * 1024


class Shape(enum.Enum):
    PIPELINES = "pipelines"  # {"code", "message"}
    TRACK_V1 = "track_v1"  # {"meta": {"errors": [...]}}
    TRACK_V2 = "track_v2"  # {"errors": [{"reason", "field", "message"}]}


class CompatError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str = "") -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


class PipelinesError(msgspec.Struct):
    code: str
    message: str


class TrackV1Messages(msgspec.Struct):
    errors: list[str]


class TrackV1Error(msgspec.Struct):
    meta: TrackV1Messages


class TrackV2Item(msgspec.Struct, omit_defaults=True):
    reason: str
    field: str
    message: str
    batch_index: int | None = None  # a 207's refused operation


class TrackV2Error(msgspec.Struct):
    errors: list[TrackV2Item]


class Empty(msgspec.Struct, forbid_unknown_fields=True):
    """Customer.io's success body: ``{}``."""


ErrorBody = PipelinesError | TrackV1Error | TrackV2Error
_ERROR_BODIES: dict[Shape, type[ErrorBody]] = {
    Shape.PIPELINES: PipelinesError,
    Shape.TRACK_V1: TrackV1Error,
    Shape.TRACK_V2: TrackV2Error,
}
# What a compatible route can answer besides 200: bad or unreadable bodies, unknown keys,
# a key without the role, slow or oversized bodies, and 503 while relay cannot take writes.
_ERROR_STATUSES = (400, 401, 403, 408, 413, 503)


def answers(path: str) -> dict[int, type | UnionType | None]:
    """The statuses and bodies of the compatible route at ``path``, for /openapi.json."""
    shape = shape_of(path)
    assert shape is not None, f"{path} is no Customer.io-compatible path"
    return {200: Empty} | {status: _ERROR_BODIES[shape] for status in _ERROR_STATUSES}


def error_body(shape: Shape, error: CompatError) -> ErrorBody:
    if shape is Shape.PIPELINES:
        return PipelinesError(error.code, error.message)
    if shape is Shape.TRACK_V1:
        return TrackV1Error(TrackV1Messages([error.message]))
    return TrackV2Error([TrackV2Item(error.code, error.field, error.message)])


def error_response(shape: Shape, error: CompatError) -> web.Response:
    """``error`` in Customer.io's ``shape``; on 429 and 503, ``Retry-After`` keeps clients' data."""
    response = json_response(error_body(shape, error), error.status)
    if error.status in (429, 503):
        response.headers["Retry-After"] = "5"
    return response


def shape_of(path: str) -> Shape | None:
    """The Customer.io surface ``path`` belongs to, if any, by the error shape it answers in."""
    for prefix, shape in _SURFACES:
        if path.startswith(prefix):
            return shape
    return None


_SURFACES = (
    ("/cdp/v1/", Shape.PIPELINES),
    ("/api/v1/", Shape.TRACK_V1),
    ("/push/events", Shape.TRACK_V1),  # the Track-era SDKs' legacy path
    ("/api/v2/", Shape.TRACK_V2),
)


def ok() -> web.Response:
    """Customer.io's success answer, exactly: 200 ``{}``."""
    return web.Response(body=b"{}", content_type="application/json")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def customerio_errors(shape: Shape) -> Callable[[Handler], Handler]:
    """Answer this route's failures in Customer.io's shape; 503 tells clients to keep data."""

    def decorate(handler: Handler) -> Handler:
        async def wrapper(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request)
            except CompatError as error:
                failure = error
            except Refused as refused:
                if refused.reason == "tracking_plan":  # refused, yet counted in data health
                    await count_refused_plan_checks(request)
                failure = CompatError(refused.status, refused.reason, str(refused), refused.field)
            except Unavailable as error:
                failure = CompatError(503, "unavailable", error.detail)
            except RelayError as error:
                failure = CompatError(error.status, "invalid_request", error.detail)
            return error_response(shape, failure)

        wrapper.__name__, wrapper.__doc__ = handler.__name__, handler.__doc__
        return wrapper

    return decorate


async def read_json(request: web.Request) -> Any:
    """The body as JSON, whatever the content type (Android sends text/plain), gzip or not."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise CompatError(413, "too_large", f"body is larger than {MAX_BODY_BYTES} bytes")
    try:
        raw = await read_in_time(request)
    except web.HTTPRequestEntityTooLarge:
        raise CompatError(413, "too_large", f"body is larger than {MAX_BODY_BYTES} bytes") from None
    if raw[:2] == b"\x1f\x8b":  # aiohttp already inflates Content-Encoding: gzip itself
        raw = _gunzip(raw)
    try:
        return msgspec.json.decode(raw) if raw.strip() else {}
    except (msgspec.DecodeError, RecursionError):
        raise CompatError(400, "invalid_json", "body is not valid JSON") from None


async def read_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object (an empty body is an empty object)."""
    body = await read_json(request)
    if not isinstance(body, dict):
        raise CompatError(400, "invalid_request", "body must be a JSON object")
    return body


def _gunzip(raw: bytes) -> bytes:
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        inflated = inflater.decompress(raw, MAX_INFLATED_BYTES)
    except zlib.error:
        raise CompatError(400, "invalid_gzip", "body is not valid gzip") from None
    if inflater.unconsumed_tail:
        raise CompatError(413, "too_large", f"inflated body over {MAX_INFLATED_BYTES} bytes")
    return inflated


def basic_credentials(request: web.Request) -> tuple[str, str] | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, _, password = decoded.partition(":")
    return username, password


def bearer_token(request: web.Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


async def key_for(request: web.Request, key: str | None) -> KeyRecord:
    """The relay key presented as a Customer.io credential; 401 if unknown."""
    record: KeyRecord | None = None
    if key:
        record = await request.app[STORE].authenticate(key)
    if record is None or record.app_id not in request.app[SETTINGS].app_ids:
        raise CompatError(401, "unauthorized", "unknown or missing API key")
    request[CALLER] = Caller(record, record.app_id)  # the access log's app, data-health counts
    return record
