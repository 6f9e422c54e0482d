"""Drop-in integrity (API.md "Sizes", "Devices", "Customer.io-compatible surfaces"), replayed
as the SDKs and server libraries send: deleted tokens stay deleted until registered again, one
size table on every surface (refused in the surface's own shape, never acknowledged and
dropped), device attributes as the SDKs send them, and Track-era shapes. What relay forwards
is checked at a fake Customer.io that validates every request against the published specs."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from relay_fakes.fake_customerio import FakeCustomerIO
from tests.compat_support import (
    ANDROID_TOKEN,
    CLIENT_KEY,
    IOS_TOKEN,
    android_context,
    basic,
    delivery_event,
    device,
    device_created,
    device_deleted,
    forwarding_sections,
    funnel,
    identify_call,
    mobile_batch,
    parsed,
    person_ops,
    post_ios_batch,
    profile,
    register_client_key,
    sdk_event,
    send,
)
from tests.support import RelayServer, make_settings, run_cli, two_apps, write_config
from tests.test_forwarding import drained

TRACK_AUTH = {"Authorization": basic("any-site-id", CLIENT_KEY)}
ID_150 = "é" * 75  # 150 bytes of UTF-8
ID_151 = "x" * 151
TOKEN_4096 = "t" * 4096
TOKEN_4097 = "t" * 4097
NOW = int(time.time())


@pytest.fixture
async def relay(tmp_path: Path, customerio: FakeCustomerIO) -> AsyncIterator[RelayServer]:
    """relay forwarding to the fake's Track API, with the key the app ships (app role)."""
    server = RelayServer(
        make_settings(tmp_path, apps=two_apps(), **forwarding_sections(customerio, cdp=False))
    )
    await server.start()
    await register_client_key(server)
    yield server
    await server.close()


def adds(fake: FakeCustomerIO, token: str = IOS_TOKEN) -> list[str]:
    """The people Customer.io was told the token was added to, in order."""
    return [
        op["identifiers"]["id"]
        for op in person_ops(fake, "add_device")
        if op["device"]["token"] == token
    ]


async def rejected(relay: RelayServer) -> list[dict[str, Any]]:
    answer = await (await relay.admin_api()).get("/v1/rejected")
    assert answer.status == 200, answer.text
    return answer.body


# --- deleted means deleted -----------------------------------------------------------------


