"""Login, logout and the gate every dashboard page passes: an admin key opens a session
(cookie: HttpOnly, SameSite=Strict, Secure under HTTPS); every form carries a CSRF token."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from aiohttp import web

from relay.api.state import CALLER, SETTINGS, STORE, Caller
from relay.errors import ClientError, NotFound, Unavailable
from relay.ui.render import STARTED, finish, redirect, render
from relay.ui.sessions import COOKIE, LOGIN_COOKIE, new_token, tokens_match
from relay.ui.state import DASHBOARD, SESSIONS, VIEWER

Page = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_KEY_CHARS = 4096


def is_https(request: web.Request) -> bool:
    return request.secure or request.app[SETTINGS].server.public_url.startswith("https://")


def _cookie(request: web.Request, response: web.StreamResponse, name: str, value: str) -> None:
    response.set_cookie(
        name, value, path="/ui/", httponly=True, samesite="Strict", secure=is_https(request)
    )


def _safe_next(target: str | None) -> str:
    """Only a dashboard path of this relay: never another site (an open redirect)."""
    if target and target.startswith("/ui/") and "//" not in target and "\\" not in target:
        return target
    return "/ui/"


def page(handler: Page) -> Page:
    """Require a live session of an admin key; apply ``?app=``; check POSTs' CSRF token."""

    @functools.wraps(handler)
    async def gate(request: web.Request) -> web.StreamResponse:
        request[STARTED] = time.perf_counter()
        sessions = request.app[SESSIONS]
        session = sessions.find(request.cookies.get(COOKIE))
        key = None
        if session is not None:
            key = await request.app[STORE].authenticate(session.secret)
            if key is None or key.role != "admin":  # revoked since: the session ends
                sessions.close(session.id)
                session = None
        if session is None or key is None:
            target = "/ui/login"
            if request.method == "GET" and request.path != "/ui/":
                target += "?next=" + quote(request.path_qs, safe="")
            return redirect(request, target)
        request[VIEWER] = session
        request.app[DASHBOARD].in_use.set()
        app_id = request.query.get("app")
        if app_id is not None:
            if app_id not in request.app[SETTINGS].app_ids:
                return render(
                    request,
                    "error.html",
                    404,
                    title="Unknown app",
                    message=f"relay has no app {app_id!r}.",
                )
            session.app_id = app_id
        request[CALLER] = Caller(key, session.app_id)
        if request.method == "POST":
            form = await request.post()
            csrf = form.get("csrf")
            if not session.csrf_ok(csrf if isinstance(csrf, str) else None):
                return render(
                    request,
                    "error.html",
                    403,
                    title="The form expired",
                    message="Reload the page and submit the form again.",
                )
        try:
            response = await handler(request)
            return response if response.prepared else finish(request, response)
        except NotFound as exc:
            return render(request, "error.html", 404, title="Not found", message=exc.detail)
        except Unavailable as exc:
            response = render(
                request, "error.html", 503, title="Storage unavailable", message=exc.detail
            )
            response.headers["Retry-After"] = str(exc.retry_after)
            return response
        except ClientError as exc:
            return render(request, "error.html", exc.status, title=exc.title, message=exc.detail)

    return gate


async def login_form(request: web.Request) -> web.StreamResponse:
    request[STARTED] = time.perf_counter()
    return await _login_page(request, None, request.query.get("next"))


async def _login_page(
    request: web.Request, error: str | None, target: str | None
) -> web.StreamResponse:
    token = request.cookies.get(LOGIN_COOKIE) or new_token()
    response = render(
        request,
        "login.html",
        login_csrf=token,
        error=error,
        next=_safe_next(target),
    )
    _cookie(request, response, LOGIN_COOKIE, token)
    return response


async def login(request: web.Request) -> web.StreamResponse:
    request[STARTED] = time.perf_counter()
    form = await request.post()
    csrf, secret, value = form.get("csrf"), form.get("key"), form.get("next")
    target = value if isinstance(value, str) else None
    if not tokens_match(request.cookies.get(LOGIN_COOKIE), csrf if isinstance(csrf, str) else None):
        return await _login_page(request, "The form expired. Enter the key again.", target)
    secret = secret.strip() if isinstance(secret, str) else ""
    if not secret:
        return await _login_page(request, "Enter an admin key.", target)
    key = None
    if len(secret) <= MAX_KEY_CHARS:
        key = await request.app[STORE].authenticate(secret)
    if key is None or key.role != "admin":
        # app keys ship inside apps (public); server keys only write: neither reads here
        return await _login_page(request, "That is not an admin key of this relay.", target)
    session = request.app[SESSIONS].open(secret, key.app_id)
    response = redirect(request, _safe_next(target))
    _cookie(request, response, COOKIE, session.id)
    response.del_cookie(LOGIN_COOKIE, path="/ui/")
    return response


@page
async def logout(request: web.Request) -> web.StreamResponse:
    request.app[SESSIONS].close(request[VIEWER].id)
    response = redirect(request, "/ui/login")
    response.del_cookie(COOKIE, path="/ui/")
    return response


async def not_found(request: web.Request) -> web.StreamResponse:
    """Any other /ui/ path: the login page for strangers, a 404 page for the logged in."""

    @page
    async def missing(request: web.Request) -> web.StreamResponse:
        raise NotFound(f"no dashboard page at {request.path}")

    return await missing(request)
