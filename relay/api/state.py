"""Typed keys for what the application and each request carry."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web

from relay.domain import Store
from relay.forward.worker import Forwarder
from relay.keys import KeyRecord
from relay.observability import Metrics
from relay.push.service import PushService
from relay.settings import Settings


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated key and the app this request acts in."""

    key: KeyRecord
    app_id: str

    @property
    def is_admin(self) -> bool:
        return self.key.role == "admin"


@dataclass(slots=True)
class Lifecycle:
    """What readiness reports: set by the cleanup contexts as they start and stop."""

    ready: bool = False
    forwarder: Forwarder | None = None
    stopping: bool = False  # a graceful stop began: answers close their connections
    in_flight: int = 0  # requests being handled (a graceful stop waits for them)
    drained: asyncio.Event = field(default_factory=asyncio.Event)  # set while none are
    # set near the end of a graceful stop: bodies still arriving are answered 503
    stop_reading: asyncio.Event = field(default_factory=asyncio.Event)

    def request_started(self) -> None:
        self.in_flight += 1
        self.drained.clear()

    def request_finished(self) -> None:
        self.in_flight -= 1
        if not self.in_flight:
            self.drained.set()

    @property
    def forwarding(self) -> str:
        return "disabled" if self.forwarder is None else self.forwarder.state

    @property
    def forwarding_problem(self) -> str | None:
        return None if self.forwarder is None else self.forwarder.degraded_reason

    @property
    def backpressure(self) -> bool:
        """Writes must wait for Customer.io to catch up (never while forwarding is disabled)."""
        return self.forwarder is not None and self.forwarder.backlogged


SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
METRICS = web.AppKey("metrics", Metrics)
LIFECYCLE = web.AppKey("lifecycle", Lifecycle)
OPENAPI = web.AppKey("openapi", bytes)
PUSH = web.AppKey("push", PushService)
CALLER = web.RequestKey("caller", Caller)
# the request's body was left unread (a timeout, a stop): its connection closes after answering
CLOSE_AFTER = web.RequestKey("close_after", bool)
