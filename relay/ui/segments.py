"""/ui/segments — each built-in segment: its size now and over the last 14 days, its
parameters, CSV/JSONL export links and a sync button."""

from __future__ import annotations

import asyncio

from aiohttp import web

from relay import timeutil
from relay.api.segments import find_segment, parse_segment_request, stream_export
from relay.api.state import SETTINGS, STORE
from relay.errors import ClientError
from relay.segments.definitions import SEGMENTS
from relay.segments.query import build_query
from relay.timeutil import format_timestamp
from relay.ui import charts
from relay.ui.auth import page
from relay.ui.figures import SegmentHistory
from relay.ui.render import SECURITY_HEADERS, render
from relay.ui.state import DASHBOARD, VIEWER


def history_charts(history: SegmentHistory) -> dict[str, object]:
    labels = [(format_timestamp(at) or "")[:10] for at in history.as_ofs]
    return {
        name: charts.sparkline(sizes, labels, f"{name}: size at each day's end", f"h-{name}")
        for name, sizes in history.sizes.items()
    }


async def _page(
    request: web.Request, message: str | None = None, error: str | None = None
) -> web.StreamResponse:
    app_id = request[VIEWER].app_id
    dashboard = request.app[DASHBOARD]
    sizes, history = await asyncio.gather(
        dashboard.segments.get(app_id), dashboard.history.get(app_id)
    )
    return render(
        request,
        "segments.html",
        segments=list(SEGMENTS.values()),
        sizes=sizes,
        history=history,
        history_charts=history_charts(history.value) if history else {},
        history_labels=[(format_timestamp(a) or "")[:10] for a in history.value.as_ofs]
        if history
        else [],
        can_sync=request.app[SETTINGS].customerio.has_track_credentials,
        message=message,
        error=error,
    )


@page
async def segments(request: web.Request) -> web.StreamResponse:
    return await _page(request)


@page
async def sync(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    segment = find_segment(request.match_info["name"])  # unknown → the 404 page
    if not settings.customerio.has_track_credentials:
        return await _page(
            request,
            error="Sync needs [customerio] site_id and api_key in relay's config.",
        )
    app_id = request[VIEWER].app_id
    query = build_query(
        segment,
        dict(segment.params),
        timeutil.now(),
        app_id,
        settings.attribution.conversion_events,
        ("customer_id",),
    )
    added, removed = await request.app[STORE].sync_segment(
        app_id, segment.name, query, settings.segments.customerio_ids.get(segment.name)
    )
    return await _page(
        request, message=f"{segment.name}: {added} joined and {removed} left in Customer.io."
    )


@page
async def export(request: web.Request) -> web.StreamResponse:
    """The API's export (same query, same encodings), for a browser holding a session."""
    try:
        parsed = parse_segment_request(
            request.match_info["name"], dict(request.query), timeutil.now()
        )
    except ClientError as exc:
        if exc.status == 404:
            raise
        return await _page(request, error=exc.detail)
    query = build_query(
        parsed.segment,
        parsed.values,
        parsed.as_of,
        request[VIEWER].app_id,
        request.app[SETTINGS].attribution.conversion_events,
    )
    return await stream_export(request, parsed, query, SECURITY_HEADERS)
