"""The Pipelines-compatible surface under /cdp/v1/ (API.md "Customer.io-compatible surfaces"),
driven with the request shapes Customer.io's iOS and Android SDKs send when their ``apiHost`` and
``cdnHost`` point at relay (reference/customerio.md §3.3, §3.5). Asserts what relay stored."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from relay.settings import ServerSettings
from tests.compat_support import (
    ANDROID_TOKEN,
    CLIENT_KEY,
    IOS_TOKEN,
    android_context,
    background_delivered,
    basic,
    delivery_event,
    device,
    device_created,
    device_deleted,
    funnel,
    identify_call,
    message_id,
    mobile_batch,
    parsed,
    post_ios_batch,
    profile,
    register_client_key,
    send,
    timeline,
)
from tests.support import RelayServer, free_port, make_settings, run_cli, two_apps, write_config


@pytest.fixture
async def relay(relay: RelayServer) -> RelayServer:
    """The conftest relay, with the key the app already ships registered as an app key."""
    await register_client_key(relay)
    return relay


async def started(tmp_path: Path, **server: Any) -> RelayServer:
    settings = make_settings(
        tmp_path, apps=two_apps(), server=ServerSettings(listen="127.0.0.1:0", **server)
    )
    relay = RelayServer(settings)
    await relay.start()
    await register_client_key(relay)
    return relay


# --- answers -------------------------------------------------------------------------------


SINGLE_CALLS = {
    "track": {"type": "track", "userId": "c1", "event": "Viewed Product", "properties": {}},
    "identify": {"type": "identify", "userId": "c1", "traits": {"email": "c1@example.com"}},
    "screen": {"type": "screen", "userId": "c1", "name": "Checkout", "properties": {}},
}


@pytest.mark.parametrize("call", sorted(SINGLE_CALLS))
async def test_a_single_call_is_answered_200_with_an_empty_object(
    relay: RelayServer, call: str
) -> None:
    body = {**SINGLE_CALLS[call], "messageId": message_id()}
    answer = await send(
        relay, "POST", f"/cdp/v1/{call}", body, headers={"Authorization": basic(CLIENT_KEY)}
    )
    assert answer.status == 200, answer.text
    assert answer.content_type == "application/json"
    assert parsed(answer) == {}


@pytest.mark.parametrize("path", ["/cdp/v1/b", "/cdp/v1/batch"])
async def test_a_batch_is_answered_200_with_an_empty_object(relay: RelayServer, path: str) -> None:
    answer = await send(relay, "POST", path, mobile_batch(device_created(anonymous_id="a1")))
    assert answer.status == 200, answer.text
    assert parsed(answer) == {}


# --- credentials ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers, write_key",
    [
        ({}, CLIENT_KEY),  # the mobile SDKs: key in the body, no Authorization header
        ({"Authorization": basic(CLIENT_KEY)}, None),  # Basic KEY: (Python libraries)
        ({"Authorization": f"Bearer {CLIENT_KEY}"}, None),
    ],
    ids=["body-write-key", "basic", "bearer"],
)
async def test_the_shipped_key_is_accepted_in_every_pipelines_form(
    relay: RelayServer, headers: dict[str, str], write_key: str | None
) -> None:
    body: dict[str, Any] = {"batch": [device_created(anonymous_id="a1")]}
    if write_key is not None:
        body["writeKey"] = write_key
    answer = await send(relay, "POST", "/cdp/v1/batch", body, headers=headers)
    assert answer.status == 200, answer.text
    assert (await device(relay, IOS_TOKEN))["platform"] == "ios"


@pytest.mark.parametrize(
    "headers, write_key",
    [
        ({}, "not-a-relay-key"),
        ({"Authorization": basic("not-a-relay-key")}, None),
        ({"Authorization": "Bearer not-a-relay-key"}, None),
        ({}, None),
    ],
    ids=["body-write-key", "basic", "bearer", "none"],
)
async def test_an_unknown_key_is_401_in_the_pipelines_error_shape(
    relay: RelayServer, headers: dict[str, str], write_key: str | None
) -> None:
    body: dict[str, Any] = {"batch": [device_created(anonymous_id="a1")]}
    if write_key is not None:
        body["writeKey"] = write_key
    answer = await send(relay, "POST", "/cdp/v1/b", body, headers=headers)
    assert answer.status == 401, answer.text
    assert answer.content_type == "application/json"
    error = parsed(answer)
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]


async def test_a_call_with_an_unknown_key_stores_nothing(relay: RelayServer) -> None:
    body = mobile_batch(device_created(anonymous_id="a1"), write_key="not-a-relay-key")
    await send(relay, "POST", "/cdp/v1/b", body)
    answer = await (await relay.admin_api()).get(f"/v1/devices/{IOS_TOKEN}")
    assert answer.status == 404


async def test_a_revoked_key_is_401(relay: RelayServer) -> None:
    keys = await relay.store.list_keys()
    (shipped,) = [k for k in keys if k.name == "shipped client key"]
    await relay.store.revoke_key(shipped.id)
    answer = await send(relay, "POST", "/cdp/v1/b", mobile_batch(device_created(anonymous_id="a")))
    assert answer.status == 401, answer.text


# --- transport: Android ----------------------------------------------------------------------


async def test_an_android_gzip_text_plain_batch_registers_the_device(relay: RelayServer) -> None:
    event = device_created(anonymous_id="a1", context=android_context(ANDROID_TOKEN))
    answer = await send(
        relay,
        "POST",
        "/cdp/v1/b",
        mobile_batch(event),
        compress=True,
        content_type="text/plain",
    )
    assert answer.status == 200, answer.text
    assert parsed(answer) == {}
    stored = await device(relay, ANDROID_TOKEN)
    assert stored["platform"] == "android"
    assert stored["anonymous_id"] == "a1"


async def test_unparseable_json_is_400(relay: RelayServer) -> None:
    answer = await relay.api().request(
        "POST",
        "/cdp/v1/b",
        data=b'{"batch": [',
        headers={"Content-Type": "application/json", "Authorization": basic(CLIENT_KEY)},
    )
    assert answer.status == 400, answer.text
    assert set(parsed(answer)) >= {"code", "message"}


# --- settings ------------------------------------------------------------------------------


async def test_settings_name_relay_as_the_api_host_from_public_url(tmp_path: Path) -> None:
    relay = await started(tmp_path, public_url="https://relay.example.com")
    try:
        answer = await send(relay, "GET", f"/cdp/v1/projects/{CLIENT_KEY}/settings")
    finally:
        await relay.close()
    assert answer.status == 200, answer.text
    entry = parsed(answer)["integrations"]["Customer.io Data Pipelines"]
    assert entry["apiKey"] == CLIENT_KEY
    assert entry["apiHost"] == "relay.example.com/cdp/v1"


async def test_settings_keep_a_non_default_port_of_public_url(tmp_path: Path) -> None:
    relay = await started(tmp_path, public_url="https://relay.example.com:8443")
    try:
        answer = await send(relay, "GET", f"/cdp/v1/projects/{CLIENT_KEY}/settings")
    finally:
        await relay.close()
    entry = parsed(answer)["integrations"]["Customer.io Data Pipelines"]
    assert entry["apiHost"] == "relay.example.com:8443/cdp/v1"


async def test_settings_without_public_url_name_the_requests_host(relay: RelayServer) -> None:
    answer = await send(
        relay,
        "GET",
        f"/cdp/v1/projects/{CLIENT_KEY}/settings",
        headers={"Host": "relay.internal:9443"},
    )
    assert answer.status == 200, answer.text
    entry = parsed(answer)["integrations"]["Customer.io Data Pipelines"]
    assert entry["apiHost"] == "relay.internal:9443/cdp/v1"


async def test_settings_need_no_authorization_header(relay: RelayServer) -> None:
    answer = await send(relay, "GET", f"/cdp/v1/projects/{CLIENT_KEY}/settings")
    assert answer.status == 200, answer.text
    host = relay.base_url.removeprefix("http://")
    entry = parsed(answer)["integrations"]["Customer.io Data Pipelines"]
    assert entry["apiHost"] == f"{host}/cdp/v1"
    assert "cdp.customer.io" not in answer.text


# --- devices -------------------------------------------------------------------------------


async def test_device_created_registers_the_token_on_the_user(relay: RelayServer) -> None:
    await post_ios_batch(relay, device_created(anonymous_id="a1", user_id="c1"))
    stored = await device(relay, IOS_TOKEN)
    assert stored["platform"] == "ios"
    assert stored["status"] == "active"
    assert stored["customer_id"] == "c1"
    assert [d["token"] for d in (await profile(relay, "c1"))["devices"]] == [IOS_TOKEN]


async def test_push_enabled_false_as_a_string_disables_push(relay: RelayServer) -> None:
    await post_ios_batch(relay, device_created(anonymous_id="a1", push_enabled="false"))
    assert (await device(relay, IOS_TOKEN))["push_enabled"] is False


async def test_push_enabled_true_as_a_string_enables_push_again(relay: RelayServer) -> None:
    await post_ios_batch(relay, device_created(anonymous_id="a1", push_enabled="false"))
    await post_ios_batch(relay, device_created(anonymous_id="a1", push_enabled="true"))
    assert (await device(relay, IOS_TOKEN))["push_enabled"] is True


async def test_an_update_without_a_device_type_keeps_the_platform(relay: RelayServer) -> None:
    """``context.device.type`` is optional (only the token is required): an update that omits
    it must not turn an Android device into an iOS one."""
    event = device_created(anonymous_id="a1", context=android_context(ANDROID_TOKEN))
    await post_ios_batch(relay, event)
    update = device_created(anonymous_id="a1", push_enabled="false")
    update["context"] = {"device": {"token": ANDROID_TOKEN}}
    await post_ios_batch(relay, update)
    stored = await device(relay, ANDROID_TOKEN)
    assert stored["push_enabled"] is False
    assert stored["platform"] == "android"


async def test_an_anonymous_device_keeps_the_installs_anonymous_id(relay: RelayServer) -> None:
    await post_ios_batch(relay, device_created(anonymous_id="install-1"))
    stored = await device(relay, IOS_TOKEN)
    assert stored["anonymous_id"] == "install-1"
    assert stored["customer_id"] is None


async def test_device_deleted_unregisters_the_device(relay: RelayServer) -> None:
    await post_ios_batch(relay, device_created(anonymous_id="a1", user_id="c1"))
    await post_ios_batch(relay, device_deleted(anonymous_id="a1", user_id="c1"))
    assert (await device(relay, IOS_TOKEN))["status"] == "unregistered"


async def test_a_token_refresh_unregisters_the_old_token_and_registers_the_new(
    relay: RelayServer,
) -> None:
    new_token = "f" * 64
    await post_ios_batch(relay, device_created(anonymous_id="a1", user_id="c1"))
    await post_ios_batch(
        relay,
        device_deleted(anonymous_id="a1", user_id="c1", token=IOS_TOKEN),
        device_created(anonymous_id="a1", user_id="c1", token=new_token),
    )
    assert (await device(relay, new_token))["customer_id"] == "c1"
    assert (await device(relay, new_token))["status"] == "active"
    assert (await device(relay, IOS_TOKEN))["status"] == "unregistered"


async def test_an_account_switch_moves_the_device_to_the_new_user(relay: RelayServer) -> None:
    await post_ios_batch(relay, device_created(anonymous_id="a1", user_id="c1"))
    await post_ios_batch(
        relay,
        device_deleted(anonymous_id="a1", user_id="c1"),
        identify_call("c2", anonymous_id="a1"),
        device_created(anonymous_id="a1", user_id="c2"),
    )
    assert (await device(relay, IOS_TOKEN))["customer_id"] == "c2"
    assert (await profile(relay, "c1"))["devices"] == []


async def test_device_deleted_for_another_user_leaves_the_device_where_it_is(
    relay: RelayServer,
) -> None:
    await post_ios_batch(relay, device_created(anonymous_id="a1", user_id="c2"))
    await post_ios_batch(relay, device_deleted(anonymous_id="a1", user_id="c1"))
    assert (await device(relay, IOS_TOKEN))["customer_id"] == "c2"


# --- identity ------------------------------------------------------------------------------


async def test_identify_records_the_traits_email(relay: RelayServer) -> None:
    await post_ios_batch(
        relay, identify_call("c1", anonymous_id="a1", traits={"email": "c1@example.com"})
    )
    assert (await profile(relay, "c1"))["email"] == "c1@example.com"


async def test_identify_with_the_anonymous_id_stitches_the_prior_device_and_metrics(
    relay: RelayServer,
) -> None:
    await post_ios_batch(
        relay,
        device_created(anonymous_id="install-1"),
        delivery_event("opened", "dlv-1", anonymous_id="install-1"),
    )
    await post_ios_batch(relay, identify_call("c1", anonymous_id="install-1"))
    stitched = await profile(relay, "c1")
    assert "install-1" in stitched["anonymous_ids"]
    assert [d["token"] for d in stitched["devices"]] == [IOS_TOKEN]
    assert stitched["counts"]["opened"] == 1


async def test_an_alias_call_without_a_pipelines_key_is_refused_and_creates_no_identity(
    relay: RelayServer,
) -> None:
    """Track cannot express an alias: without cdp_api_key relay could only drop it, so 400."""
    await post_ios_batch(relay, device_created(anonymous_id="install-1"))
    body = {"type": "alias", "userId": "c1", "previousId": "install-1", "messageId": message_id()}
    answer = await send(
        relay, "POST", "/cdp/v1/alias", body, headers={"Authorization": basic(CLIENT_KEY)}
    )
    assert answer.status == 400, answer.text
    assert "cdp_api_key" in parsed(answer)["message"]
    assert (await device(relay, IOS_TOKEN))["customer_id"] is None


# --- push metrics --------------------------------------------------------------------------


async def test_report_delivery_events_become_relay_metrics(relay: RelayServer) -> None:
    await post_ios_batch(
        relay,
        device_created(anonymous_id="a1", user_id="c1"),
        delivery_event("delivered", "dlv-1", anonymous_id="a1", user_id="c1"),
        delivery_event("opened", "dlv-1", anonymous_id="a1", user_id="c1"),
    )
    counts = await funnel(relay, "dlv-1")
    assert (counts["delivered"], counts["opened"]) == (1, 1)
    assert all(entry["token"] == IOS_TOKEN for entry in await timeline(relay, "dlv-1"))
    assert (await device(relay, IOS_TOKEN))["counts"]["opened"] == 1


async def test_clicked_counts_as_opened(relay: RelayServer) -> None:
    await post_ios_batch(relay, delivery_event("clicked", "dlv-1", anonymous_id="a1"))
    counts = await funnel(relay, "dlv-1")
    assert counts["opened"] == 1
    assert counts["tapped"] == 0


async def test_a_converted_report_is_a_converted_metric(relay: RelayServer) -> None:
    await post_ios_batch(relay, delivery_event("converted", "dlv-1", anonymous_id="a1"))
    assert (await funnel(relay, "dlv-1"))["converted"] == 1


async def test_the_direct_background_delivered_call_is_a_delivered_metric(
    relay: RelayServer,
) -> None:
    answer = await send(
        relay,
        "POST",
        "/cdp/v1/track",
        background_delivered("dlv-1"),
        headers={"Authorization": basic(CLIENT_KEY)},
    )
    assert answer.status == 200, answer.text
    assert parsed(answer) == {}
    assert (await funnel(relay, "dlv-1"))["delivered"] == 1


async def test_the_delivery_id_as_anonymous_id_is_never_an_identity(relay: RelayServer) -> None:
    await post_ios_batch(relay, device_created(anonymous_id="install-1"))
    await send(
        relay,
        "POST",
        "/cdp/v1/track",
        background_delivered("dlv-1"),
        headers={"Authorization": basic(CLIENT_KEY)},
    )
    assert (await device(relay, IOS_TOKEN))["anonymous_id"] == "install-1"
    await post_ios_batch(relay, identify_call("c1", anonymous_id="install-1"))
    stitched = await profile(relay, "c1")
    assert stitched["anonymous_ids"] == ["install-1"]
    assert stitched["counts"]["delivered"] == 1


async def test_identifying_the_delivery_id_does_not_claim_the_device(relay: RelayServer) -> None:
    await post_ios_batch(relay, device_created(anonymous_id="install-1"))
    await send(
        relay,
        "POST",
        "/cdp/v1/track",
        background_delivered("dlv-1"),
        headers={"Authorization": basic(CLIENT_KEY)},
    )
    await post_ios_batch(relay, identify_call("intruder", anonymous_id="dlv-1"))
    assert (await device(relay, IOS_TOKEN))["customer_id"] is None
    assert (await profile(relay, "intruder"))["counts"]["delivered"] == 0


async def test_a_repeated_call_without_message_id_counts_once(relay: RelayServer) -> None:
    for _ in range(3):
        answer = await send(
            relay,
            "POST",
            "/cdp/v1/track",
            background_delivered("dlv-1"),
            headers={"Authorization": basic(CLIENT_KEY)},
        )
        assert answer.status == 200, answer.text
    assert (await funnel(relay, "dlv-1"))["delivered"] == 1


# Whole seconds in the recent past (older ones are past the [retention] horizon), and as shown.
YESTERDAY = int(time.time()) - 86_400
YESTERDAY_SHOWN = datetime.fromtimestamp(YESTERDAY, UTC).strftime("%Y-%m-%dT%H:%M:%S")


async def test_an_integer_timestamp_above_1e11_is_milliseconds(relay: RelayServer) -> None:
    body = background_delivered("dlv-1", timestamp_ms=YESTERDAY * 1000 + 123)
    await send(relay, "POST", "/cdp/v1/track", body, headers={"Authorization": basic(CLIENT_KEY)})
    (entry,) = await timeline(relay, "dlv-1")
    assert entry["at"] == f"{YESTERDAY_SHOWN}.123Z"


async def test_an_integer_timestamp_below_1e11_is_seconds(relay: RelayServer) -> None:
    body = background_delivered("dlv-1", timestamp_ms=YESTERDAY)
    await send(relay, "POST", "/cdp/v1/track", body, headers={"Authorization": basic(CLIENT_KEY)})
    (entry,) = await timeline(relay, "dlv-1")
    assert entry["at"] == f"{YESTERDAY_SHOWN}.000Z"


async def test_an_iso_timestamp_is_the_metrics_time(relay: RelayServer) -> None:
    event = delivery_event("opened", "dlv-1", anonymous_id="a1")
    event["timestamp"] = f"{YESTERDAY_SHOWN}.678Z"
    await post_ios_batch(relay, event)
    (entry,) = await timeline(relay, "dlv-1")
    assert entry["at"] == f"{YESTERDAY_SHOWN}.678Z"


# --- replays -------------------------------------------------------------------------------


async def snapshot(relay: RelayServer) -> tuple[Any, ...]:
    admin = await relay.admin_api()
    return (
        await device(relay, IOS_TOKEN),
        await profile(relay, "c1"),
        await funnel(relay, "dlv-1"),
        (await admin.get("/v1/outbox")).body["pending"],
    )


async def test_a_replayed_batch_changes_nothing(relay: RelayServer) -> None:
    batch = mobile_batch(
        device_created(anonymous_id="a1"),
        identify_call("c1", anonymous_id="a1", traits={"email": "c1@example.com"}),
        delivery_event("delivered", "dlv-1", anonymous_id="a1", user_id="c1"),
        delivery_event("opened", "dlv-1", anonymous_id="a1", user_id="c1"),
    )
    assert (await send(relay, "POST", "/cdp/v1/b", batch)).status == 200
    before = await snapshot(relay)
    replay = await send(relay, "POST", "/cdp/v1/b", batch)
    assert replay.status == 200, replay.text
    assert parsed(replay) == {}
    assert await snapshot(relay) == before


async def test_a_replayed_device_deleted_does_not_undo_a_later_login(relay: RelayServer) -> None:
    deleted = device_deleted(anonymous_id="a1", user_id="c1")
    await post_ios_batch(relay, device_created(anonymous_id="a1", user_id="c1"))
    await post_ios_batch(relay, deleted)
    await post_ios_batch(relay, device_created(anonymous_id="a1", user_id="c1"))
    await post_ios_batch(relay, deleted)  # the SDK retries a batch it got no answer for
    assert (await device(relay, IOS_TOKEN))["customer_id"] == "c1"


async def test_the_same_message_id_in_another_app_is_not_a_duplicate(
    relay: RelayServer,
) -> None:
    await relay.store.create_key("other", "app", "other app's key", "other-apps-write-key")
    event = delivery_event("opened", "dlv-1", anonymous_id="a1")
    await send(relay, "POST", "/cdp/v1/b", mobile_batch(event))
    answer = await send(
        relay, "POST", "/cdp/v1/b", mobile_batch(event, write_key="other-apps-write-key")
    )
    assert answer.status == 200, answer.text
    other = await (await relay.admin_api("other")).get("/v1/deliveries/dlv-1")
    assert other.body["funnel"]["opened"] == 1


# --- keys from the CLI ---------------------------------------------------------------------


async def test_a_key_registered_with_the_cli_value_is_accepted(
    relay: RelayServer, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "relay.toml", tmp_path / "relay.db", free_port())
    created = run_cli(
        "keys",
        "create",
        "--app",
        "default",
        "--role",
        "app",
        "--value",
        "ios-app-key-2024",
        "--config",
        str(config),
    )
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip().splitlines()[-1] == "ios-app-key-2024"
    body = mobile_batch(device_created(anonymous_id="a1"), write_key="ios-app-key-2024")
    answer = await send(relay, "POST", "/cdp/v1/b", body)
    assert answer.status == 200, answer.text


# --- robustness and scoping ----------------------------------------------------------------


async def test_a_bad_item_does_not_block_the_rest_of_the_batch(relay: RelayServer) -> None:
    """iOS keeps a batch it got a non-400 error for and Android drops one on any 4xx: a single
    unusable event must neither poison nor lose the batch."""
    bad = device_created(anonymous_id="a1", token="not a token!")
    good = device_created(anonymous_id="a1", token=IOS_TOKEN)
    answer = await send(relay, "POST", "/cdp/v1/b", mobile_batch(bad, good))
    assert answer.status == 200, answer.text
    assert (await device(relay, IOS_TOKEN))["status"] == "active"


async def test_the_key_of_another_app_writes_into_that_app(relay: RelayServer) -> None:
    await relay.store.create_key("other", "app", "other app's key", "other-apps-write-key")
    body = mobile_batch(device_created(anonymous_id="a1"), write_key="other-apps-write-key")
    assert (await send(relay, "POST", "/cdp/v1/b", body)).status == 200
    assert (await (await relay.admin_api("other")).get(f"/v1/devices/{IOS_TOKEN}")).status == 200
    assert (await (await relay.admin_api()).get(f"/v1/devices/{IOS_TOKEN}")).status == 404


async def test_a_metric_reported_before_its_device_registers_attaches_to_it(
    relay: RelayServer,
) -> None:
    await post_ios_batch(relay, delivery_event("delivered", "dlv-1", anonymous_id="a1"))
    await post_ios_batch(relay, device_created(anonymous_id="a1", user_id="c1"))
    assert (await device(relay, IOS_TOKEN))["counts"]["delivered"] == 1


async def test_settings_ignore_a_trailing_slash_of_public_url(tmp_path: Path) -> None:
    relay = await started(tmp_path, public_url="https://relay.example.com/")
    try:
        answer = await send(relay, "GET", f"/cdp/v1/projects/{CLIENT_KEY}/settings")
    finally:
        await relay.close()
    entry = parsed(answer)["integrations"]["Customer.io Data Pipelines"]
    assert entry["apiHost"] == "relay.example.com/cdp/v1"


async def test_settings_keep_the_path_of_public_url(tmp_path: Path) -> None:
    """relay behind a reverse proxy under a path: the SDK must keep that path."""
    relay = await started(tmp_path, public_url="https://example.com/relay")
    try:
        answer = await send(relay, "GET", f"/cdp/v1/projects/{CLIENT_KEY}/settings")
    finally:
        await relay.close()
    entry = parsed(answer)["integrations"]["Customer.io Data Pipelines"]
    assert entry["apiHost"] == "example.com/relay/cdp/v1"
