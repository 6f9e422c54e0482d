"""The fake APNs and FCM servers, driven through the real aioapns and firebase-admin clients.

relay's push sender will trust these fakes to answer like Apple and Google and trust
relay.push.hooks to aim the libraries at them. These tests pin both down: each scripted
provider answer must surface exactly the way the library reports the real one.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import ssl
import time
import uuid
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
from aioapns import APNs, NotificationRequest, PushType
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from firebase_admin import App, exceptions, messaging

from relay.push.hooks import (
    StaticTokenCredentials,
    check_hooks,
    close_apns_client,
    close_firebase_app,
    make_apns_client,
    make_firebase_app,
)
from relay_fakes.fake_apns import FakeAPNs
from relay_fakes.fake_fcm import FakeFCM

KEY_ID, TEAM_ID, TOPIC = "KEY1234567", "TEAM123456", "com.example.relay"
PROJECT, ACCESS_TOKEN = "demo-relay", "test-access-token"
TOKEN = "ab" * 32
DEAD = "de" * 32
OTHER_PROJECT_PATH = "/v1/projects/other/messages:send"
ALERT = {"aps": {"alert": {"title": "Hi", "body": "there"}}}


@dataclass(frozen=True)
class P8Key:
    pem: str
    public_key: ec.EllipticCurvePublicKey


def make_p8() -> P8Key:
    """A fresh EC P-256 key in PKCS#8 PEM, the format of Apple's .p8 files."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return P8Key(pem, key.public_key())


@pytest.fixture(scope="module")
def p8() -> P8Key:
    return make_p8()


@pytest.fixture
async def fake_apns(p8: P8Key) -> AsyncIterator[FakeAPNs]:
    async with FakeAPNs(
        key_id=KEY_ID, team_id=TEAM_ID, public_key=p8.public_key, topics={TOPIC}
    ) as fake:
        yield fake
    assert fake.invalid == [], "the client sent requests APNs would refuse"


@pytest.fixture
async def apns(fake_apns: FakeAPNs, p8: P8Key) -> AsyncIterator[APNs]:
    client = make_apns_client(
        key=p8.pem,
        key_id=KEY_ID,
        team_id=TEAM_ID,
        topic=TOPIC,
        endpoint=fake_apns.url,
        max_connection_attempts=2,
    )
    yield client
    await close_apns_client(client)


@pytest.fixture
async def fake_fcm() -> AsyncIterator[FakeFCM]:
    async with FakeFCM(project_id=PROJECT, access_token=ACCESS_TOKEN) as fake:
        yield fake
    assert fake.invalid == [], "the client sent requests FCM would refuse"


@pytest.fixture
async def firebase_app(fake_fcm: FakeFCM) -> AsyncIterator[App]:
    app = make_firebase_app(
        f"test-{uuid.uuid4()}",
        project_id=PROJECT,
        credential=StaticTokenCredentials(ACCESS_TOKEN),
        endpoint=fake_fcm.url,
        http_timeout=5,
    )
    yield app
    await close_firebase_app(app)


def alert(token: str = TOKEN, payload: dict[str, Any] | None = None) -> NotificationRequest:
    return NotificationRequest(token, payload or ALERT, push_type=PushType.ALERT)


def fcm_message(target: str, data: dict[str, str] | None = None) -> messaging.Message:
    return messaging.Message(fid=target, data=data or {"delivery_id": "d-1"})


async def send_one(app: App, message: messaging.Message, dry_run: bool = False) -> Any:
    """The single SendResponse of ``send_each_async`` (firebase-admin has no async ``send``)."""
    batch = await messaging.send_each_async([message], dry_run=dry_run, app=app)
    return batch.responses[0]


def test_library_hooks_still_exist() -> None:
    """Fails loudly when an aioapns/firebase-admin upgrade removes a hook push_hooks uses."""
    check_hooks()


# -- APNs through aioapns -----------------------------------------------------------------


