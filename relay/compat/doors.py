"""What the Customer.io-compatible handlers do around storing a request's calls for data
health: collect the request's tracking-plan checks (counted in Prometheus as they happen),
hand their violations to the store with the calls, and observe the stored events' lateness."""

from __future__ import annotations

import msgspec
from aiohttp import web

from relay import timeutil
from relay.api.state import CALLER, METRICS, SETTINGS, STORE
from relay.domain.actions import Call, RecordEvent
from relay.tracking_plan import PlanTally

PLAN_TALLY = web.RequestKey("plan_tally", PlanTally)


def plan_tally(request: web.Request) -> PlanTally:
    """The request's tally: the `PlanObserver` of its translation context."""
    if PLAN_TALLY not in request:
        request[PLAN_TALLY] = PlanTally(request.app[METRICS].count_plan_check)
    return request[PLAN_TALLY]


async def apply_calls(request: web.Request, app_id: str, calls: list[Call]) -> list[Call]:
    """Store the calls (with the request's plan violations); returns the new ones."""
    tally = request.get(PLAN_TALLY)
    applied = await request.app[STORE].apply_calls(
        app_id, calls, tally.violations if tally is not None else None
    )
    plan, metrics, now = (
        request.app[SETTINGS].tracking_plan.plan,
        request.app[METRICS],
        timeutil.now(),
    )
    for call in applied:
        for action in call.actions:
            if isinstance(action, RecordEvent):
                event = action.event
                metrics.observe_lateness(plan, event.name, event.occurred_at, now)
                metrics.observe_properties(plan, event.name, msgspec.json.decode(event.properties))
    return applied


async def count_refused_plan_checks(request: web.Request) -> None:
    """A single call refused for the plan stores nothing, but its violations are counted."""
    tally, caller = request.get(PLAN_TALLY), request.get(CALLER)
    if tally is not None and caller is not None and tally.violations:
        await request.app[STORE].apply_calls(caller.app_id, [], tally.violations)
