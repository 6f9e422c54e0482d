"""Shared pieces of the Customer.io drop-in tests (API.md "Customer.io-compatible surfaces"):
the key a client already ships, request shapes recorded from Customer.io's mobile SDKs
(reference/customerio.md §3), a relay serving HTTPS, and a relay forwarding to a fake
Customer.io that also has a Pipelines source key."""

from __future__ import annotations

import base64
import gzip
import json
import ssl
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import trustme
from aiohttp import web

from relay.app import create_app, ssl_context
from relay.settings import CustomerioSettings, ForwardingSettings, ServerSettings
from relay_fakes.fake_customerio import FakeCustomerIO
from tests.support import Answer, RelayServer, make_settings, two_apps

# The key the mobile app / backend already ships; registered in relay as an app key.
CLIENT_KEY = "cio-write-key-shipped-in-the-app"
SERVER_KEY = "cio-track-key-of-the-backend"
SITE_ID = "relay-test-site"
TRACK_KEY = "relay-test-track-key"
CDP_KEY = "relay-upstream-cdp-source-key"

IOS_TOKEN = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
ANDROID_TOKEN = "fcm-Zx9:APA91bHun4MxP5egoKMwt2KZFBaFUH-1RYqx_Ao9wz2y.Lr3"


async def register_client_key(relay: RelayServer, value: str = CLIENT_KEY) -> str:
    await relay.store.create_key("default", "app", "shipped client key", value)
    return value


async def register_server_key(relay: RelayServer, value: str = SERVER_KEY) -> str:
    await relay.store.create_key("default", "server", "back-end key", value)
    return value


def basic(user: str, password: str = "") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def message_id() -> str:
    return str(uuid.uuid4()).upper()


async def send(
    relay: RelayServer,
    method: str,
    path: str,
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
    compress: bool = False,
    content_type: str = "application/json",
) -> Answer:
    """A raw request as a Customer.io client makes it: no relay Bearer key unless given."""
    sent = dict(headers or {})
    data: bytes | None = None
    if body is not None:
        data = json.dumps(body).encode()
        sent.setdefault("Content-Type", content_type)
        if compress:
            data = gzip.compress(data)
            sent["Content-Encoding"] = "gzip"
    return await relay.api().request(method, path, data=data, headers=sent)


def parsed(answer: Answer) -> Any:
    """The JSON of an answer, whatever its content type says."""
    return json.loads(answer.text) if answer.text else None


# --- request shapes of Customer.io's mobile SDKs (reference/customerio.md §3.3, §3.5) ---------


def ios_context(token: str | None = IOS_TOKEN) -> dict[str, Any]:
    device: dict[str, Any] = {
        "id": "4E1B7D52-6A38-4C0B-9C1D-1E0F2B8A9C11",
        "manufacturer": "Apple",
        "model": "iPhone15,2",
        "name": "iPhone",
        "type": "ios",
    }
    if token is not None:
        device["token"] = token
    return {
        "app": {"build": "42", "name": "Shop", "namespace": "com.example.shop", "version": "3.1"},
        "device": device,
        "library": {"name": "analytics-swift", "version": "1.7.3+cio.1"},
        "locale": "en-US",
        "network": {"cellular": False, "wifi": True},
        "os": {"name": "iOS", "version": "17.5"},
        "screen": {"height": 852, "width": 393},
        "timezone": "Europe/Berlin",
    }


def android_context(token: str | None = ANDROID_TOKEN) -> dict[str, Any]:
    device: dict[str, Any] = {
        "id": "b6c1f0a4d0e5f2a1",
        "manufacturer": "Google",
        "model": "Pixel 8",
        "name": "shiba",
        "type": "android",
    }
    if token is not None:
        device["token"] = token
    return {
        "app": {"build": "42", "name": "Shop", "namespace": "com.example.shop", "version": "3.1"},
        "device": device,
        "library": {"name": "analytics-kotlin", "version": "1.24.1"},
        "locale": "de-DE",
        "network": {"cellular": True, "wifi": False},
        "os": {"name": "Android", "version": "14"},
        "screen": {"density": 2.625, "height": 2205, "width": 1080},
        "timezone": "Europe/Berlin",
        "userAgent": "Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8 Build/UD1A.230803.041)",
    }