async def test_apns_success_returns_apns_id_and_records_request(
    apns: APNs, fake_apns: FakeAPNs
) -> None:
    request = alert()
    result = await apns.send_notification(request)

    assert result.is_successful and result.status == "200"
    assert result.notification_id == request.notification_id
    [seen] = fake_apns.requests
    assert (seen.token, seen.payload, seen.apns_id) == (TOKEN, ALERT, request.notification_id)
    assert seen.headers["apns-topic"] == TOPIC
    assert seen.headers["apns-push-type"] == "alert"
    assert seen.jwt_header["kid"] == KEY_ID and seen.jwt_claims["iss"] == TEAM_ID
    assert (seen.status, seen.reason, seen.scripted) == (200, None, False)


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (400, "BadDeviceToken"),
        (400, "DeviceTokenNotForTopic"),
        (403, "InvalidProviderToken"),
        (429, "TooManyRequests"),
        (500, "InternalServerError"),
        (503, "ServiceUnavailable"),
    ],
)
async def test_apns_scripted_errors_surface_as_results(
    apns: APNs, fake_apns: FakeAPNs, status: int, reason: str
) -> None:
    fake_apns.answer(DEAD, status, reason)

    result = await apns.send_notification(alert(DEAD))
    healthy = await apns.send_notification(alert(TOKEN))

    assert (result.status, result.description, result.timestamp) == (str(status), reason, None)
    assert not result.is_successful
    assert healthy.is_successful
    assert len(fake_apns.requests_for(DEAD)) == 1, "aioapns does not retry APNs error answers"


async def test_apns_default_reason_for_status(apns: APNs, fake_apns: FakeAPNs) -> None:
    fake_apns.answer(DEAD, 429)

    result = await apns.send_notification(alert(DEAD))

    assert (result.status, result.description) == ("429", "TooManyRequests")


async def test_apns_410_timestamp_reaches_client(apns: APNs, fake_apns: FakeAPNs) -> None:
    fake_apns.answer(DEAD, 410, timestamp_ms=1_700_000_000_123)

    result = await apns.send_notification(alert(DEAD))

    assert (result.status, result.description) == ("410", "Unregistered")
    assert result.timestamp == 1_700_000_000_123


async def test_apns_410_timestamp_defaults_to_now(apns: APNs, fake_apns: FakeAPNs) -> None:
    fake_apns.answer(DEAD, 410)
    before = int(time.time() * 1000)

    result = await apns.send_notification(alert(DEAD))

    assert result.timestamp is not None
    assert before <= result.timestamp <= int(time.time() * 1000)


async def test_apns_answer_times_then_success(apns: APNs, fake_apns: FakeAPNs) -> None:
    fake_apns.answer(TOKEN, 503, times=2)

    statuses = [(await apns.send_notification(alert())).status for _ in range(3)]

    assert statuses == ["503", "503", "200"]


async def test_apns_queued_answers_come_before_standing_answer(
    apns: APNs, fake_apns: FakeAPNs
) -> None:
    fake_apns.answer(TOKEN, 410)
    fake_apns.answer(TOKEN, 200, times=1)

    statuses = [(await apns.send_notification(alert())).status for _ in range(2)]

    assert statuses == ["200", "410"]


async def test_apns_payload_too_large(apns: APNs, fake_apns: FakeAPNs) -> None:
    big = {"aps": {"alert": "x" * 5000}}

    result = await apns.send_notification(alert(payload=big))

    assert (result.status, result.description) == ("413", "PayloadTooLarge")
    assert fake_apns.invalid == [(f"/3/device/{TOKEN}", "413 PayloadTooLarge")]
    fake_apns.invalid.clear()


