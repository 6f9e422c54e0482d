"""The Track-compatible surface at Customer.io's own paths (API.md "Customer.io-compatible
surfaces"), and what relay forwards of everything its compat routes receive: devices,
identities and push metrics through relay's own forwarding (once), the rest to Customer.io's
Pipelines API (``[customerio] cdp_api_key``) or Track API, checked at a fake Customer.io that
validates every request against the published specs."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from relay_fakes.fake_customerio import FakeCustomerIO
from tests.compat_support import (
    ANDROID_TOKEN,
    CDP_KEY,
    CLIENT_KEY,
    IOS_TOKEN,
    basic,
    delivery_event,
    delivery_ops,
    device,
    device_created,
    device_deleted,
    forwarding_sections,
    funnel,
    identify_call,
    mobile_batch,
    parsed,
    person_ops,
    pipelines_calls,
    pipelines_requests,
    post_ios_batch,
    profile,
    register_client_key,
    sdk_event,
    send,
    track_v1_calls,
)
from tests.support import RelayServer, eventually, make_settings, started_servers, two_apps
from tests.test_forwarding import drained

TRACK_AUTH = {"Authorization": basic("any-site-id", CLIENT_KEY)}


@pytest.fixture
async def relay(relay: RelayServer) -> RelayServer:
    """The conftest relay (not forwarding), with the backend's Track key registered."""
    await register_client_key(relay)
    return relay


async def track(relay: RelayServer, method: str, path: str, body: Any = None, **kw: Any) -> Any:
    answer = await send(relay, method, path, body, headers=TRACK_AUTH, **kw)
    assert answer.status == 200, answer.text
    assert parsed(answer) == {}
    return answer


def add_device_body(token: str = IOS_TOKEN, platform: str = "ios", **attributes: Any) -> Any:
    return {"device": {"id": token, "platform": platform, "attributes": attributes}}


# --- what relay stores ---------------------------------------------------------------------


async def test_identify_creates_the_profile_with_its_email(relay: RelayServer) -> None:
    await track(relay, "PUT", "/api/v1/customers/c1", {"email": "c1@example.com", "plan": "gold"})
    assert (await profile(relay, "c1"))["email"] == "c1@example.com"


async def test_identify_with_anonymous_id_stitches_the_anonymous_device(
    relay: RelayServer,
) -> None:
    app = await relay.app_api()
    await app.put(f"/v1/devices/{IOS_TOKEN}", {"platform": "ios", "anonymous_id": "a1"})
    await track(relay, "PUT", "/api/v1/customers/c1", {"anonymous_id": "a1"})
    stitched = await profile(relay, "c1")
    assert "a1" in stitched["anonymous_ids"]
    assert [d["token"] for d in stitched["devices"]] == [IOS_TOKEN]


async def test_an_identifier_is_url_decoded(relay: RelayServer) -> None:
    await track(relay, "PUT", "/api/v1/customers/jane%2Bshop%40example.com", {})
    assert (await profile(relay, "jane+shop@example.com"))["customer_id"] == "jane+shop@example.com"


async def test_add_device_registers_the_token_on_the_customer(relay: RelayServer) -> None:
    body = add_device_body(ANDROID_TOKEN, "android", push_enabled="false", app_version="3.1")
    await track(relay, "PUT", "/api/v1/customers/c1/devices", body)
    stored = await device(relay, ANDROID_TOKEN)
    assert stored["platform"] == "android"
    assert stored["customer_id"] == "c1"
    assert stored["push_enabled"] is False


async def test_delete_device_unregisters_the_device(relay: RelayServer) -> None:
    await track(relay, "PUT", "/api/v1/customers/c1/devices", add_device_body())
    await track(relay, "DELETE", f"/api/v1/customers/c1/devices/{IOS_TOKEN}", {})
    assert (await device(relay, IOS_TOKEN))["status"] == "unregistered"
    assert [d["status"] for d in (await profile(relay, "c1"))["devices"]] == ["unregistered"]


