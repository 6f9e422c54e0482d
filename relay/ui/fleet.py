"""/ui/ — fleet health (devices by status and platform, 30 days of token churn) and
forwarding (outbox, dead letters with a replay button, Customer.io's state)."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from aiohttp import web

from relay.api.state import LIFECYCLE, SETTINGS, STORE
from relay.timeutil import format_timestamp
from relay.ui import charts
from relay.ui.auth import page
from relay.ui.figures import Churn
from relay.ui.render import redirect, render
from relay.ui.state import DASHBOARD, VIEWER

SERIES = (
    ("new", "New tokens", "c-new"),
    ("replaced", "Tokens replaced by a refresh", "c-replaced"),
    ("invalid", "Tokens invalidated (by the day last seen)", "c-invalid"),
)


def churn_charts(churn: Churn) -> list[dict[str, object]]:
    labels = [(format_timestamp(day) or "")[:10] for day in churn.days]
    return [
        {
            "name": name,
            "title": title,
            "total": sum(churn.series[name]),
            "svg": charts.bars(churn.series[name], labels, title, css, f"churn-{name}"),
        }
        for name, title, css in SERIES
    ]


@page
async def fleet(request: web.Request) -> web.StreamResponse:
    app_id = request[VIEWER].app_id
    dashboard = request.app[DASHBOARD]
    devices, churn, outbox = await asyncio.gather(
        dashboard.devices.get(app_id),
        dashboard.churn.get(app_id),
        request.app[STORE].outbox_status(app_id),
    )
    lifecycle = request.app[LIFECYCLE]
    replayed = request.query.get("replayed", "")
    return render(
        request,
        "fleet.html",
        devices=devices,
        churn=churn,
        churn_charts=churn_charts(churn.value) if churn else [],
        churn_labels=[(format_timestamp(d) or "")[:10] for d in churn.value.days] if churn else [],
        outbox=outbox,
        forwarding=lifecycle.forwarding,
        forwarding_problem=lifecycle.forwarding_problem,
        backpressure=lifecycle.backpressure,
        credentials=request.app[SETTINGS].customerio.has_track_credentials,
        replayed=int(replayed) if replayed.isdigit() else None,
    )


@page
async def replay(request: web.Request) -> web.StreamResponse:
    replayed = await request.app[STORE].replay_outbox(request[VIEWER].app_id)
    return redirect(request, f"/ui/?replayed={replayed}")


@page
async def find_delivery(request: web.Request) -> web.StreamResponse:
    """The delivery look-up form (a POST, so that it carries the CSRF token like every form)."""
    value = (await request.post()).get("id")
    delivery_id = value.strip() if isinstance(value, str) else ""
    if not delivery_id:
        return redirect(request, "/ui/")
    return redirect(request, "/ui/deliveries/" + quote(delivery_id, safe=""))