async def test_apns_jwt_from_another_key_is_refused(fake_apns: FakeAPNs) -> None:
    stranger = make_apns_client(
        key=make_p8().pem, key_id=KEY_ID, team_id=TEAM_ID, topic=TOPIC, endpoint=fake_apns.url
    )
    try:
        result = await stranger.send_notification(alert())
    finally:
        await close_apns_client(stranger)

    assert (result.status, result.description) == ("403", "InvalidProviderToken")
    fake_apns.invalid.clear()


async def test_apns_wrong_key_id_is_refused(fake_apns: FakeAPNs, p8: P8Key) -> None:
    wrong_kid = make_apns_client(
        key=p8.pem, key_id="OTHERKEY00", team_id=TEAM_ID, topic=TOPIC, endpoint=fake_apns.url
    )
    try:
        result = await wrong_kid.send_notification(alert())
    finally:
        await close_apns_client(wrong_kid)

    assert (result.status, result.description) == ("403", "InvalidProviderToken")
    fake_apns.invalid.clear()


async def test_apns_per_request_topic(apns: APNs, fake_apns: FakeAPNs) -> None:
    fake_apns.topics = {TOPIC, "com.example.second"}

    second = await apns.send_notification(
        NotificationRequest(TOKEN, ALERT, apns_topic="com.example.second")
    )
    other = await apns.send_notification(
        NotificationRequest(TOKEN, ALERT, apns_topic="com.example.other")
    )

    assert second.is_successful
    assert (other.status, other.description) == ("400", "TopicDisallowed")
    assert [r.headers["apns-topic"] for r in fake_apns.requests] == [
        "com.example.second",
        "com.example.other",
    ]
    fake_apns.invalid.clear()


async def test_apns_concurrent_streams_on_one_connection(apns: APNs, fake_apns: FakeAPNs) -> None:
    fake_apns.answer(None, 200, delay=0.3)
    fake_apns.answer(DEAD, 410, timestamp_ms=5, delay=0.3)
    tokens = [TOKEN if i % 2 else DEAD for i in range(40)]
    started = time.monotonic()

    results = await asyncio.gather(*(apns.send_notification(alert(t)) for t in tokens))

    assert time.monotonic() - started < 3.0, "streams were answered one after another"
    assert [r.status for r in results] == ["410" if t == DEAD else "200" for t in tokens]
    assert {r.timestamp for r in results if r.status == "410"} == {5}
    assert len({r.stream_id for r in fake_apns.requests}) == 40
    assert fake_apns.connections_opened == 1


async def test_apns_several_clients_use_several_connections(fake_apns: FakeAPNs, p8: P8Key) -> None:
    fake_apns.answer(None, 200, delay=0.2)
    clients = [
        make_apns_client(
            key=p8.pem, key_id=KEY_ID, team_id=TEAM_ID, topic=TOPIC, endpoint=fake_apns.url
        )
        for _ in range(3)
    ]
    try:
        results = await asyncio.gather(
            *(c.send_notification(alert()) for c in clients for _ in range(5))
        )
    finally:
        for client in clients:
            await close_apns_client(client)

    assert all(r.is_successful for r in results)
    assert fake_apns.connections_opened == 3
    assert len({r.connection_id for r in fake_apns.requests}) == 3


async def test_apns_err_func_sees_failures(fake_apns: FakeAPNs, p8: P8Key) -> None:
    seen: list[tuple[str, str | None]] = []

    async def on_error(request: NotificationRequest, result: Any) -> None:
        seen.append((request.device_token, result.description))

    fake_apns.answer(DEAD, 400, "BadDeviceToken")
    client = make_apns_client(
        key=p8.pem,
        key_id=KEY_ID,
        team_id=TEAM_ID,
        topic=TOPIC,
        endpoint=fake_apns.url,
        err_func=on_error,
    )
    try:
        await client.send_notification(alert(DEAD))
        await client.send_notification(alert(TOKEN))
    finally:
        await close_apns_client(client)

    assert seen == [(DEAD, "BadDeviceToken")]


