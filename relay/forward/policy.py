"""What to do with Customer.io's answer: pure functions, tested as a table.

- 2xx (but 207): delivered.
- 207 (v2 batch): the listed ``batch_index``es failed for good, everything else is delivered.
- network error, timeout, 408, 429, 5xx: retry with jittered exponential backoff, never sooner
  than ``Retry-After`` says.
- any other 4xx: Customer.io has read and refused it; resending cannot help → dead letter.
"""

from __future__ import annotations

import email.utils
import enum
import math
import random
from dataclasses import dataclass, field
from typing import Any

RETRYABLE_STATUSES = frozenset({408, 429})


class Verdict(enum.Enum):
    DELIVERED = "delivered"
    PARTIAL = "partial"
    RETRY = "retry"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    error: str = ""
    retry_after: float | None = None  # seconds Customer.io asked us to wait
    failed: dict[int, str] = field(default_factory=dict)  # 207: batch_index → reason


def classify(
    status: int | None,
    body: Any = None,
    retry_after: str | None = None,
    error: str = "",
    now: float = 0.0,
) -> Decision:
    """Decide from an HTTP status (None: no answer at all) and, for 207, the body."""
    if status is None:
        return Decision(Verdict.RETRY, error or "no answer from Customer.io")
    if status == 207:
        return Decision(Verdict.PARTIAL, "some operations were refused", failed=_failed(body))
    if 200 <= status < 300:
        return Decision(Verdict.DELIVERED)
    summary = f"HTTP {status}: {_summarise(body)}"
    if status in RETRYABLE_STATUSES or status >= 500:
        return Decision(Verdict.RETRY, summary, parse_retry_after(retry_after, now))
    return Decision(Verdict.DEAD, summary)


def backoff(
    attempts: int, initial: float, maximum: float, rand: random.Random | None = None
) -> float:
    """Delay before retry number ``attempts + 1``: exponential, capped, with full-range jitter
    in [50%, 100%] so a fleet of retries does not come back in lockstep."""
    # int ** int is typed Any (a negative exponent gives a float); the exponent is >= 0 here.
    ceiling: float = min(maximum, initial * 2 ** max(0, attempts))
    return ceiling * (0.5 + 0.5 * (rand or random).random())


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds from a ``Retry-After`` of delta-seconds or an HTTP-date; None if absent/garbled."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - now)


def _failed(body: Any) -> dict[int, str]:
    failed: dict[int, str] = {}
    errors = body.get("errors") if isinstance(body, dict) else None
    for item in errors if isinstance(errors, list) else []:
        if isinstance(item, dict) and isinstance(item.get("batch_index"), int):
            reason = ": ".join(str(item[k]) for k in ("reason", "field", "message") if item.get(k))
            failed[item["batch_index"]] = f"HTTP 207: {reason or 'refused'}"
    return failed


def _summarise(body: Any) -> str:
    text = body if isinstance(body, str) else repr(body)
    return text[:300]
