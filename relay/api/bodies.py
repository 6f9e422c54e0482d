"""Request bodies: content type, size, JSON decoding, and msgspec errors as field paths."""

from __future__ import annotations

import contextlib
import re
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from relay.api.reading import read_in_time
from relay.errors import (
    FieldError,
    MalformedRequest,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)
from relay.models.fields import NO_NUL_MESSAGE, NO_NUL_PATTERN

T = TypeVar("T")
MAX_BODY_BYTES = 1024 * 1024
TOO_DEEP = "body is nested too deeply to read"

_LOCATION = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>.*)`)?$", re.DOTALL)
_NUL_REFUSED = f"Expected `str` matching regex {NO_NUL_PATTERN!r}"
_NAMED_FIELD = re.compile(r"^Object (?:missing required|contains unknown) field `(?P<name>.+)`$")


async def read_body(request: web.Request) -> bytes:
    """The raw body of a JSON request, after the content type and size checks."""
    if request.content_type != "application/json":
        raise UnsupportedMediaType(
            f"Content-Type must be application/json, got {request.content_type or 'none'}"
        )
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"body is larger than {MAX_BODY_BYTES} bytes")
    try:
        return await read_in_time(request)
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(f"body is larger than {MAX_BODY_BYTES} bytes") from None


async def read_json(request: web.Request, into: type[T]) -> T:
    """Decode and validate the body as ``into``; 400 for bad JSON, 422 naming the field."""
    return decode(await read_body(request), into)


def decode(body: bytes, into: type[T]) -> T:
    try:
        return msgspec.json.decode(body, type=into)
    except msgspec.ValidationError as exc:
        # A typed decode stops at the first wrong field, maybe before a syntax error further
        # on: malformed JSON must be 400 whatever it contains. (Too deep to check: the field
        # error stands.)
        with contextlib.suppress(RecursionError):
            _well_formed(body)
        error = field_error(exc)
        raise ValidationFailed(f"{error.path or 'body'}: {error.message}", [error]) from None
    except msgspec.DecodeError as exc:
        raise MalformedRequest(f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise MalformedRequest(TOO_DEEP) from None


def _well_formed(body: bytes) -> None:
    try:
        msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise MalformedRequest(f"body is not valid JSON: {exc}") from None


def decode_any(body: bytes) -> Any:
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise MalformedRequest(f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise MalformedRequest(TOO_DEEP) from None


def field_error(exc: msgspec.ValidationError, prefix: str = "") -> FieldError:
    """``Expected `str`, got `int` - at `$.metrics[3].token``` → path ``metrics[3].token``."""
    match = _LOCATION.match(str(exc))
    assert match is not None  # the pattern matches any string
    message, path = match["message"], match["path"] or ""
    named = _NAMED_FIELD.match(message)
    if named:
        path += f".{named['name']}"
    if message == _NUL_REFUSED:
        message = NO_NUL_MESSAGE
    return FieldError(join_path(prefix, path.replace("[...]", "")), message)


def join_path(prefix: str, path: str) -> str:
    path = path.lstrip(".")
    if not prefix:
        return path
    if not path:
        return prefix
    return f"{prefix}{path}" if path.startswith("[") else f"{prefix}.{path}"