async def test_a_push_metric_counts_for_its_delivery(relay: RelayServer) -> None:
    body = {"delivery_id": "dlv-1", "metric": "delivered", "recipient": IOS_TOKEN}
    yesterday = int(time.time()) - 86_400  # within the [retention] horizon
    await track(relay, "POST", "/api/v1/metrics", {**body, "timestamp": yesterday})
    assert (await funnel(relay, "dlv-1"))["delivered"] == 1


async def test_the_deprecated_push_events_endpoint_records_the_metric(relay: RelayServer) -> None:
    body = {"delivery_id": "dlv-1", "event": "opened", "device_id": IOS_TOKEN}
    await track(relay, "POST", "/api/v1/push/events", body)
    assert (await funnel(relay, "dlv-1"))["opened"] == 1


async def test_a_repeated_metric_without_an_id_counts_once(relay: RelayServer) -> None:
    body = {"delivery_id": "dlv-1", "metric": "opened", "recipient": IOS_TOKEN}
    for _ in range(3):
        await track(relay, "POST", "/api/v1/metrics", body)
    assert (await funnel(relay, "dlv-1"))["opened"] == 1


async def test_a_customer_event_after_an_open_is_a_conversion(relay: RelayServer) -> None:
    await track(relay, "PUT", "/api/v1/customers/c1/devices", add_device_body())
    opened = {"delivery_id": "dlv-1", "metric": "opened", "recipient": IOS_TOKEN}
    await track(relay, "POST", "/api/v1/metrics", opened)
    event = {"name": "Order Completed", "data": {"total": 12.5}}
    await track(relay, "POST", "/api/v1/customers/c1/events", event)
    assert (await funnel(relay, "dlv-1"))["converted"] == 1


async def test_an_anonymous_event_is_accepted(relay: RelayServer) -> None:
    body = {"name": "Viewed Product", "anonymous_id": "a1", "data": {"sku": "X1"}}
    await track(relay, "POST", "/api/v1/events", body)


async def test_a_v2_batch_applies_each_operation(relay: RelayServer) -> None:
    batch = [
        {
            "type": "person",
            "identifiers": {"id": "c1"},
            "action": "identify",
            "attributes": {"email": "c1@example.com"},
        },
        {
            "type": "person",
            "identifiers": {"id": "c1"},
            "action": "add_device",
            "device": {"token": IOS_TOKEN, "platform": "ios"},
        },
        {
            "type": "delivery",
            "action": "event",
            "identifiers": {"id": "dlv-1"},
            "name": "opened",
            "attributes": {"device_token": IOS_TOKEN},
        },
    ]
    await track(relay, "POST", "/api/v2/batch", {"batch": batch})
    stored = await profile(relay, "c1")
    assert stored["email"] == "c1@example.com"
    assert [d["token"] for d in stored["devices"]] == [IOS_TOKEN]
    assert (await funnel(relay, "dlv-1"))["opened"] == 1


async def test_a_v2_delete_device_unregisters_the_device(relay: RelayServer) -> None:
    await track(relay, "PUT", "/api/v1/customers/c1/devices", add_device_body())
    delete = {
        "type": "person",
        "identifiers": {"id": "c1"},
        "action": "delete_device",
        "device": {"token": IOS_TOKEN},
    }
    await track(relay, "POST", "/api/v2/batch", {"batch": [delete]})
    assert (await device(relay, IOS_TOKEN))["status"] == "unregistered"


async def test_a_gzipped_text_plain_body_is_accepted(relay: RelayServer) -> None:
    await track(
        relay,
        "PUT",
        "/api/v1/customers/c1",
        {"email": "c1@example.com"},
        compress=True,
        content_type="text/plain",
    )
    assert (await profile(relay, "c1"))["email"] == "c1@example.com"


