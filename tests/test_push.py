"""Test pushes through the real aioapns and firebase-admin clients, against a fake APNs that
speaks HTTP/2 and a fake FCM HTTP v1 endpoint, driven through relay's HTTP API."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from relay.push.providers import FCM_FAKE_TOKEN
from relay.settings import (
    ApnsSettings,
    AppSettings,
    CustomerioSettings,
    FcmSettings,
    PushSettings,
)
from relay_fakes.fake_apns import FakeAPNs
from relay_fakes.fake_fcm import FakeFCM
from tests.conftest import API_KEY, SITE_ID
from tests.support import Api, RelayServer, eventually, make_settings, started_servers

KEY_ID, TEAM_ID, TOPIC, PROJECT = "KEY1234567", "TEAM123456", "com.example.shop", "shop-demo"
IOS, ANDROID = "a1" * 32, "fcm-token-1:APA91b" + "x" * 40


@pytest.fixture(scope="module")
def p8_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
async def fake_apns(p8_key: ec.EllipticCurvePrivateKey) -> AsyncIterator[FakeAPNs]:
    async with FakeAPNs(
        key_id=KEY_ID, team_id=TEAM_ID, public_key=p8_key.public_key(), topics={TOPIC}
    ) as fake:
        yield fake
    assert fake.invalid == []


@pytest.fixture
async def fake_fcm() -> AsyncIterator[FakeFCM]:
    async with FakeFCM(project_id=PROJECT, access_token=FCM_FAKE_TOKEN) as fake:
        yield fake
    assert fake.invalid == []


def push_apps(
    tmp_path: Path, key: ec.EllipticCurvePrivateKey, apns: FakeAPNs, fcm: FakeFCM
) -> tuple[AppSettings, ...]:
    key_path = tmp_path / "AuthKey.p8"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    apns_settings = ApnsSettings(
        key_path=str(key_path), key_id=KEY_ID, team_id=TEAM_ID, topic=TOPIC, endpoint=apns.url
    )
    return (
        AppSettings("default", apns_settings, FcmSettings(project_id=PROJECT, endpoint=fcm.url)),
        AppSettings("ios-only", apns_settings, FcmSettings()),
        AppSettings("bare"),
    )


@pytest.fixture
async def start_relay(
    tmp_path: Path, p8_key: ec.EllipticCurvePrivateKey, fake_apns: FakeAPNs, fake_fcm: FakeFCM
) -> AsyncIterator[Any]:
    async with started_servers() as start_server:

        async def start(**sections: Any) -> RelayServer:
            apps = push_apps(tmp_path, p8_key, fake_apns, fake_fcm)
            return await start_server(make_settings(tmp_path, apps=apps, **sections))

        yield start


@pytest.fixture
async def relay(start_relay: Any) -> RelayServer:
    return await start_relay()


async def register(api: Api, token: str, platform: str, **fields: Any) -> None:
    answer = await api.put(f"/v1/devices/{token}", {"platform": platform, **fields})
    assert answer.status in (200, 201), answer.text


async def push(admin: Api, **body: Any) -> Any:
    return await admin.post("/v1/test-pushes", {"title": "Hi", "body": "Test", **body})


async def test_an_ios_push_is_sent_in_customerio_layout(
    relay: RelayServer, fake_apns: FakeAPNs
) -> None:
    admin = await relay.admin_api()
    await register(admin, IOS, "ios")
    answer = await push(
        admin, token=IOS, deep_link="shop://cart", image="https://x/y.png", data={"k": 1}
    )
    assert answer.status == 200
    (result,) = answer.body["results"]
    assert result["status"] == "sent"
    (request,) = fake_apns.requests
    assert result["provider_id"] == request.headers["apns-id"]
    assert request.headers["apns-topic"] == TOPIC
    assert request.headers["apns-push-type"] == "alert"
    payload = request.payload
    assert payload["aps"]["mutable-content"] == 1
    assert payload["aps"]["alert"] == {"title": "Hi", "body": "Test"}
    assert payload["CIO"] == {"push": {"link": "shop://cart", "image": "https://x/y.png"}}
    assert payload["CIO-Delivery-ID"] == answer.body["delivery_id"]
    assert payload["CIO-Delivery-Token"] == IOS
    assert payload["k"] == 1


async def test_an_android_push_is_a_data_message_with_string_values(
    relay: RelayServer, fake_fcm: FakeFCM
) -> None:
    admin = await relay.admin_api()
    await register(admin, ANDROID, "android")
    answer = await push(admin, token=ANDROID, deep_link="shop://cart", data={"n": 2, "s": "x"})
    (result,) = answer.body["results"]
    assert result["status"] == "sent"
    (message,) = fake_fcm.messages()
    assert message["token"] == ANDROID
    assert message["data"] == {
        "title": "Hi",
        "body": "Test",
        "link": "shop://cart",
        "n": "2",
        "s": "x",
        "CIO-Delivery-ID": answer.body["delivery_id"],
        "CIO-Delivery-Token": ANDROID,
    }


async def test_each_send_is_a_sent_metric_in_the_delivery_trace(relay: RelayServer) -> None:
    admin = await relay.admin_api()
    await register(admin, IOS, "ios", customer_id="c1")
    delivery_id = (await push(admin, token=IOS)).body["delivery_id"]
    app = await relay.app_api()
    await app.post(
        "/v1/metrics",
        {
            "metrics": [
                {"id": "m1", "metric": "delivered", "token": IOS, "delivery_id": delivery_id},
                {"id": "m2", "metric": "opened", "token": IOS, "delivery_id": delivery_id},
            ]
        },
    )
    trace = (await admin.get(f"/v1/deliveries/{delivery_id}")).body
    assert trace["funnel"] == {
        "sent": 1,
        "delivered": 1,
        "opened": 1,
        "tapped": 0,
        "deep_link_failed": 0,
        "converted": 0,
    }
    assert [entry["metric"] for entry in trace["timeline"]] == ["sent", "delivered", "opened"]
    assert {entry["customer_id"] for entry in trace["timeline"]} == {"c1"}
    device = (await admin.get(f"/v1/devices/{IOS}")).body
    assert device["counts"]["sent"] == 1


async def test_an_unknown_delivery_is_404(relay: RelayServer) -> None:
    admin = await relay.admin_api()
    assert (await admin.get("/v1/deliveries/nope")).status == 404


async def test_a_push_to_a_customer_goes_to_each_reachable_device(
    relay: RelayServer, fake_apns: FakeAPNs, fake_fcm: FakeFCM
) -> None:
    admin = await relay.admin_api()
    await register(admin, IOS, "ios", customer_id="c1")
    await register(admin, ANDROID, "android", customer_id="c1")
    await register(admin, "b2" * 32, "ios", customer_id="c1", push_enabled=False)
    answer = await push(admin, customer_id="c1")
    assert sorted(r["token"] for r in answer.body["results"]) == sorted([IOS, ANDROID])
    assert len(fake_apns.requests) == 1
    assert len(fake_fcm.messages()) == 1


@pytest.mark.parametrize(("status", "reason"), [(410, "Unregistered"), (400, "BadDeviceToken")])
async def test_a_dead_apns_token_becomes_invalid(
    relay: RelayServer, fake_apns: FakeAPNs, status: int, reason: str
) -> None:
    admin = await relay.admin_api()
    await register(admin, IOS, "ios")
    fake_apns.answer(IOS, status, reason, timestamp_ms=int(time.time() * 1000) + 60_000)
    (result,) = (await push(admin, token=IOS)).body["results"]
    assert result["status"] == "invalid_token"
    device = (await admin.get(f"/v1/devices/{IOS}")).body
    assert device["status"] == "invalid"
    assert device["invalid_reason"] == reason


async def test_an_apns_410_older_than_the_re_registration_keeps_the_device(
    relay: RelayServer, fake_apns: FakeAPNs
) -> None:
    admin = await relay.admin_api()
    await register(admin, IOS, "ios")
    fake_apns.answer(IOS, 410, "Unregistered", timestamp_ms=int(time.time() * 1000) - 3_600_000)
    (result,) = (await push(admin, token=IOS)).body["results"]
    assert result["status"] == "failed"
    assert "re-registered" in result["error"]
    assert (await admin.get(f"/v1/devices/{IOS}")).body["status"] == "active"


@pytest.mark.parametrize(
    ("code", "message", "status"),
    [
        ("UNREGISTERED", None, "invalid_token"),
        (
            "INVALID_ARGUMENT",
            "The registration token is not a valid FCM registration token",
            "invalid_token",
        ),
        ("INVALID_ARGUMENT", "Invalid value at 'message.data'", "failed"),
    ],
)
async def test_fcm_refusals_are_classified(
    relay: RelayServer, fake_fcm: FakeFCM, code: str, message: str | None, status: str
) -> None:
    admin = await relay.admin_api()
    await register(admin, ANDROID, "android")
    fake_fcm.answer(ANDROID, code, message)
    (result,) = (await push(admin, token=ANDROID)).body["results"]
    assert result["status"] == status
    expected_device = "invalid" if status == "invalid_token" else "active"
    assert (await admin.get(f"/v1/devices/{ANDROID}")).body["status"] == expected_device


async def test_a_wrong_topic_is_a_configuration_error_naming_the_setting(
    relay: RelayServer, fake_apns: FakeAPNs
) -> None:
    admin = await relay.admin_api()
    await register(admin, IOS, "ios")
    fake_apns.answer(IOS, 400, "DeviceTokenNotForTopic")
    (result,) = (await push(admin, token=IOS)).body["results"]
    assert result["status"] == "failed"
    assert "'default'" in result["error"]
    assert "apps.apns.topic" in result["error"]
    assert (await admin.get(f"/v1/devices/{IOS}")).body["status"] == "active"


async def test_a_sender_id_mismatch_is_a_configuration_error(
    relay: RelayServer, fake_fcm: FakeFCM
) -> None:
    admin = await relay.admin_api()
    await register(admin, ANDROID, "android")
    fake_fcm.answer(ANDROID, "SENDER_ID_MISMATCH")
    (result,) = (await push(admin, token=ANDROID)).body["results"]
    assert result["status"] == "failed"
    assert "apps.fcm" in result["error"]
    assert (await admin.get(f"/v1/devices/{ANDROID}")).body["status"] == "active"


async def test_a_retryable_apns_answer_is_retried(relay: RelayServer, fake_apns: FakeAPNs) -> None:
    admin = await relay.admin_api()
    await register(admin, IOS, "ios")
    fake_apns.answer(IOS, 500, "InternalServerError", times=1)
    (result,) = (await push(admin, token=IOS)).body["results"]
    assert result["status"] == "sent"
    assert len(fake_apns.requests) == 2


async def test_a_push_that_keeps_failing_gives_up_after_three_tries(
    relay: RelayServer, fake_apns: FakeAPNs
) -> None:
    admin = await relay.admin_api()
    await register(admin, IOS, "ios")
    fake_apns.answer(IOS, 429, "TooManyRequests")
    (result,) = (await push(admin, token=IOS)).body["results"]
    assert result["status"] == "failed"
    assert len(fake_apns.requests) == 3


async def test_an_ios_dry_run_contacts_nothing(relay: RelayServer, fake_apns: FakeAPNs) -> None:
    admin = await relay.admin_api()
    await register(admin, IOS, "ios")
    answer = await push(admin, token=IOS, dry_run=True)
    assert [r["status"] for r in answer.body["results"]] == ["validated"]
    assert fake_apns.requests == []
    assert (await admin.get(f"/v1/devices/{IOS}")).body["counts"]["sent"] == 0


async def test_an_android_dry_run_validates_only(relay: RelayServer, fake_fcm: FakeFCM) -> None:
    admin = await relay.admin_api()
    await register(admin, ANDROID, "android")
    answer = await push(admin, token=ANDROID, dry_run=True)
    assert [r["status"] for r in answer.body["results"]] == ["validated"]
    assert [r.validate_only for r in fake_fcm.requests] == [True]
    assert fake_fcm.messages() == []


async def test_an_unknown_token_or_customer_is_404(relay: RelayServer) -> None:
    admin = await relay.admin_api()
    assert (await push(admin, token="ff" * 32)).status == 404
    assert (await push(admin, customer_id="nobody")).status == 404


async def test_a_customer_without_reachable_devices_is_422(relay: RelayServer) -> None:
    admin = await relay.admin_api()
    await register(admin, IOS, "ios", customer_id="c1", push_enabled=False)
    answer = await push(admin, customer_id="c1")
    assert answer.status == 422
    assert "no reachable device" in answer.body["detail"]


@pytest.mark.parametrize("action", ["unregister", "replace"])
async def test_a_token_that_cannot_receive_is_422_naming_its_status(
    relay: RelayServer, action: str
) -> None:
    admin = await relay.admin_api()
    await register(admin, IOS, "ios")
    if action == "unregister":
        await admin.delete(f"/v1/devices/{IOS}")
    else:
        await admin.post(f"/v1/devices/{IOS}/refresh", {"new_token": "c3" * 32})
    answer = await push(admin, token=IOS)
    assert answer.status == 422
    assert ("unregistered" if action == "unregister" else "replaced") in answer.body["detail"]


async def test_an_app_without_credentials_is_422_naming_the_setting(relay: RelayServer) -> None:
    admin = await relay.admin_api("bare")
    await register(admin, IOS, "ios")
    answer = await push(admin, token=IOS)
    assert answer.status == 422
    assert "apps.apns.key_path" in answer.body["detail"]


async def test_in_a_mixed_send_the_platform_without_credentials_fails_naming_it(
    relay: RelayServer,
) -> None:
    admin = await relay.admin_api("ios-only")
    await register(admin, IOS, "ios", customer_id="c1")
    await register(admin, ANDROID, "android", customer_id="c1")
    results = {r["token"]: r for r in (await push(admin, customer_id="c1")).body["results"]}
    assert results[IOS]["status"] == "sent"
    assert results[ANDROID]["status"] == "failed"
    assert "apps.fcm.credentials_path" in results[ANDROID]["error"]


async def test_a_payload_over_4_kb_is_413_and_nothing_is_sent(
    relay: RelayServer, fake_apns: FakeAPNs
) -> None:
    admin = await relay.admin_api()
    await register(admin, IOS, "ios")
    answer = await push(admin, token=IOS, data={f"k{i}": "v" * 900 for i in range(5)})
    assert answer.status == 413
    assert fake_apns.requests == []


async def test_data_strings_over_1000_bytes_are_sent_when_the_payload_fits(
    relay: RelayServer, fake_apns: FakeAPNs
) -> None:
    """``data`` is not properties: only the provider's 4 KB limit applies."""
    admin = await relay.admin_api()
    await register(admin, IOS, "ios")
    answer = await push(admin, token=IOS, data={"coupon": "c" * 2000})
    assert answer.status == 200, answer.text
    assert answer.body["results"][0]["status"] == "sent"
    assert len(fake_apns.requests) == 1


