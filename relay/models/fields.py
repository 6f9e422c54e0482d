"""Constrained field types shared by the wire structs, with the limits API.md fixes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta

TOKEN_PATTERN = r"^[A-Za-z0-9._:-]+$"
# Text relay stores in a column may not hold NUL (U+0000): PostgreSQL text cannot, and both
# engines must take the same input.
NO_NUL_PATTERN = r"^[^\x00]*$"
NO_NUL_MESSAGE = "must not contain NUL (U+0000)"
MAX_ID_BYTES = 150  # Customer.io's limit for ids
MAX_EVENT_NAME_BYTES = 100
MAX_MAP_BYTES = 16 * 1024
MAX_MAP_KEYS = 300
MAX_STRING_VALUE_BYTES = 1000

Token = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=4096,
        pattern=TOKEN_PATTERN,
        description="APNs or FCM device token: 1-4096 characters of [A-Za-z0-9._:-].",
    ),
]
# Ids and event names carry no NUL pattern: every route checks their bytes and NUL in
# `relay.api.limits.check_bytes` (compat: `relay.compat.values`), path ids included, and a
# regex per id would double what decoding a metrics batch costs.
Id = Annotated[
    str, Meta(min_length=1, max_length=MAX_ID_BYTES, description="1-150 bytes UTF-8, no NUL.")
]
EventName = Annotated[
    str,
    Meta(min_length=1, max_length=MAX_EVENT_NAME_BYTES, description="At most 100 bytes, no NUL."),
]
ShortText = Annotated[str, Meta(max_length=256, pattern=NO_NUL_PATTERN)]
Text = Annotated[str, Meta(max_length=1000, pattern=NO_NUL_PATTERN)]
Url = Annotated[str, Meta(max_length=2048, pattern=NO_NUL_PATTERN)]
Email = Annotated[str, Meta(max_length=254, pattern=r"^[^@\s\x00]+@[^@\s\x00]+$")]
Timestamp = Annotated[
    str | float,
    Meta(description="RFC 3339 string with offset, or unix seconds (int or float)."),
]
Rfc3339 = Annotated[str, Meta(description="RFC 3339 UTC timestamp.")]
Platform = Literal["ios", "android"]
Environment = Literal["production", "sandbox"]
DeviceStatus = Literal["active", "invalid", "unregistered", "replaced", "stale"]
ReportedMetric = Literal["delivered", "opened", "tapped", "deep_link_failed"]
AttributeValue = str | int | float | bool
Attributes = Annotated[
    dict[str, AttributeValue],
    Meta(description="At most 300 keys, 16 KB serialized, string values at most 1000 bytes."),
]
Properties = Annotated[
    dict[str, Any],
    Meta(description="At most 300 keys, 16 KB serialized, string values at most 1000 bytes."),
]
