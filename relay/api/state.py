"""Typed keys for what the application and each request carry."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from relay.keys import KeyRecord
from relay.observability import Metrics
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
    ready: bool = False
    forwarding: str = "disabled"


SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
METRICS = web.AppKey("metrics", Metrics)
LIFECYCLE = web.AppKey("lifecycle", Lifecycle)
OPENAPI = web.AppKey("openapi", bytes)
CALLER = web.RequestKey("caller", Caller)