def sdk_event(
    type_: str,
    *,
    anonymous_id: str,
    user_id: str | None = None,
    context: dict[str, Any] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": type_,
        "anonymousId": anonymous_id,
        "messageId": message_id(),
        "timestamp": now_iso(),
        "integrations": {},
        "context": context if context is not None else ios_context(),
        **fields,
    }
    if user_id is not None:
        event["userId"] = user_id
    return event


def device_attributes(push_enabled: str = "true", **extra: Any) -> dict[str, Any]:
    """What iOS DeviceAttributesProvider / DeviceContexualAttributes put in ``properties``."""
    return {
        "app_version": "3.1",
        "cio_sdk_version": "4.7.5",
        "device_locale": "en-US",
        "device_manufacturer": "Apple",
        "device_model": "iPhone15,2",
        "device_os": "17.5",
        "push_enabled": push_enabled,
        "network_cellular": False,
        "network_wifi": True,
        "screen_height": 852,
        "screen_width": 393,
        "timezone": "Europe/Berlin",
        **extra,
    }


def device_created(
    *,
    anonymous_id: str,
    user_id: str | None = None,
    token: str = IOS_TOKEN,
    push_enabled: str = "true",
    context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return sdk_event(
        "track",
        anonymous_id=anonymous_id,
        user_id=user_id,
        context=context if context is not None else ios_context(token),
        event="Device Created or Updated",
        properties=device_attributes(push_enabled),
    )


def device_deleted(
    *, anonymous_id: str, user_id: str | None = None, token: str = IOS_TOKEN
) -> dict[str, Any]:
    return sdk_event(
        "track",
        anonymous_id=anonymous_id,
        user_id=user_id,
        context=ios_context(token),
        event="Device Deleted",
        properties={},
    )


def delivery_event(
    metric: str,
    delivery_id: str,
    *,
    anonymous_id: str,
    user_id: str | None = None,
    token: str = IOS_TOKEN,
) -> dict[str, Any]:
    """The main app's ``track("Report Delivery Event", ...)`` through the analytics pipeline."""
    return sdk_event(
        "track",
        anonymous_id=anonymous_id,
        user_id=user_id,
        event="Report Delivery Event",
        properties={"metric": metric, "deliveryId": delivery_id, "recipient": token},
    )


def identify_call(
    user_id: str, *, anonymous_id: str, traits: dict[str, Any] | None = None
) -> dict[str, Any]:
    return sdk_event("identify", anonymous_id=anonymous_id, user_id=user_id, traits=traits or {})


def mobile_batch(*events: dict[str, Any], write_key: str = CLIENT_KEY) -> dict[str, Any]:
    """The body of ``POST {apiHost}/b``: write key in the body, no Authorization header."""
    return {"batch": list(events), "sentAt": now_iso(), "writeKey": write_key}


def background_delivered(
    delivery_id: str, token: str = IOS_TOKEN, timestamp_ms: int | None = None
) -> dict[str, Any]:
    """The direct ``POST {apiHost}/track`` of a push delivered in the background (no messageId;
    anonymousId is the delivery id; a bare integer timestamp is milliseconds)."""
    body: dict[str, Any] = {
        "anonymousId": delivery_id,
        "event": "Report Delivery Event",
        "properties": {"recipient": token, "metric": "delivered", "deliveryId": delivery_id},
    }
    if timestamp_ms is not None:
        body["timestamp"] = timestamp_ms
    return body


async def post_ios_batch(relay: RelayServer, *events: dict[str, Any]) -> Answer:
    """iOS: JSON, uncompressed, key only in the body."""
    answer = await send(relay, "POST", "/cdp/v1/b", mobile_batch(*events))
    assert answer.status == 200, answer.text
    return answer


# --- admin reads ---------------------------------------------------------------------------


async def device(relay: RelayServer, token: str) -> dict[str, Any]:
    answer = await (await relay.admin_api()).get(f"/v1/devices/{token}")
    assert answer.status == 200, answer.text
    return answer.body


async def profile(relay: RelayServer, customer_id: str) -> dict[str, Any]:
    answer = await (await relay.admin_api()).get(f"/v1/profiles/{customer_id}")
    assert answer.status == 200, answer.text
    return answer.body


async def funnel(relay: RelayServer, delivery_id: str) -> dict[str, int]:
    answer = await (await relay.admin_api()).get(f"/v1/deliveries/{delivery_id}")
    assert answer.status == 200, answer.text
    return answer.body["funnel"]


async def timeline(relay: RelayServer, delivery_id: str) -> list[dict[str, Any]]:
    answer = await (await relay.admin_api()).get(f"/v1/deliveries/{delivery_id}")
    assert answer.status == 200, answer.text
    return answer.body["timeline"]


# --- HTTPS ---------------------------------------------------------------------------------


@dataclass
class Tls:
    ca_path: Path
    cert_path: Path
    key_path: Path

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_path))


