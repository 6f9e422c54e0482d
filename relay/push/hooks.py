"""Point aioapns and firebase-admin at local fakes (or at Apple and Google when no endpoint).

Why this module exists: neither library has a supported way to change its endpoint. aioapns
takes host and port from class attributes of its connection protocol; firebase-admin formats
the FCM URL into a private attribute of its messaging service (Google declined configurable
endpoints in the other Admin SDKs). relay's push sender calls these two builders for every
client it makes, with ``endpoint=None`` in production, so production and tests share one code
path and the private hooks live here only. Each hook sits in one function whose docstring names
the private attribute it relies on; :func:`check_hooks` fails loudly (a test runs it) when an
installed library no longer has them. Versions are pinned in ``pyproject.toml`` to the verified
ranges.

Usage (inside the running event loop; both libraries bind to the loop that first uses them)::

    apns = make_apns_client(key=p8_pem, key_id="KEY1234567", team_id="TEAM123456",
                            topic="com.example.app", endpoint=fake_apns.url)
    result = await apns.send_notification(NotificationRequest(token, {"aps": {...}}))
    await close_apns_client(apns)

    app = make_firebase_app("relay-app-default", project_id="demo", endpoint=fake_fcm.url,
                            credential=StaticTokenCredentials("test-token"))
    batch = await messaging.send_each_async([messaging.Message(fid=..., data={...})], app=app)
    await close_firebase_app(app)
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import ssl
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import firebase_admin
import google.auth.credentials
from aioapns import APNs
from aioapns.common import NotificationRequest, NotificationResult
from aioapns.connection import (
    APNsBaseConnectionPool,
    APNsDevelopmentClientProtocol,
    APNsKeyConnectionPool,
    APNsProductionClientProtocol,
    APNsTLSClientProtocol,
)
from firebase_admin import messaging

APNsErrorCallback = Callable[[NotificationRequest, NotificationResult], Awaitable[None]]
FCM_SEND_PATH = "/v1/projects/{project_id}/messages:send"


# -- aioapns ----------------------------------------------------------------------------


def make_apns_client(
    *,
    key: str,
    key_id: str,
    team_id: str,
    topic: str,
    endpoint: str | None = None,
    use_sandbox: bool = False,
    ssl_context: ssl.SSLContext | None = None,
    max_connections: int = 10,
    max_connection_attempts: int = 5,
    err_func: APNsErrorCallback | None = None,
) -> APNs:
    """An aioapns token-auth (.p8) client; with ``endpoint``, one that talks to that server.

    ``key`` is the PEM text of the .p8 key (aioapns 4 takes text, 3.x took a path).
    ``endpoint`` ``http://HOST:PORT`` means HTTP/2 over plain TCP (h2c, prior knowledge);
    ``https://HOST:PORT`` means TLS with ``ssl_context`` (whose CA must trust the fake's
    certificate; HOST is the name verified). ``None`` is Apple (``use_sandbox`` picks which).
    Must run inside the event loop that will use the client: aioapns keeps the loop current at
    construction.

    Private hook (aioapns 4.0): after construction, ``apns.pool.protocol_class`` is replaced by
    a subclass of ``APNsDevelopmentClientProtocol``/``APNsProductionClientProtocol`` whose
    ``APNS_SERVER``/``APNS_PORT`` class attributes name the endpoint (the pool's
    ``_create_connection`` connects to exactly those, and ``APNS_SERVER`` is also the ``host``
    header and TLS server name); for h2c ``apns.pool.ssl_context`` is set to None.
    """
    asyncio.get_running_loop()  # fail here, not later with "Event loop is closed"
    apns = APNs(
        key=key,
        key_id=key_id,
        team_id=team_id,
        topic=topic,
        use_sandbox=use_sandbox,
        ssl_context=ssl_context,
        max_connections=max_connections,
        max_connection_attempts=max_connection_attempts,
        err_func=err_func,
    )
    if endpoint is None:
        return apns
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname or not parts.port:
        raise ValueError(f"APNs endpoint must be http(s)://host:port, not {endpoint!r}")
    base = apns.pool.protocol_class
    apns.pool.protocol_class = type(
        f"Local{base.__name__}",
        (base,),
        {"APNS_SERVER": parts.hostname, "APNS_PORT": parts.port},
    )
    if parts.scheme == "http":
        apns.pool.ssl_context = None
    elif ssl_context is None:
        raise ValueError("an https APNs endpoint needs an ssl_context that trusts its certificate")
    return apns


async def close_apns_client(apns: APNs) -> None:
    """Close every pooled connection and wait (up to a second) until aioapns has let go.

    aioapns has no public close; ``apns.pool.close()`` closes the transports and the pool drops
    each connection when asyncio reports it lost. Close only after sends have finished:
    aioapns retries a send whose connection closed under it on a new connection.
    """
    apns.pool.close()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(1.0):
            while apns.pool.connections:  # noqa: ASYNC110 - aioapns offers nothing to await
                await asyncio.sleep(0.01)


# -- firebase-admin ---------------------------------------------------------------------


class StaticTokenCredentials(google.auth.credentials.Credentials):
    """A Google credential holding a fixed OAuth access token, for fakes (public google-auth API).

    firebase-admin accepts any ``google.auth.credentials.Credentials`` as an App credential.
    ``refresh()`` just keeps the token, so an FCM answer of 401 (e.g. ``THIRD_PARTY_AUTH_ERROR``)
    makes the SDK re-send and then report the error, as with a service account, instead of
    failing with a ``RefreshError`` the way ``google.oauth2.credentials.Credentials(token=...)``
    would.
    """

    def __init__(self, token: str) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # google-auth leaves it unannotated
        self.token = token
        self._static_token = token

    def refresh(self, request: Any) -> None:
        self.token = self._static_token
        self.expiry = None


def make_firebase_app(
    name: str,
    *,
    project_id: str,
    credential: google.auth.credentials.Credentials | firebase_admin.credentials.Base,
    endpoint: str | None = None,
    http_timeout: float = 30.0,
) -> firebase_admin.App:
    """A named Firebase App for one relay app; with ``endpoint``, its FCM sends go there.

    ``name`` must be unique per live App (use one App per relay app and per event loop: the
    SDK's async HTTP client binds to the first loop that uses it). ``endpoint`` is
    ``http://HOST:PORT``; sends go to ``{endpoint}/v1/projects/{project_id}/messages:send``.
    ``None`` is Google. Release it with :func:`close_firebase_app`.

    Private hooks (firebase-admin 7.x): ``messaging._get_messaging_service(app)`` creates and
    caches the App's ``_MessagingService``, whose instance attribute ``_fcm_url`` (formatted
    once from the class constant ``FCM_URL``) is the URL ``send``/``send_each``/
    ``send_each_async`` post to; it is overwritten here.
    """
    app = firebase_admin.initialize_app(
        credential, {"projectId": project_id, "httpTimeout": http_timeout}, name=name
    )
    if endpoint is not None:
        service = messaging._get_messaging_service(app)
        service._fcm_url = endpoint.rstrip("/") + FCM_SEND_PATH.format(project_id=project_id)
    return app


async def close_firebase_app(app: firebase_admin.App) -> None:
    """Delete ``app``, closing its async HTTP client inside the running loop first.

    ``firebase_admin.delete_app`` closes the messaging service with ``asyncio.run(...)``, which
    fails inside a running loop and would close the client from the wrong loop; closing it here
    first makes that later close a no-op, and the delete runs in a worker thread.

    Private hook (firebase-admin 7.x): ``_MessagingService._async_client`` (an
    ``HttpxAsyncClient`` with ``aclose()``), reached via ``messaging._get_messaging_service``.
    """
    service = messaging._get_messaging_service(app)
    await service._async_client.aclose()
    await asyncio.to_thread(firebase_admin.delete_app, app)


# -- hook check ---------------------------------------------------------------------------


def check_hooks() -> None:
    """Raise RuntimeError naming what is missing if an installed library lost a hook used here.

    Builds a throwaway aioapns client and Firebase App on a private event loop in a worker
    thread (no network), so it can be called from sync or async code.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, _check_hooks()).result()


