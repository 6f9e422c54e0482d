"""Timestamps: unix seconds (float) inside; RFC 3339 or unix seconds in, RFC 3339 UTC out."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

# Unix seconds for 1970..9999: rejects values that are obviously milliseconds or garbage.
_MAX_UNIX_SECONDS = 253402300799.0


def now() -> float:
    return time.time()


def parse_timestamp(value: str | float) -> float:
    """Unix seconds from an RFC 3339 string or a number; ValueError says what is wrong."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("expected an RFC 3339 timestamp or unix seconds") from None
        if parsed.tzinfo is None:
            raise ValueError("RFC 3339 timestamp needs a UTC offset (e.g. Z)")
        return parsed.timestamp()
    if not math.isfinite(value) or not 0 <= value <= _MAX_UNIX_SECONDS:
        raise ValueError("unix seconds out of range")
    return float(value)


def format_timestamp(value: float | None) -> str | None:
    """RFC 3339 UTC with millisecond precision, ``None`` stays ``None``."""
    if value is None:
        return None
    moment = datetime.fromtimestamp(value, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
