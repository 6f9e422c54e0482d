"""The tracking plan at the Customer.io-compatible doors: count what a check finds and, in
enforce mode, refuse the call as Customer.io refuses one (naming the field the client sent)."""

from __future__ import annotations

from typing import Any

from relay.compat.actions import Context
from relay.compat.values import Refused

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