async def test_a_device_with_an_unknown_platform_is_400_and_not_stored(
    relay: RelayServer,
) -> None:
    """Customer.io refuses a platform other than ios/android; relay must not guess one."""
    answer = await send(
        relay,
        "PUT",
        "/api/v1/customers/c1/devices",
        add_device_body(platform="windows"),
        headers=TRACK_AUTH,
    )
    assert answer.status == 400, answer.text
    assert parsed(answer)["meta"]["errors"]
    assert (await (await relay.admin_api()).get(f"/v1/devices/{IOS_TOKEN}")).status == 404


# --- credentials and errors ----------------------------------------------------------------


async def test_an_unknown_key_is_401_in_the_v1_error_shape(relay: RelayServer) -> None:
    answer = await send(
        relay,
        "PUT",
        "/api/v1/customers/c1",
        {"email": "c1@example.com"},
        headers={"Authorization": basic("any-site-id", "not-a-relay-key")},
    )
    assert answer.status == 401, answer.text
    errors = parsed(answer)["meta"]["errors"]
    assert errors and all(isinstance(e, str) for e in errors)
    assert (await (await relay.admin_api()).get("/v1/profiles/c1")).status == 404


async def test_metrics_need_a_key_unlike_customer_io(relay: RelayServer) -> None:
    body = {"delivery_id": "dlv-1", "metric": "delivered", "recipient": IOS_TOKEN}
    answer = await send(relay, "POST", "/api/v1/metrics", body)
    assert answer.status == 401, answer.text
    assert "meta" in parsed(answer)


async def test_an_unknown_key_is_401_on_v2(relay: RelayServer) -> None:
    op = {"type": "person", "identifiers": {"id": "c1"}, "action": "identify"}
    answer = await send(
        relay,
        "POST",
        "/api/v2/batch",
        {"batch": [op]},
        headers={"Authorization": basic("any-site-id", "not-a-relay-key")},
    )
    assert answer.status == 401, answer.text
    errors = parsed(answer)["errors"]
    assert errors
    assert all({"reason", "field", "message"} <= set(e) for e in errors)


async def test_a_device_without_a_token_is_400_in_the_v1_error_shape(relay: RelayServer) -> None:
    answer = await send(
        relay,
        "PUT",
        "/api/v1/customers/c1/devices",
        {"device": {"platform": "ios"}},
        headers=TRACK_AUTH,
    )
    assert answer.status == 400, answer.text
    errors = parsed(answer)["meta"]["errors"]
    assert errors and all(isinstance(e, str) for e in errors)


async def test_malformed_json_is_400_in_the_v1_error_shape(relay: RelayServer) -> None:
    answer = await relay.api().request(
        "PUT",
        "/api/v1/customers/c1",
        data=b"{nope",
        headers={**TRACK_AUTH, "Content-Type": "application/json"},
    )
    assert answer.status == 400, answer.text
    assert parsed(answer)["meta"]["errors"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/customers/c%00d", {"email": "c@example.com"}, "identifier"),
        ("/api/v1/customers/c1", {"email": "c1@exa\x00mple.com"}, "email"),
        ("/api/v1/customers/c1/events", {"name": "Order\x00Completed"}, "name"),
        ("/api/v1/customers/c1/devices", add_device_body(app_version="1.\x00"), "app_version"),
        ("/api/v1/customers/c1/events", {"name": "Order", "data": {"n": "\x00"}}, "data.n"),
    ],
    ids=["identifier", "email", "event-name", "device-field", "event-data"],
)
async def test_a_nul_is_400_naming_the_field_and_nothing_is_stored(
    relay: RelayServer, path: str, body: Any, field: str
) -> None:
    """PostgreSQL's text cannot hold NUL (U+0000): neither engine takes it, and says where."""
    method = "POST" if path.endswith("/events") else "PUT"
    answer = await send(relay, method, path, body, headers=TRACK_AUTH)
    assert answer.status == 400, answer.text
    (error,) = parsed(answer)["meta"]["errors"]
    assert field in error and "NUL" in error, error
    admin = await relay.admin_api()
    assert (await admin.get("/v1/profiles/c1")).status == 404
    assert (await admin.get(f"/v1/devices/{IOS_TOKEN}")).status == 404