async def test_apns_stop_finishes_answers_in_flight_and_closes_connections(
    p8: P8Key,
) -> None:
    fake = FakeAPNs()
    await fake.start()
    client = make_apns_client(
        key=p8.pem, key_id=KEY_ID, team_id=TEAM_ID, topic=TOPIC, endpoint=fake.url
    )
    try:
        fake.answer(None, 200, delay=0.2)
        pending = asyncio.create_task(client.send_notification(alert()))
        while not fake.requests:
            await asyncio.sleep(0.01)

        await fake.stop(grace=2.0)

        assert (await pending).is_successful
        for _ in range(100):
            if not client.pool.connections:
                break
            await asyncio.sleep(0.01)
        assert client.pool.connections == [], "aioapns did not see the GOAWAY/close"
        assert fake.open_connections == 0
    finally:
        await close_apns_client(client)


async def test_apns_over_tls(tmp_path: Path, p8: P8Key) -> None:
    server_context, client_context = tls_contexts(tmp_path)
    async with FakeAPNs(ssl_context=server_context) as fake:
        endpoint = fake.url.replace("127.0.0.1", "localhost")
        client = make_apns_client(
            key=p8.pem,
            key_id=KEY_ID,
            team_id=TEAM_ID,
            topic=TOPIC,
            endpoint=endpoint,
            ssl_context=client_context,
        )
        try:
            result = await client.send_notification(alert())
        finally:
            await close_apns_client(client)

    assert endpoint.startswith("https://localhost:")
    assert result.is_successful
    assert fake.requests[0].headers["host"] == "localhost"


