"""The application factory: the one place where relay is built, started and stopped.

Start-up runs the cleanup contexts in order (storage: open + migrate → readiness); shutdown
runs them backwards after aiohttp has stopped accepting and finished in-flight requests, so the
storage writer commits everything already acknowledged before the file is closed.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator

import msgspec
from aiohttp import web

from relay.api import ROUTES
from relay.api.bodies import MAX_BODY_BYTES
from relay.api.middleware import errors_middleware, metrics_middleware
from relay.api.openapi import build_openapi
from relay.api.routing import register
from relay.api.state import LIFECYCLE, METRICS, OPENAPI, SETTINGS, STORE, Lifecycle
from relay.observability import Metrics
from relay.settings import Settings
from relay.store import create_store

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        client_max_size=MAX_BODY_BYTES, middlewares=[metrics_middleware, errors_middleware]
    )
    metrics = Metrics()
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[LIFECYCLE] = Lifecycle()
    app[STORE] = create_store(settings, on_commit=metrics.observe_commit)
    app[OPENAPI] = msgspec.json.encode(build_openapi(ROUTES))
    register(app, ROUTES)
    app.cleanup_ctx.extend([storage_context, readiness_context])
    app.on_shutdown.append(_mark_unready)
    return app


async def storage_context(app: web.Application) -> AsyncIterator[None]:
    store = app[STORE]
    await store.open()
    log.info("storage open: %s", app[SETTINGS].storage.url)
    yield
    await store.close()
    log.info("storage closed")


async def readiness_context(app: web.Application) -> AsyncIterator[None]:
    lifecycle = app[LIFECYCLE]
    if not app[SETTINGS].customerio.has_track_credentials:
        log.warning("no [customerio] site_id/api_key: relay records everything, forwards nothing")
    else:
        log.warning("forwarding to Customer.io is not available in this release yet")
    lifecycle.forwarding = "disabled"
    lifecycle.ready = True
    yield
    lifecycle.ready = False


async def _mark_unready(app: web.Application) -> None:
    app[LIFECYCLE].ready = False


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    if not settings.server.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.server.tls_cert, settings.server.tls_key)
    return context


def serve(settings: Settings) -> None:
    """Run until SIGTERM/SIGINT, then shut down gracefully (in-flight writes finish)."""
    server = settings.server
    web.run_app(
        create_app(settings),
        host=server.host,
        port=server.port,
        ssl_context=ssl_context(settings),
        shutdown_timeout=server.shutdown_timeout_seconds,
        access_log=None,
        print=lambda message: log.info("%s", message.strip()),
    )
