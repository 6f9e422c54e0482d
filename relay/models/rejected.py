"""The rejected-items log (``GET /v1/rejected``)."""

from __future__ import annotations

from typing import Any

from msgspec import Struct

from relay.models.fields import Rfc3339


class RejectedItem(Struct, kw_only=True):
    at: Rfc3339
    surface: str
    path: str
    reason: str  # short code: invalid, forbidden, unforwardable
    message: str
    item: dict[str, Any]  # as received, device tokens masked
