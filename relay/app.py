"""The application factory: the one place where relay is built, started and stopped.

Start-up runs the cleanup contexts in order (storage: open + migrate → forwarder →
readiness); shutdown runs them backwards after aiohttp has stopped accepting and finished
in-flight requests, so the forwarder settles its last request and the storage writer commits
everything already acknowledged before the file is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import msgspec
from aiohttp import web

from relay.api import ROUTES
from relay.api.access import access_middleware
from relay.api.bodies import MAX_BODY_BYTES
from relay.api.middleware import backpressure_middleware, errors_middleware
from relay.api.openapi import build_openapi
from relay.api.routing import register
from relay.api.state import LIFECYCLE, METRICS, OPENAPI, PUSH, SETTINGS, STORE, Lifecycle
from relay.domain import create_store
from relay.errors import Unavailable
from relay.forward.client import pipelines_client, track_base_url, track_client
from relay.forward.worker import Forwarder
from relay.observability import Metrics
from relay.push.hygiene import mark_stale_tokens
from relay.push.providers import Providers
from relay.push.service import PushService
from relay.retention import prune
from relay.settings import Settings
from relay.ui import setup_dashboard

log = logging.getLogger(__name__)

PRUNE_INTERVAL_SECONDS = 86_400


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        client_max_size=MAX_BODY_BYTES,
        middlewares=[
            access_middleware,
            errors_middleware,
            backpressure_middleware,
        ],
    )
    metrics = Metrics()
    # The loader has read the plan file already; settings built in code read it here, at
    # start-up, rather than on the first event.
    settings.tracking_plan.plan  # noqa: B018
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[LIFECYCLE] = Lifecycle()
    app[STORE] = create_store(settings, on_commit=metrics.observe_commit)
    app[OPENAPI] = msgspec.json.encode(build_openapi(ROUTES))
    providers = Providers(settings)
    app[PUSH] = PushService(app[STORE], providers, settings, metrics)
    register(app, ROUTES)
    app.cleanup_ctx.extend(
        [
            storage_context,
            forwarding_context,
            push_providers_context(providers),
            hygiene_context,
            retention_context,
            readiness_context,
        ]
    )
    setup_dashboard(app)  # /ui/: its routes, assets and snapshot worker
    app.on_shutdown.append(_mark_unready)
    return app


async def storage_context(app: web.Application) -> AsyncIterator[None]:
    store = app[STORE]
    await store.open()
    log.info("storage open: %s", app[SETTINGS].storage.url)
    yield
    await store.close()
    log.info("storage closed")


async def forwarding_context(app: web.Application) -> AsyncIterator[None]:
    """The forwarder drains the outbox while the app runs; stops after its current request."""
    settings = app[SETTINGS]
    if not settings.customerio.has_track_credentials:
        log.warning(
            "no [customerio] site_id/api_key: relay records everything and forwards nothing;"
            " the outbox keeps what Customer.io must receive for when credentials are set"
        )
        yield
        return
    async with aiohttp.ClientSession() as session:
        timeout = settings.forwarding.request_timeout_seconds
        forwarder = Forwarder(
            app[STORE],
            track_client(session, settings.customerio, timeout),
            settings.forwarding,
            app[METRICS],
            pipelines=pipelines_client(session, settings.customerio, timeout),
        )
        task = asyncio.create_task(forwarder.run(), name="relay-forwarder")
        app[LIFECYCLE].forwarder = forwarder
        log.info("forwarding to Customer.io at %s", track_base_url(settings.customerio))
        yield
        forwarder.stopping.set()
        try:
            await asyncio.wait_for(task, timeout=settings.server.shutdown_timeout_seconds)
        except TimeoutError:
            log.warning("forwarder did not stop in time; its unsettled rows will be resent")
        app[LIFECYCLE].forwarder = None


def push_providers_context(providers: Providers):  # type: ignore[no-untyped-def]
    """APNs/FCM clients are built on first use (inside the loop) and closed at shutdown."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        yield
        await providers.close()

    return context


async def hygiene_context(app: web.Application) -> AsyncIterator[None]:
    """Every ``hygiene_interval_seconds``: tokens unseen for ``stale_after_days`` go stale."""
    push = app[SETTINGS].push
    store, metrics = app[STORE], app[METRICS]

    async def mark() -> None:
        marked = await mark_stale_tokens(store, push.stale_after_days)
        metrics.stale_marked.inc(marked)
        if marked:
            log.info("marked %d tokens stale (unseen for %s days)", marked, push.stale_after_days)

    async with periodically("token hygiene", mark, push.hygiene_interval_seconds):
        yield


async def retention_context(app: web.Application) -> AsyncIterator[None]:
    """At start-up, then daily: delete what ``[retention]`` no longer keeps (in the background:
    start-up does not wait for it, and ingest goes on between its chunks)."""
    store, metrics = app[STORE], app[METRICS]

    async def prune_now() -> None:
        result = await prune(store)
        metrics.outbox_expired.inc(result.outbox_expired)

    async with periodically("retention prune", prune_now, PRUNE_INTERVAL_SECONDS):
        yield


@contextlib.asynccontextmanager
async def periodically(
    what: str, job: Callable[[], Awaitable[None]], interval: float
) -> AsyncIterator[None]:
    """Run ``job`` now and then every ``interval`` seconds in the background, while the
    context is open. A storage fault skips a round with a warning (``/readyz`` says it); any
    other failure is logged with its traceback and the next round tries again."""

    async def run() -> None:
        while True:
            try:
                await job()
            except Unavailable as exc:
                log.warning("%s skipped: %s", what, exc.detail)
            except Exception:
                log.exception("%s failed; trying again next interval", what)
            await asyncio.sleep(interval)

    task = asyncio.create_task(run(), name=f"relay-{what.replace(' ', '-')}")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def readiness_context(app: web.Application) -> AsyncIterator[None]:
    app[LIFECYCLE].ready = True
    yield
    app[LIFECYCLE].ready = False


async def _mark_unready(app: web.Application) -> None:
    app[LIFECYCLE].ready = False


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    if not settings.server.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.server.tls_cert, settings.server.tls_key)
    return context