async def test_a_nul_in_a_v2_operation_is_refused_by_its_batch_index(relay: RelayServer) -> None:
    ops = [
        {"type": "person", "identifiers": {"id": "c1"}, "action": "identify"},
        {"type": "person", "identifiers": {"id": "c\x002"}, "action": "identify"},
    ]
    answer = await send(relay, "POST", "/api/v2/batch", {"batch": ops}, headers=TRACK_AUTH)
    assert answer.status == 207, answer.text
    (error,) = parsed(answer)["errors"]
    assert error["batch_index"] == 1 and "NUL" in error["message"], error
    assert (await profile(relay, "c1"))["customer_id"] == "c1"


async def test_a_malformed_v2_batch_is_400_in_the_v2_error_shape(relay: RelayServer) -> None:
    answer = await send(relay, "POST", "/api/v2/batch", {"batch": "nope"}, headers=TRACK_AUTH)
    assert answer.status == 400, answer.text
    errors = parsed(answer)["errors"]
    assert errors
    assert all({"reason", "field", "message"} <= set(e) for e in errors)


# --- what relay forwards -------------------------------------------------------------------


@pytest.fixture
async def start_cio_relay(
    tmp_path: Path, customerio: FakeCustomerIO
) -> AsyncIterator[Callable[..., Awaitable[RelayServer]]]:
    """relay forwarding to the fake's Track API, and with ``cdp`` also to its Pipelines API."""
    async with started_servers() as start_server:

        async def start(cdp: bool = True) -> RelayServer:
            sections = forwarding_sections(customerio, cdp=cdp)
            server = await start_server(make_settings(tmp_path, apps=two_apps(), **sections))
            await register_client_key(server)
            return server

        yield start


@pytest.fixture
async def cio_relay(start_cio_relay: Callable[..., Awaitable[RelayServer]]) -> RelayServer:
    return await start_cio_relay()


def adds(fake: FakeCustomerIO, token: str = IOS_TOKEN) -> list[str]:
    """The customer ids the token was added to, in order."""
    return [
        op["identifiers"]["id"]
        for op in person_ops(fake, "add_device")
        if op["device"]["token"] == token
    ]


def named(fake: FakeCustomerIO, name: str) -> list[Any]:
    """Every forwarded call or operation that carries ``name`` as its event/screen name."""
    found = []
    for op in fake.operations():
        body = op.get("body", op) if isinstance(op, dict) else op
        if isinstance(body, dict) and name in (body.get("event"), body.get("name")):
            found.append(op)
    return found


