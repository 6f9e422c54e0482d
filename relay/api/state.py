"""Typed keys for what the application and each request carry."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from relay.forward.worker import Forwarder
from relay.keys import KeyRecord
from relay.observability import Metrics
from relay.push.service import PushService
from relay.settings import Settings
from relay.store import Store


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

    @property
    def forwarding(self) -> str:
        return "disabled" if self.forwarder is None else self.forwarder.state

    @property
    def forwarding_problem(self) -> str | None:
        return None if self.forwarder is None else self.forwarder.degraded_reason


SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
METRICS = web.AppKey("metrics", Metrics)
LIFECYCLE = web.AppKey("lifecycle", Lifecycle)
OPENAPI = web.AppKey("openapi", bytes)
PUSH = web.AppKey("push", PushService)
CALLER = web.RequestKey("caller", Caller)