def tls_contexts(directory: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A self-signed certificate for localhost/127.0.0.1: server context and trusting client."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    return server, ssl.create_default_context(cafile=str(cert_file))


# -- APNs protocol checks, with a plain HTTP/2 client -------------------------------------


def _jwt_for(p8: P8Key, kid: str = KEY_ID, iss: str = TEAM_ID, iat: int | None = None) -> str:
    import jwt

    claims = {"iss": iss, "iat": int(time.time()) if iat is None else iat}
    return jwt.encode(claims, p8.pem, algorithm="ES256", headers={"kid": kid})


@pytest.mark.parametrize(
    ("change", "status", "reason"),
    [
        ({"authorization": None}, 403, "MissingProviderToken"),
        ({"authorization": "bearer not-a-jwt"}, 403, "InvalidProviderToken"),
        ({"authorization": "old"}, 403, "ExpiredProviderToken"),
        ({"apns-topic": None}, 400, "MissingTopic"),
        ({"apns-topic": "com.example.other"}, 400, "TopicDisallowed"),
        ({"apns-push-type": "nonsense"}, 400, "InvalidPushType"),
        ({"apns-priority": "7"}, 400, "BadPriority"),
        ({"apns-id": "not-a-uuid"}, 400, "BadMessageId"),
        ({"path": "/3/device/not-hex"}, 400, "BadDeviceToken"),
        ({"path": "/3/other"}, 404, "BadPath"),
        ({"body": b""}, 400, "PayloadEmpty"),
        ({"body": b"[1]"}, 400, "BadPayload"),
        ({"body": json.dumps({"aps": {"alert": "x" * 100_000}}).encode()}, 413, "PayloadTooLarge"),
    ],
)
async def test_apns_refuses_what_apple_refuses(
    fake_apns: FakeAPNs, p8: P8Key, change: dict[str, Any], status: int, reason: str
) -> None:
    headers = {
        "authorization": f"bearer {_jwt_for(p8)}",
        "apns-topic": TOPIC,
        "apns-push-type": "alert",
        "apns-priority": "10",
        "apns-id": str(uuid.uuid4()),
    }
    change = dict(change)
    if change.get("authorization") == "old":
        change = {"authorization": f"bearer {_jwt_for(p8, iat=int(time.time()) - 7200)}"}
    path, body = change.pop("path", f"/3/device/{TOKEN}"), change.pop("body", b'{"aps":{}}')
    headers.update(change)
    headers = {k: v for k, v in headers.items() if v is not None}

    async with httpx.AsyncClient(http1=False, http2=True) as client:
        response = await client.post(fake_apns.url + path, headers=headers, content=body)

    assert response.http_version == "HTTP/2"
    assert (response.status_code, response.json()["reason"]) == (status, reason)
    if "apns-id" in headers and reason != "BadMessageId":
        assert response.headers["apns-id"] == headers["apns-id"]
    assert len(fake_apns.invalid) == 1
    fake_apns.invalid.clear()


async def test_apns_generates_apns_id_when_request_has_none(fake_apns: FakeAPNs, p8: P8Key) -> None:
    headers = {"authorization": f"bearer {_jwt_for(p8)}", "apns-topic": TOPIC}
    async with httpx.AsyncClient(http1=False, http2=True) as client:
        response = await client.post(
            f"{fake_apns.url}/3/device/{TOKEN}", headers=headers, content=b'{"aps":{}}'
        )

    assert response.status_code == 200
    assert str(uuid.UUID(response.headers["apns-id"])) == response.headers["apns-id"]
    assert fake_apns.requests[0].apns_id == response.headers["apns-id"]


# -- FCM through firebase-admin -------------------------------------------------------------


async def test_fcm_success_returns_message_name(firebase_app: App, fake_fcm: FakeFCM) -> None:
    response = await send_one(firebase_app, fcm_message("fid-1", {"delivery_id": "d-1"}))

    assert response.success and response.exception is None
    assert response.message_id.startswith(f"projects/{PROJECT}/messages/")
    [seen] = fake_fcm.requests
    assert seen.name == response.message_id
    assert seen.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert seen.message == {"fid": "fid-1", "data": {"delivery_id": "d-1"}}
    assert fake_fcm.messages() == [seen.message]


async def test_fcm_deprecated_token_target_works_too(firebase_app: App, fake_fcm: FakeFCM) -> None:
    fake_fcm.answer("tok-dead", "UNREGISTERED")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Message.token, since 7.5.0
        message = messaging.Message(token="tok-dead", data={"k": "v"})

    response = await send_one(firebase_app, message)

    assert isinstance(response.exception, messaging.UnregisteredError)
    assert fake_fcm.requests[0].message == {"token": "tok-dead", "data": {"k": "v"}}


@pytest.mark.parametrize(
    ("code", "exception", "http_status"),
    [
        ("UNREGISTERED", messaging.UnregisteredError, 404),
        ("INVALID_ARGUMENT", exceptions.InvalidArgumentError, 400),
        ("SENDER_ID_MISMATCH", messaging.SenderIdMismatchError, 403),
        ("QUOTA_EXCEEDED", messaging.QuotaExceededError, 429),
        ("THIRD_PARTY_AUTH_ERROR", messaging.ThirdPartyAuthError, 401),
    ],
)
async def test_fcm_scripted_errors_raise_library_exceptions(
    firebase_app: App, fake_fcm: FakeFCM, code: str, exception: type, http_status: int
) -> None:
    fake_fcm.answer("dead", code)

    batch = await messaging.send_each_async(
        [fcm_message("dead"), fcm_message("alive")], app=firebase_app
    )

    failed, ok = batch.responses
    assert type(failed.exception) is exception
    assert failed.exception.http_response.status_code == http_status
    assert ok.success
    assert (batch.success_count, batch.failure_count) == (1, 1)


async def test_fcm_exception_hierarchy_and_codes(firebase_app: App, fake_fcm: FakeFCM) -> None:
    for target, code in [
        ("u", "UNREGISTERED"),
        ("s", "SENDER_ID_MISMATCH"),
        ("q", "QUOTA_EXCEEDED"),
    ]:
        fake_fcm.answer(target, code)

    batch = await messaging.send_each_async(
        [fcm_message(t) for t in ("u", "s", "q")], app=firebase_app
    )

    unregistered, mismatch, quota = (r.exception for r in batch.responses)
    assert isinstance(unregistered, exceptions.NotFoundError)
    assert unregistered.code == exceptions.NOT_FOUND
    assert isinstance(mismatch, exceptions.PermissionDeniedError)
    assert isinstance(quota, exceptions.ResourceExhaustedError)
    assert len(fake_fcm.requests_for("q")) == 1, "firebase-admin does not retry 429"


async def test_fcm_invalid_argument_says_whether_the_token_is_at_fault(
    firebase_app: App, fake_fcm: FakeFCM
) -> None:
    fake_fcm.answer("bad-token", "INVALID_ARGUMENT")
    fake_fcm.answer(
        "bad-payload",
        "INVALID_ARGUMENT",
        "Invalid value at 'message.android.ttl' (type.googleapis.com/google.protobuf.Duration)",
        field="message.android.ttl",
    )

    token_fault, payload_fault = (
        await messaging.send_each_async(
            [fcm_message("bad-token"), fcm_message("bad-payload")], app=firebase_app
        )
    ).responses

    for response in (token_fault, payload_fault):
        assert type(response.exception) is exceptions.InvalidArgumentError
    assert "registration token" in str(token_fault.exception)
    assert "registration token" not in str(payload_fault.exception)
    details = token_fault.exception.http_response.json()["error"]["details"]
    assert {"field": "message.token", "description": str(token_fault.exception)} in details[1][
        "fieldViolations"
    ]


@pytest.mark.parametrize(
    ("code", "exception"),
    [("UNAVAILABLE", exceptions.UnavailableError), ("INTERNAL", exceptions.InternalError)],
)
async def test_fcm_5xx_surface_after_library_retries(
    firebase_app: App,
    fake_fcm: FakeFCM,
    monkeypatch: pytest.MonkeyPatch,
    code: str,
    exception: type,
) -> None:
    # firebase-admin retries 500/503 4 times with 0.5 s exponential backoff (~7 s); skip the wait.
    monkeypatch.setattr("firebase_admin._retry.HttpxRetry.get_backoff_time", lambda self: 0)
    fake_fcm.answer("flaky", code)

    response = await send_one(firebase_app, fcm_message("flaky"))

    assert type(response.exception) is exception
    assert len(fake_fcm.requests_for("flaky")) == 5


async def test_fcm_transient_5xx_is_retried_by_the_library(
    firebase_app: App, fake_fcm: FakeFCM
) -> None:
    fake_fcm.answer("flaky", "UNAVAILABLE", times=1)

    response = await send_one(firebase_app, fcm_message("flaky"))

    assert response.success
    assert [r.status for r in fake_fcm.requests_for("flaky")] == [503, 200]


async def test_fcm_validate_only(firebase_app: App, fake_fcm: FakeFCM) -> None:
    fake_fcm.answer("dead", "UNREGISTERED")

    alive = await send_one(firebase_app, fcm_message("alive"), dry_run=True)
    dead = await send_one(firebase_app, fcm_message("dead"), dry_run=True)

    assert alive.message_id == f"projects/{PROJECT}/messages/fake_message_id"
    assert isinstance(dead.exception, messaging.UnregisteredError)
    assert [r.validate_only for r in fake_fcm.requests] == [True, True]
    assert fake_fcm.messages() == []


async def test_fcm_concurrent_sends(firebase_app: App, fake_fcm: FakeFCM) -> None:
    fake_fcm.answer(None, "OK", delay=0.3)
    fake_fcm.answer("dead-7", "UNREGISTERED")
    targets = [f"fid-{i}" if i != 7 else "dead-7" for i in range(60)]
    started = time.monotonic()

    batch = await messaging.send_each_async([fcm_message(t) for t in targets], app=firebase_app)

    assert time.monotonic() - started < 3.0
    assert (batch.success_count, batch.failure_count) == (59, 1)
    assert isinstance(batch.responses[7].exception, messaging.UnregisteredError)
    assert len({r.message_id for r in batch.responses if r.success}) == 59


async def test_fcm_oversize_data_is_refused(firebase_app: App, fake_fcm: FakeFCM) -> None:
    response = await send_one(firebase_app, fcm_message("fid-1", {"blob": "x" * 4100}))

    assert type(response.exception) is exceptions.InvalidArgumentError
    assert "too big" in str(response.exception)
    assert len(fake_fcm.invalid) == 1
    fake_fcm.invalid.clear()


# -- FCM request checks, with a plain HTTP client ------------------------------------------


@pytest.mark.parametrize(
    ("body", "headers", "path", "status", "rpc_status"),
    [
        ({"message": {"token": "t", "data": {"n": 1}}}, None, None, 400, "INVALID_ARGUMENT"),
        ({"message": {"data": {"k": "v"}}}, None, None, 400, "INVALID_ARGUMENT"),
        ({"message": {"token": "t", "fid": "f"}}, None, None, 400, "INVALID_ARGUMENT"),
        ({"message": {"token": "t", "data": {"from": "x"}}}, None, None, 400, "INVALID_ARGUMENT"),
        ({"message": {"token": "t"}, "extra": 1}, None, None, 400, "INVALID_ARGUMENT"),
        ({"message": {"token": "t"}}, {}, None, 401, "UNAUTHENTICATED"),
        ({"message": {"token": "t"}}, {"Authorization": "Bearer x"}, None, 401, "UNAUTHENTICATED"),
        (
            {"message": {"token": "t"}},
            None,
            "/v1/projects/other/messages:send",
            403,
            "PERMISSION_DENIED",
        ),
        ({"message": {"token": "t"}}, None, "/batch", 404, "NOT_FOUND"),
    ],
)
async def test_fcm_refuses_what_fcm_refuses(
    fake_fcm: FakeFCM,
    body: dict[str, Any],
    headers: dict[str, str] | None,
    path: str | None,
    status: int,
    rpc_status: str,
) -> None:
    url = fake_fcm.url + (path or f"/v1/projects/{PROJECT}/messages:send")
    sent_headers = {"Authorization": f"Bearer {ACCESS_TOKEN}"} if headers is None else headers
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=body, headers=sent_headers) as response,
    ):
        answer = await response.json()

    assert (response.status, answer["error"]["status"]) == (status, rpc_status)
    assert answer["error"]["code"] == status
    assert len(fake_fcm.invalid) == 1
    fake_fcm.invalid.clear()