async def _check_hooks() -> None:
    _check_aioapns_classes()
    apns = APNs(key="unused", key_id="K", team_id="T", topic="t", use_sandbox=True)
    pool = apns.pool
    _require(isinstance(pool, APNsBaseConnectionPool), "aioapns APNs.pool (APNsBaseConnectionPool)")
    _require(
        isinstance(getattr(pool, "protocol_class", None), type)
        and issubclass(pool.protocol_class, APNsTLSClientProtocol),
        "aioapns APNsBaseConnectionPool.protocol_class",
    )
    _require(hasattr(pool, "ssl_context"), "aioapns APNsBaseConnectionPool.ssl_context")
    _require(hasattr(pool, "connections"), "aioapns APNsBaseConnectionPool.connections")
    pool.close()

    _require(
        callable(getattr(messaging, "_get_messaging_service", None)),
        "firebase_admin.messaging._get_messaging_service",
    )
    app = firebase_admin.initialize_app(
        StaticTokenCredentials("check"),
        {"projectId": "check-hooks"},
        name=f"relay-check-hooks-{uuid.uuid4()}",
    )
    try:
        service = messaging._get_messaging_service(app)
        url = getattr(service, "_fcm_url", None)
        _require(
            isinstance(url, str) and url.endswith(FCM_SEND_PATH.format(project_id="check-hooks")),
            "firebase_admin.messaging._MessagingService._fcm_url",
        )
        _require(
            "self._fcm_url" in inspect.getsource(type(service).send_each_async),
            "firebase_admin.messaging._MessagingService.send_each_async posting to _fcm_url",
        )
        client = getattr(service, "_async_client", None)
        _require(
            callable(getattr(client, "aclose", None)),
            "firebase_admin.messaging._MessagingService._async_client.aclose",
        )
    finally:
        await close_firebase_app(app)


def _check_aioapns_classes() -> None:
    for cls in (APNsDevelopmentClientProtocol, APNsProductionClientProtocol):
        _require(
            isinstance(getattr(cls, "APNS_SERVER", None), str),
            f"aioapns {cls.__name__}.APNS_SERVER",
        )
        _require(
            isinstance(getattr(cls, "APNS_PORT", None), int), f"aioapns {cls.__name__}.APNS_PORT"
        )
    source = inspect.getsource(APNsKeyConnectionPool._create_connection)
    for needle in ("protocol_class.APNS_SERVER", "protocol_class.APNS_PORT", "self.ssl_context"):
        _require(
            needle in source, f"aioapns APNsKeyConnectionPool._create_connection using {needle}"
        )


def _require(condition: bool, hook: str) -> None:
    if not condition:
        raise RuntimeError(
            f"push library hook missing: {hook}. relay.push.hooks relies on it to point "
            "aioapns/firebase-admin at local endpoints; re-verify the installed version and "
            "update the hook and the pin in pyproject.toml."
        )
