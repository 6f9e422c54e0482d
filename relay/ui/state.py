"""Typed keys for what the dashboard keeps on the application and on each request."""

from __future__ import annotations

import jinja2
from aiohttp import web

from relay.ui.figures import Dashboard
from relay.ui.sessions import Session, SessionStore

SESSIONS = web.AppKey("ui_sessions", SessionStore)
DASHBOARD = web.AppKey("ui_dashboard", Dashboard)
TEMPLATES = web.AppKey("ui_templates", jinja2.Environment)
VIEWER = web.RequestKey("ui_viewer", Session)
