"""The dashboard: server-rendered pages under /ui/ for QA and marketers (API.md "Dashboard").

auth.py       login (admin keys only), logout, the session gate, CSRF checks
sessions.py   in-memory sessions
fleet.py      /ui/                 fleet health and forwarding
delivery.py   /ui/deliveries/{id}  a delivery's funnel and timeline
push_form.py  /ui/test-push        the test-push form
segments.py   /ui/segments         sizes, history, exports, sync
figures.py    what the pages show, through the Store; snapshots.py keeps the expensive
              figures as background snapshots; charts.py draws inline SVG
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from relay.api.state import SETTINGS, STORE
from relay.ui import auth, delivery, fleet, push_form, segments
from relay.ui.figures import Dashboard
from relay.ui.render import STATIC, environment
from relay.ui.sessions import SessionStore
from relay.ui.snapshots import refresh_loop
from relay.ui.state import DASHBOARD, SESSIONS, TEMPLATES

REFRESH_CHECK_SECONDS = 30.0


async def _to_fleet(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther("/ui/")


def setup_dashboard(app: web.Application) -> None:
    """Routes, static assets and the snapshot worker of /ui/ (after the API's routes)."""
    app[SESSIONS] = SessionStore()
    app[DASHBOARD] = Dashboard(app[STORE], app[SETTINGS])
    app[TEMPLATES] = environment()
    router = app.router
    router.add_get("/ui", _to_fleet)
    router.add_get("/ui/", fleet.fleet)
    router.add_get("/ui/login", auth.login_form)
    router.add_post("/ui/login", auth.login)
    router.add_post("/ui/logout", auth.logout)
    router.add_post("/ui/outbox/replay", fleet.replay)
    router.add_post("/ui/deliveries", fleet.find_delivery)
    router.add_get("/ui/deliveries/{delivery_id}", delivery.delivery)
    router.add_get("/ui/test-push", push_form.push_form)
    router.add_post("/ui/test-push", push_form.send)
    router.add_get("/ui/segments", segments.segments)
    router.add_post("/ui/segments/{name}/sync", segments.sync)
    router.add_get("/ui/segments/{name}/export", segments.export)
    router.add_static("/ui/static", STATIC, name="ui-static")
    router.add_route("*", "/ui/{tail:.*}", auth.not_found)
    app.cleanup_ctx.append(snapshot_context)


async def snapshot_context(app: web.Application) -> AsyncIterator[None]:
    """Keep the expensive figures of every app warm, from the first page an admin opens."""
    dashboard = app[DASHBOARD]

    async def refresh_once_in_use() -> None:
        await dashboard.in_use.wait()
        await refresh_loop(dashboard.all, sorted(app[SETTINGS].app_ids), REFRESH_CHECK_SECONDS)

    task = asyncio.create_task(refresh_once_in_use(), name="relay-ui-snapshots")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    for figure in dashboard.all:
        await figure.cancel()
