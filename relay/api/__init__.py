"""The HTTP API: every route relay serves, in one table."""

from __future__ import annotations

from relay.api import (
    devices,
    health,
    identity,
    ingest,
    operations,
    outbox,
    push,
    rejected,
    segments,
)
from relay.api.routing import Route
from relay.compat import pipelines, track

ROUTES: list[Route] = [
    *operations.ROUTES,
    *devices.ROUTES,
    *identity.ROUTES,
    *ingest.ROUTES,
    *outbox.ROUTES,
    *rejected.ROUTES,
    *health.ROUTES,
    *push.ROUTES,
    *segments.ROUTES,
    *pipelines.ROUTES,
    *track.ROUTES,
]
