"""Reading loosely typed Customer.io payloads against relay's one size table.

A value relay can store is returned; anything else raises `Refused`, naming the field, so the
route can refuse the item in Customer.io's shape (never acknowledge it and drop it).
"""

from __future__ import annotations

import json
import re
from typing import Any

from relay.api.limits import check_map
from relay.errors import FieldError
from relay.keys import Role, grants
from relay.models.fields import (
    MAX_EVENT_NAME_BYTES,
    MAX_ID_BYTES,
    NO_NUL_MESSAGE,
    TOKEN_PATTERN,
)

MAX_TOKEN_CHARS = 4096
MAX_DEVICE_FIELD_CHARS = 256
_TOKEN = re.compile(TOKEN_PATTERN)

# Customer.io device attributes → relay device fields (push_enabled is read apart: a bool)
DEVICE_FIELDS = {
    "app_version": "app_version",
    "device_os": "os_version",
    "device_model": "device_model",
    "device_locale": "locale",
    "timezone": "timezone",
}


class Refused(Exception):
    """An item relay will not acknowledge. ``reason`` is a short code (``invalid``,
    ``forbidden``, ``unforwardable``); ``status`` the answer to a single-item request."""

    def __init__(self, field: str, message: str, reason: str = "invalid", status: int = 400):
        super().__init__(f"{field}: {message}" if field else message)
        self.field, self.message, self.reason, self.status = field, message, reason, status


def identifier(value: Any, field: str) -> str:
    """A required id: 1-150 bytes of UTF-8 (a number is read as its decimal string)."""
    found = optional_identifier(value, field)
    if found is None:
        raise Refused(field, "is required")
    return found


def optional_identifier(value: Any, field: str) -> str | None:
    """An id, or None when absent (missing, null or empty); over 150 bytes is refused."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise Refused(field, "must be a string")
    if len(value.encode("utf-8")) > MAX_ID_BYTES:
        raise Refused(field, f"must be at most {MAX_ID_BYTES} bytes of UTF-8")
    return stored_text(value, field)


def stored_text(value: str, field: str) -> str:
    """Text relay keeps in a column of its own: no NUL (PostgreSQL's text cannot hold it)."""
    if "\x00" in value:
        raise Refused(field, NO_NUL_MESSAGE)
    return value


def email_of(attributes: dict[str, Any], field: str) -> str | None:
    """Pops ``email`` as the person's address; a value that is no string stays an attribute."""
    email = attributes.pop("email", None)
    if isinstance(email, str):
        return stored_text(email, field)
    if email is not None:
        attributes["email"] = email  # not an address relay can keep as one
    return None


def device_token(value: Any, field: str) -> str:
    """A device token: 1-4096 characters of ``[A-Za-z0-9._:-]``."""
    if not (isinstance(value, str) and len(value) <= MAX_TOKEN_CHARS and _TOKEN.match(value)):
        raise Refused(field, f"must be a device token: 1-{MAX_TOKEN_CHARS} of [A-Za-z0-9._:-]")
    return value


def event_name(value: Any, field: str) -> str:
    """An event name, trimmed as Customer.io trims it: 1-100 bytes."""
    name = value.strip() if isinstance(value, str) else ""
    if not name:
        raise Refused(field, "is required")
    if len(name.encode("utf-8")) > MAX_EVENT_NAME_BYTES:
        raise Refused(field, f"must be at most {MAX_EVENT_NAME_BYTES} bytes")
    return stored_text(name, field)


def platform(value: Any, field: str, required: bool = True) -> str | None:
    """``ios`` or ``android``, in any case (Track-era SDKs send ``iOS``, ``Android``)."""
    if value is None and not required:
        return None
    found = value.lower() if isinstance(value, str) else None
    if found not in ("ios", "android"):
        raise Refused(field, "must be ios or android")
    return found


def properties(value: Any, field: str) -> dict[str, Any]:
    """A map of properties or attributes within the size table (absent: empty)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Refused(field, "must be an object")
    errors: list[FieldError] = []
    check_map(errors, field, value)
    if errors:
        raise Refused(errors[0].path, errors[0].message)
    return value


def device_values(attributes: dict[str, Any], field: str) -> dict[str, Any]:
    """Customer.io device attributes → relay's device fields, the rest under ``attributes``.

    SDKs send ``device_os`` as a string or a number and ``push_enabled`` as a bool or the
    string "true"/"false"; every value is kept, none silently dropped.
    """
    rest = dict(properties(attributes, field))
    values: dict[str, Any] = {}
    enabled = rest.pop("push_enabled", None)
    if enabled is not None:
        if not (isinstance(enabled, bool) or enabled in ("true", "false")):
            raise Refused(f"{field}.push_enabled", 'must be a bool or "true"/"false"')
        values["push_enabled"] = enabled in (True, "true")
    for theirs, ours in DEVICE_FIELDS.items():
        value = rest.pop(theirs, None)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise Refused(f"{field}.{theirs}", "must be a string or a number")
        if len(str(value)) > MAX_DEVICE_FIELD_CHARS:
            raise Refused(f"{field}.{theirs}", f"must be at most {MAX_DEVICE_FIELD_CHARS} chars")
        values[ours] = stored_text(str(value), f"{field}.{theirs}")
    if rest:
        # Customer.io keeps device attributes as strings: a nested value travels as its JSON.
        values["attributes"] = {
            key: value if isinstance(value, str | int | float | bool) else json.dumps(value)
            for key, value in rest.items()
        }
    return values


def require_person_writes(role: Role, field: str) -> None:
    """Merging, deleting or suppressing a person needs a server or admin key: app keys ship
    inside apps, so anyone holding one could otherwise harm any person."""
    if not grants(role, "server"):
        raise Refused(
            field,
            "merging, deleting or suppressing a person needs a server key; app keys may not",
            reason="forbidden",
            status=403,
        )


def object_of(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
