"""Provider clients per relay app, built lazily inside the running loop and reused.

aioapns fixes sandbox/production per client, so APNs has one client per (app, environment);
FCM has one Firebase App per relay app. `configuration_problem` names the setting an app is
missing for a platform, before anything is sent.
"""

from __future__ import annotations

import asyncio
import ssl
import warnings
from pathlib import Path

import firebase_admin
from aioapns import APNs
from aioapns.common import NotificationRequest, PushType
from firebase_admin import credentials, messaging

from relay.push.hooks import (
    StaticTokenCredentials,
    close_apns_client,
    close_firebase_app,
    make_apns_client,
    make_firebase_app,
)
from relay.push.outcomes import Kind, ProviderAnswer, classify_apns, classify_fcm
from relay.settings import AppSettings, Settings

APNS_TIME_TO_LIVE = 3600
FCM_FAKE_TOKEN = "relay-static-test-token"


class ConfigurationError(Exception):
    """An app's push settings cannot work; the message names the app and the setting."""


def configuration_problem(app: AppSettings, platform: str) -> str | None:
    if platform == "ios":
        apns = app.apns
        missing = [
            f"apps.apns.{name}"
            for name in ("key_path", "key_id", "team_id", "topic")
            if not getattr(apns, name)
        ]
    else:
        fcm = app.fcm
        missing = [] if fcm.credentials_path or fcm.endpoint else ["apps.fcm.credentials_path"]
        if not fcm.credentials_path and not fcm.project_id:
            missing.append("apps.fcm.project_id")
    if not missing:
        return None
    provider = "APNs" if platform == "ios" else "FCM"
    return f"app {app.id!r} has no {provider} credentials: set {', '.join(missing)}"


class Providers:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._apns: dict[tuple[str, str], APNs] = {}
        self._fcm: dict[str, firebase_admin.App] = {}
        self._lock = asyncio.Lock()

    def _app(self, app_id: str) -> AppSettings:
        app = self._settings.app(app_id)
        assert app is not None
        return app

    async def apns(self, app_id: str, environment: str) -> APNs:
        async with self._lock:
            client = self._apns.get((app_id, environment))
            if client is None:
                client = self._apns[(app_id, environment)] = self._build_apns(app_id, environment)
            return client

    def _build_apns(self, app_id: str, environment: str) -> APNs:
        settings = self._app(app_id).apns
        try:
            key = Path(settings.key_path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(
                f"app {app_id!r}: cannot read apps.apns.key_path {settings.key_path!r}: {exc}"
            ) from None
        context = None
        if settings.endpoint.startswith("https://"):
            context = ssl.create_default_context(cafile=settings.ca_path or None)
        try:
            return make_apns_client(
                key=key,
                key_id=settings.key_id,
                team_id=settings.team_id,
                topic=settings.topic,
                endpoint=settings.endpoint or None,
                use_sandbox=environment == "sandbox",
                ssl_context=context,
                max_connection_attempts=2,
                err_func=_quiet,
            )
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(
                f"app {app_id!r}: apps.apns.key_path is not a usable .p8 key: {exc}"
            ) from None

    async def fcm(self, app_id: str) -> firebase_admin.App:
        async with self._lock:
            client = self._fcm.get(app_id)
            if client is None:
                client = self._fcm[app_id] = self._build_fcm(app_id)
            return client

    def _build_fcm(self, app_id: str) -> firebase_admin.App:
        settings = self._app(app_id).fcm
        try:
            if settings.credentials_path:
                credential = credentials.Certificate(settings.credentials_path)
                project_id = settings.project_id or credential.project_id
            else:
                credential, project_id = StaticTokenCredentials(FCM_FAKE_TOKEN), settings.project_id
        except (OSError, ValueError) as exc:
            raise ConfigurationError(
                f"app {app_id!r}: apps.fcm.credentials_path is not a usable service-account"
                f" file: {exc}"
            ) from None
        return make_firebase_app(
            f"relay-{app_id}-{id(self)}",
            project_id=project_id,
            credential=credential,
            endpoint=settings.endpoint or None,
        )

    async def send_apns(
        self,
        app_id: str,
        environment: str,
        token: str,
        payload: dict[str, object],
        collapse_id: str,
    ) -> ProviderAnswer:
        client = await self.apns(app_id, environment)
        request = NotificationRequest(
            device_token=token,
            message=payload,
            priority=10,
            push_type=PushType.ALERT,
            time_to_live=APNS_TIME_TO_LIVE,
            collapse_key=collapse_id,
            apns_topic=self._app(app_id).apns.topic,
        )
        return classify_apns(await client.send_notification(request))

    async def send_fcm(
        self, app_id: str, token: str, data: dict[str, str], dry_run: bool
    ) -> ProviderAnswer:
        app = await self.fcm(app_id)
        with warnings.catch_warnings():
            # firebase-admin 7.5 deprecates `token` for `fid`, but apps (and the Customer.io
            # SDK) register FCM registration tokens, which go out as `message.token`.
            warnings.simplefilter("ignore", DeprecationWarning)
            message = messaging.Message(
                token=token, data=data, android=messaging.AndroidConfig(priority="high")
            )
        batch = await messaging.send_each_async([message], dry_run=dry_run, app=app)
        answer = classify_fcm(batch.responses[0])
        if dry_run and answer.kind is Kind.SENT:
            return ProviderAnswer(Kind.VALIDATED, answer.provider_id)
        return answer

    async def close(self) -> None:
        for client in self._apns.values():
            await close_apns_client(client)
        for app in self._fcm.values():
            await close_firebase_app(app)
        self._apns.clear()
        self._fcm.clear()


async def _quiet(request: object, result: object) -> None:
    """aioapns logs every refusal at ERROR by default; relay classifies and logs them itself."""
