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
    """≤ 300 keys, ≤ 16 KB serialized, every string value ≤ 1000 bytes."""
    if value is None:
        return
    if len(value) > MAX_MAP_KEYS:
        errors.append(FieldError(path, f"must have at most {MAX_MAP_KEYS} keys"))
    if len(msgspec.json.encode(value)) > MAX_MAP_BYTES:
        errors.append(FieldError(path, f"must be at most {MAX_MAP_BYTES} bytes serialized"))
    for key_path, text in _strings(value, path):
        if len(text.encode("utf-8")) > MAX_STRING_VALUE_BYTES:
            errors.append(
                FieldError(
                    key_path, f"string values must be at most {MAX_STRING_VALUE_BYTES} bytes"
                )
            )
            return


def _strings(value: Any, path: str):  # type: ignore[no-untyped-def]
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


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