async def test_stale_tokens_are_marked_and_left_out_of_customer_sends(start_relay: Any) -> None:
    relay = await start_relay(
        push=PushSettings(stale_after_days=0.5 / 86_400, hygiene_interval_seconds=0.1)
    )
    admin = await relay.admin_api()
    await register(admin, IOS, "ios", customer_id="c1")

    async def stale() -> bool:
        return (await admin.get(f"/v1/devices/{IOS}")).body["status"] == "stale"

    await eventually(stale)
    assert (await push(admin, customer_id="c1")).status == 422
    (result,) = (await push(admin, token=IOS)).body["results"]
    assert result["status"] == "sent"  # a stale token is still sent to when named


async def test_a_dead_token_is_deleted_from_its_customerio_person(
    start_relay: Any, fake_apns: FakeAPNs, customerio: Any
) -> None:
    relay = await start_relay(
        customerio=CustomerioSettings(site_id=SITE_ID, api_key=API_KEY, track_url=customerio.url)
    )
    admin = await relay.admin_api()
    await register(admin, IOS, "ios", customer_id="c1")
    fake_apns.answer(IOS, 400, "BadDeviceToken")
    delivery_id = (await push(admin, token=IOS)).body["delivery_id"]
    app = await relay.app_api()
    metric = {"id": "m1", "metric": "opened", "token": IOS, "delivery_id": delivery_id}
    await app.post("/v1/metrics", {"metrics": [metric]})

    def deleted() -> bool:
        return any(op.get("action") == "delete_device" for op in customerio.operations())

    await eventually(deleted)
    assert not any(op.get("type") == "delivery" for op in customerio.operations())


async def test_test_pushes_need_an_admin_key(relay: RelayServer) -> None:
    app = await relay.app_api()
    assert (await push(app, token=IOS)).status == 403
