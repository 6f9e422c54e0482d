"""Reading loosely typed Customer.io payloads: values relay can use, or None."""

from __future__ import annotations

import re
from typing import Any

from relay.models.fields import TOKEN_PATTERN

# Customer.io device attributes → relay device fields
DEVICE_FIELDS = {
    "app_version": "app_version",
    "device_os": "os_version",
    "device_model": "device_model",
    "device_locale": "locale",
    "timezone": "timezone",
}
MAX_TOKEN_CHARS = 4096
_TOKEN = re.compile(TOKEN_PATTERN)


def text(value: Any, limit: int = 128) -> str | None:
    """An id: a non-empty string of at most ``limit`` bytes, or a number as a string."""
    if isinstance(value, str) and value and len(value.encode()) <= limit:
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def scalars(values: Any) -> dict[str, Any]:
    """The string, number and boolean entries of a map (relay's attribute values)."""
    if not isinstance(values, dict):
        return {}
    return {
        k: v
        for k, v in values.items()
        if isinstance(k, str) and isinstance(v, str | int | float | bool) and len(k) <= 150
    }


def object_of(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def is_token(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= MAX_TOKEN_CHARS and bool(_TOKEN.match(value))


def token_or_none(value: Any) -> str | None:
    return value if is_token(value) else None
