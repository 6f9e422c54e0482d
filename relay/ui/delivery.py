"""/ui/deliveries/{id} — a delivery's funnel with rates, and its QA timeline."""

from __future__ import annotations

from aiohttp import web

from relay import timeutil
from relay.api.limits import check_id
from relay.api.state import STORE
from relay.domain import Store
from relay.errors import FieldError, NotFound
from relay.models.push import DeliveryTrace
from relay.ui.auth import page
from relay.ui.render import render
from relay.ui.state import VIEWER

MAX_PLATFORM_LOOKUPS = 20


async def ios_without_delivered(store: Store, app_id: str, trace: DeliveryTrace) -> list[str]:
    """iOS tokens that got the push but reported no ``delivered``: the Notification Service
    Extension reports it to Customer.io directly, so relay sees it only if the app does."""
    received = {e.token for e in trace.timeline if e.metric != "delivered"}
    delivered = {e.token for e in trace.timeline if e.metric == "delivered"}
    missing = []
    for token in sorted(received - delivered)[:MAX_PLATFORM_LOOKUPS]:
        try:
            (target,) = await store.push_targets(app_id, token=token)
        except (NotFound, ValueError):
            continue
        if target.platform == "ios":
            missing.append(token)
    return missing


@page
async def delivery(request: web.Request) -> web.StreamResponse:
    delivery_id = request.match_info["delivery_id"]
    errors: list[FieldError] = []
    check_id(errors, "delivery_id", delivery_id)
    if errors or not delivery_id:
        raise NotFound(f"no delivery {delivery_id[:150]!r}")
    store, app_id = request.app[STORE], request[VIEWER].app_id
    trace = await store.delivery_trace(app_id, delivery_id)
    funnel = trace.funnel
    return render(
        request,
        "delivery.html",
        trace=trace,
        funnel=funnel,
        # without deliveries reported, opens are measured against what was sent
        open_base=funnel.delivered or funnel.sent,
        ios_missing=await ios_without_delivered(store, app_id, trace),
        now=timeutil.now(),
    )