async def test_a_logout_then_another_account_on_the_same_phone_never_revives_the_token(
    relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    """iOS clearIdentify sends Device Deleted; the next person identifies on the same install
    (same anonymous id) before the app registers the token again."""
    await post_ios_batch(relay, device_created(anonymous_id="a1", user_id="ann"))
    await post_ios_batch(relay, device_deleted(anonymous_id="a1", user_id="ann"))
    await post_ios_batch(relay, identify_call("bob", anonymous_id="a1"))
    stored = await device(relay, IOS_TOKEN)
    assert (stored["status"], stored["customer_id"]) == ("unregistered", "ann")
    assert (await profile(relay, "bob"))["devices"] == []
    await drained(relay)
    assert adds(customerio) == ["ann"]
    deletes = [op["identifiers"]["id"] for op in person_ops(customerio, "delete_device")]
    assert deletes == ["ann"]


async def test_registering_a_deleted_token_again_revives_it_for_the_new_person(
    relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    """The SDK's account switch: Device Deleted (old person), identify, Device Created (new)."""
    await post_ios_batch(relay, device_created(anonymous_id="a1", user_id="ann"))
    await post_ios_batch(
        relay,
        device_deleted(anonymous_id="a1", user_id="ann"),
        identify_call("bob", anonymous_id="a1"),
        device_created(anonymous_id="a1", user_id="bob"),
    )
    stored = await device(relay, IOS_TOKEN)
    assert (stored["status"], stored["customer_id"]) == ("active", "bob")
    await drained(relay)
    assert adds(customerio) == ["ann", "bob"]


async def test_a_native_delete_survives_identify_and_merge(relay: RelayServer) -> None:
    app, admin = await relay.app_api(), await relay.admin_api()
    body = {"platform": "android", "anonymous_id": "a1", "customer_id": "ann"}
    assert (await app.put(f"/v1/devices/{ANDROID_TOKEN}", body)).status == 201
    assert (await app.delete(f"/v1/devices/{ANDROID_TOKEN}")).status == 204
    assert (
        await app.post("/v1/identify", {"customer_id": "bob", "anonymous_id": "a1"})
    ).status == 200
    merged = await admin.post("/v1/profiles/merge", {"primary": "bob", "secondary": "ann"})
    assert merged.status == 200, merged.text
    assert [(d["token"], d["status"]) for d in merged.body["devices"]] == [
        (ANDROID_TOKEN, "unregistered")
    ]


async def test_a_track_delete_device_is_a_delete_not_a_logout(
    relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    device_body = {"device": {"id": IOS_TOKEN, "platform": "ios"}}
    await send(relay, "PUT", "/api/v1/customers/ann/devices", device_body, headers=TRACK_AUTH)
    path = f"/api/v1/customers/ann/devices/{IOS_TOKEN}"
    assert (await send(relay, "DELETE", path, headers=TRACK_AUTH)).status == 200
    identify = {"anonymous_id": "a1"}
    await send(relay, "PUT", "/api/v1/customers/ann", identify, headers=TRACK_AUTH)
    assert (await device(relay, IOS_TOKEN))["status"] == "unregistered"
    await drained(relay)
    assert adds(customerio) == ["ann"]


# --- one size table ------------------------------------------------------------------------


async def test_ids_of_150_bytes_are_accepted_on_every_surface(relay: RelayServer) -> None:
    path = f"/api/v1/customers/{ID_150}"
    assert (await send(relay, "PUT", path, {"email": "a@b.co"}, headers=TRACK_AUTH)).status == 200
    await post_ios_batch(relay, device_created(anonymous_id=ID_150, user_id=ID_150))
    assert (await device(relay, IOS_TOKEN))["anonymous_id"] == ID_150
    assert await rejected(relay) == []


async def test_a_151_byte_id_is_400_on_a_track_call_and_stores_nothing(relay: RelayServer) -> None:
    answer = await send(relay, "PUT", f"/api/v1/customers/{ID_151}", {}, headers=TRACK_AUTH)
    assert answer.status == 400
    assert "identifier" in parsed(answer)["meta"]["errors"][0]
    admin = await relay.admin_api()
    assert (await admin.get(f"/v1/profiles/{ID_151}")).status == 422


async def test_a_v2_batch_refuses_the_oversize_operation_by_batch_index_and_keeps_the_rest(
    relay: RelayServer,
) -> None:
    good = {"type": "person", "identifiers": {"id": "ann"}, "action": "identify"}
    long_id = {"type": "person", "identifiers": {"id": ID_151}, "action": "identify"}
    long_token = {
        "type": "person",
        "identifiers": {"id": "ann"},
        "action": "add_device",
        "device": {"token": TOKEN_4097, "platform": "ios"},
    }
    body = {"batch": [good, long_id, long_token]}
    answer = await send(relay, "POST", "/api/v2/batch", body, headers=TRACK_AUTH)
    assert answer.status == 207, answer.text
    errors = parsed(answer)["errors"]
    assert [(e["batch_index"], e["field"]) for e in errors] == [
        (1, "identifiers.id"),
        (2, "device.token"),
    ]
    assert (await profile(relay, "ann"))["devices"] == []


@pytest.mark.parametrize(
    "item, path",
    [
        (identify_call(ID_151, anonymous_id="a1"), "batch[1].userId"),
        (device_created(anonymous_id="a1", token=TOKEN_4097), "batch[1].context.device.token"),
        (delivery_event("opened", ID_151, anonymous_id="a1"), "batch[1].properties.deliveryId"),
        (
            sdk_event("track", anonymous_id="a1", event="Big", properties={"s": "x" * 1001}),
            "batch[1].properties.s",
        ),
        (identify_call("b\x00b", anonymous_id="a1"), "batch[1].userId"),
        (sdk_event("track", anonymous_id="a1", event="Big\x00"), "batch[1].event"),
    ],
    ids=["user-id", "token", "delivery-id", "property-string", "nul-user-id", "nul-event"],
)
async def test_a_pipelines_batch_commits_good_items_and_logs_each_refused_one(
    relay: RelayServer, item: dict[str, Any], path: str
) -> None:
    good = identify_call("ann", anonymous_id="a0")
    answer = await send(relay, "POST", "/cdp/v1/b", mobile_batch(good, item))
    assert (answer.status, parsed(answer)) == (200, {})
    assert (await profile(relay, "ann"))["anonymous_ids"] == ["a0"]
    (entry,) = await rejected(relay)
    assert (entry["surface"], entry["path"], entry["reason"]) == ("pipelines", path, "invalid")
    assert TOKEN_4097 not in json.dumps(entry["item"])  # tokens masked


async def test_a_4096_character_token_is_accepted_and_forwarded(
    relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    await post_ios_batch(relay, device_created(anonymous_id="a1", user_id="ann", token=TOKEN_4096))
    assert (await device(relay, TOKEN_4096))["status"] == "active"
    await drained(relay)
    assert adds(customerio, TOKEN_4096) == ["ann"]


async def test_a_single_pipelines_call_over_the_limits_is_400(relay: RelayServer) -> None:
    body = identify_call(ID_151, anonymous_id="a1")
    answer = await send(
        relay, "POST", "/cdp/v1/identify", body, headers={"Authorization": basic(CLIENT_KEY)}
    )
    assert answer.status == 400
    assert parsed(answer)["code"] == "invalid"
    assert "userId" in parsed(answer)["message"]
    assert await rejected(relay) == []


async def test_the_rejected_items_log_is_counted_and_shown_by_the_cli(
    relay: RelayServer, tmp_path: Path
) -> None:
    item = identify_call(ID_151, anonymous_id="a1")
    await send(relay, "POST", "/cdp/v1/b", mobile_batch(item))
    exposition = (await relay.api().get("/metrics")).text
    assert 'relay_rejected_items_total{reason="invalid",surface="pipelines"} 1.0' in exposition
    config = write_config(tmp_path / "relay.toml", relay.settings.storage.url, 0)
    shown = await asyncio.to_thread(run_cli, "rejected", "--config", str(config))
    assert shown.returncode == 0, shown.stderr
    assert "batch[0].userId" in shown.stdout


# --- device attributes as the SDKs send them -----------------------------------------------


async def test_android_device_attributes_are_stored_and_forwarded(
    relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    """Android sends device_os as a number and push_enabled as a bool, gzip + text/plain."""
    created = sdk_event(
        "track",
        anonymous_id="a1",
        user_id="ann",
        context=android_context(),
        event="Device Created or Updated",
        properties={
            "device_os": 34,
            "push_enabled": False,
            "device_locale": "de-DE",
            "timezone": "Europe/Berlin",
            "app_version": "3.1",
            "device_model": "Pixel 8",
            "cio_sdk_version": "4.19.0",
        },
    )
    answer = await send(
        relay, "POST", "/cdp/v1/b", mobile_batch(created), compress=True, content_type="text/plain"
    )
    assert answer.status == 200, answer.text
    stored = await device(relay, ANDROID_TOKEN)
    assert (stored["platform"], stored["os_version"], stored["push_enabled"]) == (
        "android",
        "34",
        False,
    )
    assert (stored["locale"], stored["timezone"]) == ("de-DE", "Europe/Berlin")
    assert stored["attributes"] == {"cio_sdk_version": "4.19.0"}
    await drained(relay)
    (added,) = person_ops(customerio, "add_device")
    attributes = added["device"]["attributes"]
    assert attributes["device_os"] == "34"
    assert attributes["push_enabled"] == "false"
    assert (attributes["timezone"], attributes["device_locale"]) == ("Europe/Berlin", "de-DE")


async def test_the_context_os_version_is_used_when_no_device_os_is_sent(relay: RelayServer) -> None:
    created = device_created(anonymous_id="a1")
    del created["properties"]["device_os"]
    await post_ios_batch(relay, created)
    assert (await device(relay, IOS_TOKEN))["os_version"] == "17.5"


@pytest.mark.parametrize("platform", ["iOS", "IOS", "Android"])
async def test_track_era_platform_names_are_accepted_in_any_case(
    relay: RelayServer, platform: str
) -> None:
    body = {"device": {"id": IOS_TOKEN, "platform": platform, "last_used": 1700000000}}
    answer = await send(relay, "PUT", "/api/v1/customers/ann/devices", body, headers=TRACK_AUTH)
    assert answer.status == 200, answer.text
    assert (await device(relay, IOS_TOKEN))["platform"] == platform.lower()


async def test_the_legacy_push_events_path_records_the_metric(relay: RelayServer) -> None:
    await post_ios_batch(relay, device_created(anonymous_id="a1", user_id="ann"))
    body = {"delivery_id": "dlv-1", "event": "opened", "device_id": IOS_TOKEN, "timestamp": NOW}
    answer = await send(relay, "POST", "/push/events", body, headers=TRACK_AUTH)
    assert (answer.status, parsed(answer)) == (200, {})
    assert (await funnel(relay, "dlv-1"))["opened"] == 1


async def test_a_track_screen_named_like_a_conversion_is_a_screen_not_a_conversion(
    relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    await post_ios_batch(
        relay,
        device_created(anonymous_id="a1", user_id="ann"),
        delivery_event("opened", "dlv-1", anonymous_id="a1", user_id="ann"),
    )
    screen = {"name": "Order Completed", "type": "screen", "data": {}}
    answer = await send(relay, "POST", "/api/v1/customers/ann/events", screen, headers=TRACK_AUTH)
    assert answer.status == 200, answer.text
    assert (await funnel(relay, "dlv-1"))["converted"] == 0
    await drained(relay)
    assert [op["name"] for op in person_ops(customerio, "screen")] == ["Order Completed"]


async def test_a_chunked_gzip_batch_is_read_whole(relay: RelayServer) -> None:
    """The transfer as Android's HTTP client may send it: chunked, gzip, text/plain."""
    raw = gzip.compress(json.dumps(mobile_batch(identify_call("ann", anonymous_id="a1"))).encode())

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(raw), 64):
            yield raw[start : start + 64]

    session = relay.api().session
    headers = {"Content-Type": "text/plain", "Content-Encoding": "gzip"}
    async with session.post(relay.base_url + "/cdp/v1/b", data=chunks(), headers=headers) as r:
        assert r.status == 200, await r.text()
    assert (await profile(relay, "ann"))["anonymous_ids"] == ["a1"]


async def test_an_anonymous_registration_after_a_logout_attaches_the_token_to_nobody(
    relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    """clearIdentify: Device Deleted for ann, a new anonymous id, the token registered again."""
    await post_ios_batch(relay, device_created(anonymous_id="a1", user_id="ann"))
    await post_ios_batch(
        relay,
        device_deleted(anonymous_id="a1", user_id="ann"),
        device_created(anonymous_id="a2"),
    )
    stored = await device(relay, IOS_TOKEN)
    assert (stored["status"], stored["customer_id"]) == ("active", None)
    await drained(relay)
    assert adds(customerio) == ["ann"]
