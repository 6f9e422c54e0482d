"""Limits the wire structs cannot express: byte lengths, map sizes, time bounds.

Each check appends `FieldError`s to a list, so a whole item is reported at once.
"""

from __future__ import annotations

from typing import Any

import msgspec

from relay import timeutil
from relay.errors import FieldError, ValidationFailed
from relay.models.fields import (
    MAX_EVENT_NAME_BYTES,
    MAX_ID_BYTES,
    MAX_MAP_BYTES,
    MAX_MAP_KEYS,
    MAX_STRING_VALUE_BYTES,
    NO_NUL_MESSAGE,
)

MAX_FUTURE_SECONDS = 300


def check_bytes(errors: list[FieldError], path: str, value: str | None, limit: int) -> None:
    if value is not None and len(value.encode("utf-8")) > limit:
        errors.append(FieldError(path, f"must be at most {limit} bytes of UTF-8"))
    if value is not None and "\x00" in value:
        errors.append(FieldError(path, NO_NUL_MESSAGE))


def check_id(errors: list[FieldError], path: str, value: str | None) -> None:
    check_bytes(errors, path, value, MAX_ID_BYTES)


def check_event_name(errors: list[FieldError], path: str, value: str) -> None:
    check_bytes(errors, path, value, MAX_EVENT_NAME_BYTES)


def check_map(errors: list[FieldError], path: str, value: dict[str, Any] | None) -> None:
    """≤ 300 keys, ≤ 16 KB serialized, every string value ≤ 1000 bytes; no NUL in a key or a
    string (PostgreSQL's jsonb, which reads stored maps, cannot hold it)."""
    if value is None:
        return
    if len(value) > MAX_MAP_KEYS:
        errors.append(FieldError(path, f"must have at most {MAX_MAP_KEYS} keys"))
    if len(msgspec.json.encode(value)) > MAX_MAP_BYTES:
        errors.append(FieldError(path, f"must be at most {MAX_MAP_BYTES} bytes serialized"))
    found: set[str] = set()  # each fault reported once, at its first place
    for where, text, is_key in _texts(value, path):
        if "nul" not in found and "\x00" in text:
            errors.append(FieldError(where, NO_NUL_MESSAGE))
            found.add("nul")
        if "long" not in found and not is_key and len(text.encode()) > MAX_STRING_VALUE_BYTES:
            errors.append(
                FieldError(where, f"string values must be at most {MAX_STRING_VALUE_BYTES} bytes")
            )
            found.add("long")


def _texts(value: Any, path: str):  # type: ignore[no-untyped-def]
    """(path, text, is_key) for every key and string inside ``value``."""
    if isinstance(value, str):
        yield path, value, False
    elif isinstance(value, dict):
        for key, item in value.items():
            key_path = f"{path}.{key}".replace("\x00", "\\u0000")  # a path, never a NUL
            yield key_path, key, True
            yield from _texts(item, key_path)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _texts(item, f"{path}[{index}]")


def occurred_at(
    errors: list[FieldError], path: str, value: str | float | None, received_at: float
) -> float:
    """The fact's time: its timestamp, else the time of receipt; never > 5 min in the future."""
    if value is None:
        return received_at
    try:
        moment = timeutil.parse_timestamp(value)
    except ValueError as exc:
        errors.append(FieldError(path, str(exc)))
        return received_at
    if moment > received_at + MAX_FUTURE_SECONDS:
        errors.append(FieldError(path, "is more than 5 minutes in the future"))
    return moment


def raise_if_any(errors: list[FieldError]) -> None:
    if errors:
        first = errors[0]
        raise ValidationFailed(f"{first.path}: {first.message}", errors)
