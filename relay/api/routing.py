"""The route table: one `Route` per endpoint feeds both aiohttp's router and /openapi.json.

A route names its role; the wrapper authenticates the key, checks the role and picks the app
(``?app=`` for admin keys) before the handler runs, so handlers start from a `Caller`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from types import UnionType
from typing import Any

from aiohttp import web

from relay.api.state import CALLER, SETTINGS, STORE, Caller
from relay.errors import Forbidden, NotFound, Unauthenticated
from relay.keys import Role, grants

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    where: str  # "path" or "query"
    description: str
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})
    required: bool = True


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    role: Role | None  # None: no authentication
    body: type | None = None
    # A struct, a union of structs (``A | B``), bytes (a raw body) or None (no body).
    responses: dict[int, type | UnionType | None] = field(default_factory=dict)
    params: tuple[Param, ...] = ()
    content_types: tuple[str, ...] = ("application/json",)  # of a ``bytes`` response


APP_PARAM = Param(
    "app", "query", "Act in this app instead of the key's own (admin keys only).", required=False
)


def register(app: web.Application, routes: Sequence[Route]) -> None:
    for route in routes:
        handler = route.handler if route.role is None else _authenticated(route.role, route.handler)
        app.router.add_route(route.method, route.path, handler)


def _authenticated(role: Role, handler: Handler) -> Handler:
    async def wrapper(request: web.Request) -> web.StreamResponse:
        request[CALLER] = await authorize(request, role)
        return await handler(request)

    wrapper.__name__ = handler.__name__
    wrapper.__doc__ = handler.__doc__
    return wrapper


async def authorize(request: web.Request, role: Role) -> Caller:
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthenticated("send Authorization: Bearer <key>")
    key = await request.app[STORE].authenticate(secret.strip())
    if key is None:
        raise Unauthenticated("unknown or revoked key")
    if not grants(key.role, role):
        raise Forbidden(f"this needs {_ROLE_NEEDED[role]}")
    app_id = key.app_id
    if "app" in request.query:
        if key.role != "admin":
            raise Forbidden("?app= needs an admin key")
        app_id = request.query["app"]
    if app_id not in request.app[SETTINGS].app_ids:
        raise NotFound(f"app {app_id!r} is not configured")
    return Caller(key, app_id)


_ROLE_NEEDED = {
    "app": "a key",
    "server": "a server or admin key; app keys may not merge, delete or suppress people",
    "admin": "an admin key; app and server keys may only write",
}


def caller(request: web.Request) -> Caller:
    value: Caller = request[CALLER]
    return value