async def test_a_track_device_is_forwarded_as_one_add_device(
    cio_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    await track(cio_relay, "PUT", "/api/v1/customers/c1/devices", add_device_body())
    await drained(cio_relay)
    assert adds(customerio) == ["c1"]
    assert not [c for c in track_v1_calls(customerio) if c["v1"].endswith("/devices")]


async def test_a_pipelines_device_is_forwarded_once_through_relays_forwarding(
    cio_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    await post_ios_batch(cio_relay, device_created(anonymous_id="a1", user_id="c1"))
    await drained(cio_relay)
    assert adds(customerio) == ["c1"]
    assert named(customerio, "Device Created or Updated") == []


async def test_forwarded_device_attributes_come_from_the_sdk_properties(
    cio_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    await post_ios_batch(
        cio_relay, device_created(anonymous_id="a1", user_id="c1", push_enabled="false")
    )
    await drained(cio_relay)
    (add,) = person_ops(customerio, "add_device")
    assert add["device"]["platform"] == "ios"
    assert add["device"]["attributes"]["push_enabled"] == "false"
    assert add["device"]["attributes"]["app_version"] == "3.1"


async def test_an_anonymous_device_is_forwarded_when_identified(
    cio_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    await post_ios_batch(cio_relay, device_created(anonymous_id="install-1"))
    await drained(cio_relay)
    assert adds(customerio) == []
    await post_ios_batch(cio_relay, identify_call("c1", anonymous_id="install-1"))
    await drained(cio_relay)
    assert adds(customerio) == ["c1"]


async def test_a_pipelines_identify_is_forwarded_with_the_anonymous_id(
    cio_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    await post_ios_batch(
        cio_relay,
        identify_call("c1", anonymous_id="install-1", traits={"email": "c1@example.com"}),
    )
    await drained(cio_relay)
    identifies = [
        op for op in person_ops(customerio, "identify") if op["identifiers"] == {"id": "c1"}
    ]
    assert identifies
    assert identifies[0]["attributes"]["anonymous_id"] == "install-1"
    assert identifies[0]["attributes"]["email"] == "c1@example.com"


async def test_custom_traits_reach_customer_io(
    cio_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    await post_ios_batch(
        cio_relay, identify_call("c1", anonymous_id="install-1", traits={"plan": "gold"})
    )
    await drained(cio_relay)
    in_track = [op for op in person_ops(customerio, "identify") if op["attributes"].get("plan")]
    in_pipelines = [
        c for c in pipelines_calls(customerio) if (c.get("traits") or {}).get("plan") == "gold"
    ]
    assert len(in_track) + len(in_pipelines) >= 1


async def test_nested_traits_reach_customer_io(
    cio_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    """Traits relay does not model (objects, lists) are part of the remainder that is
    forwarded, not dropped."""
    traits = {"email": "c1@example.com", "address": {"city": "Berlin"}, "tags": ["vip"]}
    await post_ios_batch(cio_relay, identify_call("c1", anonymous_id="a1", traits=traits))
    await drained(cio_relay)
    forwarded = str(customerio.operations())
    assert "Berlin" in forwarded
    assert "vip" in forwarded


async def test_a_track_identify_is_forwarded_with_the_anonymous_id(
    cio_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    await track(cio_relay, "PUT", "/api/v1/customers/c1", {"anonymous_id": "a1"})
    await drained(cio_relay)
    (identify,) = person_ops(customerio, "identify")
    assert identify["identifiers"] == {"id": "c1"}
    assert identify["attributes"]["anonymous_id"] == "a1"


async def test_device_deleted_is_forwarded_as_a_delete_from_that_customer(
    cio_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    await post_ios_batch(cio_relay, device_created(anonymous_id="a1", user_id="c1"))
    await post_ios_batch(cio_relay, device_deleted(anonymous_id="a1", user_id="c1"))
    await drained(cio_relay)
    deletes = [
        (op["identifiers"]["id"], op["device"]["token"])
        for op in person_ops(customerio, "delete_device")
    ]
    assert deletes == [("c1", IOS_TOKEN)]
    assert named(customerio, "Device Deleted") == []


async def test_report_delivery_events_are_forwarded_as_delivery_metrics(
    cio_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    await post_ios_batch(
        cio_relay,
        device_created(anonymous_id="a1", user_id="c1"),
        delivery_event("delivered", "dlv-1", anonymous_id="a1", user_id="c1"),
        delivery_event("clicked", "dlv-1", anonymous_id="a1", user_id="c1"),
    )
    await drained(cio_relay)
    metrics = [(op["identifiers"]["id"], op["name"]) for op in delivery_ops(customerio)]
    assert metrics == [("dlv-1", "delivered"), ("dlv-1", "opened")]
    assert all(op["attributes"]["device_token"] == IOS_TOKEN for op in delivery_ops(customerio))
    assert named(customerio, "Report Delivery Event") == []


async def test_a_track_metric_is_forwarded_as_a_delivery_metric(
    cio_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    body = {"delivery_id": "dlv-1", "metric": "opened", "recipient": IOS_TOKEN}
    await track(cio_relay, "POST", "/api/v1/metrics", body)
    await track(cio_relay, "POST", "/api/v1/metrics", body)
    await drained(cio_relay)
    assert [(op["identifiers"]["id"], op["name"]) for op in delivery_ops(customerio)] == [
        ("dlv-1", "opened")
    ]


async def test_screens_are_forwarded_to_pipelines_as_sent(
    cio_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    screen = sdk_event(
        "screen", anonymous_id="a1", user_id="c1", name="Checkout", properties={"step": 2}
    )
    await post_ios_batch(cio_relay, screen)
    await drained(cio_relay)
    (call,) = [c for c in pipelines_calls(customerio) if c.get("type") == "screen"]
    assert call["name"] == "Checkout"
    assert call["userId"] == "c1"
    assert call["anonymousId"] == "a1"
    assert call["properties"] == {"step": 2}
    assert call["messageId"] == screen["messageId"]


async def test_custom_events_are_forwarded_once(
    cio_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    """Custom events go through relay's event rules (conversions) and reach Customer.io once,
    as a Pipelines track call or a Track event (API.md: "forwarded as native data is")."""
    event = sdk_event(
        "track", anonymous_id="a1", user_id="c1", event="Viewed Product", properties={"sku": "X1"}
    )
    await post_ios_batch(cio_relay, event)
    await drained(cio_relay)
    (sent,) = named(customerio, "Viewed Product")
    if sent.get("type") == "track":  # Pipelines, as sent
        assert (sent["userId"], sent["properties"]) == ("c1", {"sku": "X1"})
    else:  # Track v2 person event
        assert (sent["identifiers"], sent["attributes"]) == ({"id": "c1"}, {"sku": "X1"})


async def test_pipelines_forwarding_uses_the_cdp_source_key(
    cio_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    screen = sdk_event("screen", anonymous_id="a1", user_id="c1", name="Home", properties={})
    await post_ios_batch(cio_relay, screen)
    await drained(cio_relay)
    sent = pipelines_requests(customerio)
    assert sent
    assert {r.headers["Authorization"] for r in sent} == {basic(CDP_KEY)}


async def test_without_a_cdp_key_custom_events_go_to_the_track_api(
    start_cio_relay: Callable[..., Awaitable[RelayServer]], customerio: FakeCustomerIO
) -> None:
    relay = await start_cio_relay(cdp=False)
    event = sdk_event(
        "track", anonymous_id="a1", user_id="c1", event="Viewed Product", properties={"sku": "X1"}
    )
    await post_ios_batch(relay, event)
    await drained(relay)
    assert pipelines_requests(customerio) == []
    (sent,) = named(customerio, "Viewed Product")
    if "v1" in sent:
        assert sent["v1"] == "POST /api/v1/customers/c1/events"
    else:
        assert (sent["action"], sent["identifiers"]) == ("event", {"id": "c1"})


async def test_a_track_anonymous_event_is_forwarded(
    cio_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    body = {"name": "Viewed Product", "anonymous_id": "a1", "data": {"sku": "X1"}}
    await track(cio_relay, "POST", "/api/v1/events", body)
    await drained(cio_relay)
    (sent,) = named(customerio, "Viewed Product")
    assert "a1" in str(sent)


async def test_a_replayed_batch_forwards_nothing_more(
    cio_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    batch = mobile_batch(
        device_created(anonymous_id="a1", user_id="c1"),
        delivery_event("opened", "dlv-1", anonymous_id="a1", user_id="c1"),
        sdk_event("screen", anonymous_id="a1", user_id="c1", name="Home", properties={}),
    )
    await send(cio_relay, "POST", "/cdp/v1/b", batch)
    await drained(cio_relay)
    first = len(customerio.operations())
    assert (await send(cio_relay, "POST", "/cdp/v1/b", batch)).status == 200
    await drained(cio_relay)
    assert len(customerio.operations()) == first


async def test_a_v2_batch_device_is_forwarded_once(
    cio_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    add = {
        "type": "person",
        "identifiers": {"id": "c1"},
        "action": "add_device",
        "device": {"token": IOS_TOKEN, "platform": "ios"},
    }
    await track(cio_relay, "POST", "/api/v2/batch", {"batch": [add]})
    await drained(cio_relay)
    assert adds(customerio) == ["c1"]


async def test_the_shipped_key_is_never_sent_to_customer_io(
    cio_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    screen = sdk_event("screen", anonymous_id="a1", user_id="c1", name="Home", properties={})
    await post_ios_batch(cio_relay, device_created(anonymous_id="a1", user_id="c1"), screen)
    await drained(cio_relay)
    assert customerio.requests
    for request in customerio.requests:
        assert CLIENT_KEY not in str(request.body)
        assert request.headers.get("Authorization") != basic(CLIENT_KEY)


async def test_adding_a_device_to_another_customer_moves_it(relay: RelayServer) -> None:
    await track(relay, "PUT", "/api/v1/customers/c1/devices", add_device_body())
    await track(relay, "PUT", "/api/v1/customers/c2/devices", add_device_body())
    assert (await device(relay, IOS_TOKEN))["customer_id"] == "c2"
    assert (await profile(relay, "c1"))["devices"] == []


async def test_deleting_a_device_of_another_customer_leaves_it(relay: RelayServer) -> None:
    await track(relay, "PUT", "/api/v1/customers/c2/devices", add_device_body())
    await track(relay, "DELETE", f"/api/v1/customers/c1/devices/{IOS_TOKEN}", {})
    assert (await device(relay, IOS_TOKEN))["customer_id"] == "c2"


async def test_a_track_call_without_credentials_is_401(relay: RelayServer) -> None:
    answer = await send(relay, "PUT", "/api/v1/customers/c1", {"email": "c1@example.com"})
    assert answer.status == 401, answer.text


async def test_a_device_moved_between_customers_is_deleted_from_the_first_then_added(
    cio_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    await track(cio_relay, "PUT", "/api/v1/customers/c1/devices", add_device_body())
    await track(cio_relay, "PUT", "/api/v1/customers/c2/devices", add_device_body())
    await drained(cio_relay)
    device_ops = [
        (op["action"], op["identifiers"]["id"])
        for op in person_ops(customerio)
        if op["action"] in ("add_device", "delete_device")
    ]
    assert device_ops == [("add_device", "c1"), ("delete_device", "c1"), ("add_device", "c2")]


async def test_an_anonymous_identify_is_forwarded_to_pipelines(
    cio_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    call = sdk_event("identify", anonymous_id="a1", traits={"favourite": "tea"})
    await post_ios_batch(cio_relay, call)
    await drained(cio_relay)
    (sent,) = [c for c in pipelines_calls(customerio) if c.get("type") == "identify"]
    assert (sent["anonymousId"], sent["traits"]) == ("a1", {"favourite": "tea"})


async def test_group_calls_are_forwarded_to_pipelines(
    cio_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    call = sdk_event("group", anonymous_id="a1", user_id="c1", groupId="acme", traits={})
    await post_ios_batch(cio_relay, call)
    await drained(cio_relay)
    (sent,) = [c for c in pipelines_calls(customerio) if c.get("type") == "group"]
    assert (sent["groupId"], sent["userId"]) == ("acme", "c1")


async def test_without_a_cdp_key_screens_still_reach_customer_io(
    start_cio_relay: Callable[..., Awaitable[RelayServer]], customerio: FakeCustomerIO
) -> None:
    relay = await start_cio_relay(cdp=False)
    screen = sdk_event("screen", anonymous_id="a1", user_id="c1", name="Checkout", properties={})
    await post_ios_batch(relay, screen)
    await drained(relay)
    assert len(named(customerio, "Checkout")) == 1


async def test_without_a_cdp_key_a_screen_does_not_hold_back_the_users_device(
    start_cio_relay: Callable[..., Awaitable[RelayServer]], customerio: FakeCustomerIO
) -> None:
    relay = await start_cio_relay(cdp=False)
    screen = sdk_event("screen", anonymous_id="a1", user_id="c1", name="Checkout", properties={})
    await post_ios_batch(relay, screen)
    await post_ios_batch(relay, device_created(anonymous_id="a1", user_id="c1"))
    await eventually(lambda: adds(customerio) == ["c1"])