async def test_fcm_retry_after_header(fake_fcm: FakeFCM, firebase_app: App) -> None:
    fake_fcm.answer("busy", "QUOTA_EXCEEDED", retry_after=30)

    response = await send_one(firebase_app, fcm_message("busy"))

    assert isinstance(response.exception, messaging.QuotaExceededError)
    assert response.exception.http_response.headers["Retry-After"] == "30"


async def test_apns_client_never_reopens_the_flow_control_window(
    apns: APNs, fake_apns: FakeAPNs
) -> None:
    """Characterizes aioapns 4.0, not the fake: it never sends WINDOW_UPDATE, so once ~64 KiB
    of error bodies arrived on a connection, further error answers wait until the connection's
    idle timer (10 s; shortened here) closes it, and aioapns re-sends those requests."""
    apns.pool.protocol_class.INACTIVITY_TIME = 0.3  # our per-client subclass from push_hooks
    fake_apns.answer(DEAD, 400, "X" * 1000)  # ~1 KiB bodies: the 64 KiB window holds ~64

    results = await asyncio.gather(*(apns.send_notification(alert(DEAD)) for _ in range(100)))

    assert {(r.status, r.description) for r in results} == {("400", "X" * 1000)}
    assert len(fake_apns.requests) > 100, "stalled requests were re-sent"
    assert fake_apns.connections_opened >= 2
