"""An event at the Customer.io-compatible doors: the retention horizon, aliases and the
tracking plan (count what a check finds and, in enforce mode, refuse the call as Customer.io
refuses one, naming the field the client sent), then the event relay stores."""

from __future__ import annotations

from typing import Any

import msgspec
from ulid import ULID

from relay.compat.timestamps import retained
from relay.compat.values import Refused
from relay.domain.actions import Context
from relay.facts import NewEvent

REASON = "tracking_plan"


def follow_plan(context: Context, name: str, properties: dict[str, Any], field: str) -> None:
    """``name`` is canonical; ``field`` is where the client put the properties (``data``,
    ``attributes``, ``properties``), so an error path names what the client can fix."""
    plan = context.settings.tracking_plan
    check = plan.inspect(name, properties, field)
    if check is None:
        return
    context.observe_plan(check)
    if check.violations and plan.enforced:
        first, *others = check.violations
        message = first.message + "".join(f"; {v.path}: {v.message}" for v in others)
        raise Refused(first.path, message, reason=REASON)


def admitted_event(
    context: Context,
    name: str,
    properties: dict[str, Any],
    field: str,
    at: float,
    who: tuple[str | None, str | None],
    client_id: str | None,
) -> NewEvent:
    """The event to store for a call (``who`` = customer id, anonymous id), or `Refused`:
    older than the retention horizon, or breaking an enforced tracking plan."""
    retained("events", at, context.settings.retention, context.now)
    canonical = context.settings.events.canonical_name(name)
    follow_plan(context, canonical, properties, field)
    customer_id, anonymous_id = who
    return NewEvent(
        client_id=client_id or f"relay-{ULID()}",
        name=canonical,
        original_name=name,
        customer_id=customer_id,
        anonymous_id=anonymous_id,
        token=None,
        occurred_at=at,
        properties=msgspec.json.encode(properties).decode(),
    )
