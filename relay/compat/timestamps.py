"""Customer.io clients send ISO 8601 strings, unix seconds, or (iOS) unix milliseconds."""

from __future__ import annotations

from typing import Any

from relay import timeutil
from relay.compat.values import Refused
from relay.retention import FactKind, refusal
from relay.settings import RetentionSettings

MILLISECONDS_ABOVE = 10**11  # 1e11 seconds is the year 5138; larger integers are milliseconds


def moment(value: Any, default: float) -> float:
    """The call's time; a value that cannot be read, or lies in the future, is the default."""
    if isinstance(value, bool) or value is None:
        return default
    if isinstance(value, int | float):
        value = value / 1000 if value > MILLISECONDS_ABOVE else value
    try:
        parsed = timeutil.parse_timestamp(value)
    except (ValueError, TypeError):
        return default
    return min(parsed, default + 300)


def retained(kind: FactKind, at: float, retention: RetentionSettings, now: float) -> float:
    """The time of a fact relay stores; one older than its retention horizon is refused, as
    the native routes refuse it (the next prune would delete it, and its id come back)."""
    message = refusal(kind, at, retention, now)
    if message is not None:
        raise Refused("timestamp", message)
    return at
