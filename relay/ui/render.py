"""HTML responses: jinja2 templates (autoescaped), security headers, server timing."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any, TypeVar

import jinja2
from aiohttp import web

from relay.api.state import SETTINGS
from relay.timeutil import format_timestamp
from relay.ui.state import TEMPLATES, VIEWER

HERE = Path(__file__).parent
STATIC = HERE / "static"
STARTED = web.RequestKey("ui_started", float)

# Everything comes from relay itself: a page that tries anything else fails loudly in the
# browser console (and the browser tests fail on any console error).
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _static_version() -> str:
    digest = hashlib.sha256()
    for path in sorted(STATIC.iterdir()):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["static_version"] = _static_version()
    env.filters["timestamp"] = _timestamp
    env.filters["number"] = lambda n: f"{n:,}".replace(",", "\u2009")  # thin space groups
    env.filters["percent"] = _percent
    env.filters["duration"] = _duration
    return env


def _timestamp(value: float | None) -> str:
    return format_timestamp(value) or "—"


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "—"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    viewer = request.get(VIEWER)
    settings = request.app[SETTINGS]
    body = (
        request.app[TEMPLATES]
        .get_template(template)
        .render(
            viewer=viewer,
            csrf=viewer.csrf if viewer else "",
            app_id=viewer.app_id if viewer else "",
            apps=sorted(settings.app_ids),
            path=request.path,
            **context,
        )
    )
    response = web.Response(status=status, text=body, content_type="text/html")
    return finish(request, response)


R = TypeVar("R", bound=web.StreamResponse)


def finish(request: web.Request, response: R) -> R:
    """Security headers and Server-Timing (time spent on the page in relay) on any answer."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    started = request.get(STARTED)
    if started is not None:
        elapsed = (time.perf_counter() - started) * 1000
        response.headers["Server-Timing"] = f"app;dur={elapsed:.1f}"
    return response


def redirect(request: web.Request, location: str) -> web.StreamResponse:
    return finish(request, web.Response(status=303, headers={"Location": location}))