def make_tls(tmp_path: Path) -> Tls:
    """A test CA and a server certificate for ``localhost`` / ``127.0.0.1``."""
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    paths = Tls(tmp_path / "ca.pem", tmp_path / "relay-cert.pem", tmp_path / "relay-key.pem")
    ca.cert_pem.write_to_path(str(paths.ca_path))
    with open(paths.cert_path, "wb") as out:
        for pem in cert.cert_chain_pems:
            out.write(pem.bytes())
    cert.private_key_pem.write_to_path(str(paths.key_path))
    return paths


class TlsRelayServer(RelayServer):
    """relay on a real port serving HTTPS from ``[server] tls_cert``/``tls_key``, built as
    ``relay serve`` builds it (``relay.app.ssl_context``); clients trust the test CA."""

    tls: Tls

    async def start(self) -> None:
        app = create_app(self.settings)
        self.runner = web.AppRunner(app, access_log=None)
        try:
            await self.runner.setup()
        except BaseException:
            await self.runner.cleanup()
            raise
        context = ssl_context(self.settings)
        assert context is not None, "tls_cert/tls_key set but relay builds no TLS context"
        site = web.TCPSite(self.runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        self.port = self.runner.addresses[0][1]
        self.base_url = f"https://localhost:{self.port}"
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=self.tls.client_context())
            self._session = aiohttp.ClientSession(connector=connector)


def tls_relay(tmp_path: Path, tls: Tls, **sections: Any) -> TlsRelayServer:
    server_settings = ServerSettings(
        listen="127.0.0.1:0", tls_cert=str(tls.cert_path), tls_key=str(tls.key_path)
    )
    settings = make_settings(tmp_path, server=server_settings, apps=two_apps(), **sections)
    server = TlsRelayServer(settings)
    server.tls = tls
    return server


# --- forwarding ----------------------------------------------------------------------------


def forwarding_sections(fake: FakeCustomerIO, *, cdp: bool) -> dict[str, Any]:
    """``[customerio]`` pointing Track (and, with ``cdp``, Pipelines) at the fake; fast retries."""
    customerio = CustomerioSettings(site_id=SITE_ID, api_key=TRACK_KEY, track_url=fake.url)
    if cdp:
        customerio = replace(customerio, cdp_api_key=CDP_KEY, pipelines_url=fake.url + "/v1")
    forwarding = ForwardingSettings(
        retry_initial_seconds=0.05, retry_max_seconds=0.2, max_requests_per_second=1000.0
    )
    return {"customerio": customerio, "forwarding": forwarding}


def pipelines_requests(fake: FakeCustomerIO) -> list[Any]:
    """Requests the fake received on its Pipelines paths (``/v1/...``)."""
    return [r for r in fake.requests if r.route is not None and r.route.startswith("/v1/")]


def pipelines_calls(fake: FakeCustomerIO) -> list[dict[str, Any]]:
    """Every accepted Pipelines call (batch items one by one)."""
    return [op for r in pipelines_requests(fake) for op in r.accepted if isinstance(op, dict)]


def person_ops(fake: FakeCustomerIO, action: str | None = None) -> list[dict[str, Any]]:
    """Accepted Track v2 person operations (optionally of one action)."""
    return [
        op
        for r in fake.requests
        if r.route is not None and r.route.startswith("/api/v2/")
        for op in r.accepted
        if op.get("type") == "person" and (action is None or op.get("action") == action)
    ]


def delivery_ops(fake: FakeCustomerIO) -> list[dict[str, Any]]:
    return [
        op
        for r in fake.requests
        if r.route is not None and r.route.startswith("/api/v2/")
        for op in r.accepted
        if op.get("type") == "delivery"
    ]


def track_v1_calls(fake: FakeCustomerIO) -> list[dict[str, Any]]:
    """Accepted Track v1 calls as ``{"v1": "METHOD path", "body": ...}``."""
    return [
        op
        for r in fake.requests
        if r.route is not None and r.route.startswith("/api/v1/")
        for op in r.accepted
    ]
