"""What relay forwards to Customer.io, checked at a local Customer.io that validates every
request against Customer.io's published OpenAPI documents (fixture ``customerio``)."""

from __future__ import annotations

import time
from typing import Any

from ulid import ULID

from relay_fakes.fake_customerio import FakeCustomerIO
from tests.support import Api, RelayServer, eventually


async def drained(relay: RelayServer) -> dict[str, Any]:
    """Wait until this app's outbox is empty; returns the outbox status."""
    admin = await relay.admin_api()

    async def empty() -> dict[str, Any] | None:
        status = (await admin.get("/v1/outbox")).body
        return status if status["pending"] == 0 else None

    return await eventually(empty)


def ops_of(fake: FakeCustomerIO, action: str | None = None) -> list[dict[str, Any]]:
    found = [op for op in fake.operations() if "v1" not in op]
    return [
        op
        for op in found
        if action is None or (op.get("type") == "person" and op.get("action") == action)
    ]


def v1_calls(fake: FakeCustomerIO) -> list[dict[str, Any]]:
    return [op for op in fake.operations() if "v1" in op]


async def test_identify_is_sent_with_the_anonymous_id_before_the_device_it_attaches(
    forwarding_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    app = await forwarding_relay.app_api()
    await app.put("/v1/devices/tokA", {"platform": "ios", "anonymous_id": "anon-1"})
    await app.post(
        "/v1/identify", {"customer_id": "c1", "anonymous_id": "anon-1", "email": "a@b.co"}
    )
    await drained(forwarding_relay)
    identify, add = ops_of(customerio)
    assert identify["action"] == "identify"
    assert identify["identifiers"] == {"id": "c1"}
    assert identify["attributes"] == {"anonymous_id": "anon-1", "email": "a@b.co"}
    assert add["action"] == "add_device"
    assert add["device"]["token"] == "tokA"


async def test_an_anonymous_device_is_not_sent_until_identified(
    forwarding_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    app = await forwarding_relay.app_api()
    await app.put("/v1/devices/tokA", {"platform": "ios", "anonymous_id": "anon-1"})
    await drained(forwarding_relay)
    assert customerio.operations() == []


async def test_device_attributes_are_sent_as_strings(
    forwarding_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    app = await forwarding_relay.app_api()
    body = {
        "platform": "android",
        "customer_id": "c1",
        "push_enabled": False,
        "app_version": "5.1",
        "os_version": "14",
        "device_model": "Pixel 8",
        "locale": "de-DE",
        "attributes": {"ab_group": 3, "beta": True},
    }
    await app.put("/v1/devices/tokA", body)
    await drained(forwarding_relay)
    (add,) = ops_of(customerio, "add_device")
    assert add["device"]["platform"] == "android"
    assert add["device"]["attributes"] == {
        "push_enabled": "false",
        "app_version": "5.1",
        "device_os": "14",
        "device_model": "Pixel 8",
        "device_locale": "de-DE",
        "ab_group": "3",
        "beta": "true",
    }


async def test_a_new_person_is_identified_before_their_first_device(
    forwarding_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    app = await forwarding_relay.app_api()
    await app.put("/v1/devices/tokA", {"platform": "ios", "customer_id": "c1"})
    await drained(forwarding_relay)
    assert [op["action"] for op in ops_of(customerio)] == ["identify", "add_device"]


async def test_an_account_switch_deletes_the_device_from_the_old_person_first(
    forwarding_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    app = await forwarding_relay.app_api()
    await app.put("/v1/devices/tokA", {"platform": "ios", "customer_id": "c1"})
    await app.put("/v1/devices/tokA", {"platform": "ios", "customer_id": "c2"})
    await drained(forwarding_relay)
    device_ops = [
        (op["action"], op["identifiers"]["id"])
        for op in ops_of(customerio)
        if op["action"] in ("add_device", "delete_device")
    ]
    assert device_ops == [("add_device", "c1"), ("delete_device", "c1"), ("add_device", "c2")]


async def test_a_logout_deletes_the_device_from_the_person(
    forwarding_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    app = await forwarding_relay.app_api()
    await app.put("/v1/devices/tokA", {"platform": "ios", "customer_id": "c1"})
    await app.put("/v1/devices/tokA", {"platform": "ios", "customer_id": None})
    await drained(forwarding_relay)
    delete = ops_of(customerio, "delete_device")
    assert [(op["identifiers"]["id"], op["device"]["token"]) for op in delete] == [("c1", "tokA")]


async def test_unregistering_deletes_the_device_once(
    forwarding_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    app = await forwarding_relay.app_api()
    await app.put("/v1/devices/tokA", {"platform": "ios", "customer_id": "c1"})
    await app.delete("/v1/devices/tokA")
    await app.delete("/v1/devices/tokA")
    await drained(forwarding_relay)
    assert len(ops_of(customerio, "delete_device")) == 1


async def test_a_refresh_deletes_the_old_token_and_adds_the_new_one(
    forwarding_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    app = await forwarding_relay.app_api()
    await app.put("/v1/devices/old", {"platform": "ios", "customer_id": "c1"})
    await app.post("/v1/devices/old/refresh", {"new_token": "new"})
    await drained(forwarding_relay)
    device_ops = [
        (op["action"], op["device"]["token"])
        for op in ops_of(customerio)
        if op["action"] != "identify"
    ]
    assert device_ops == [("add_device", "old"), ("delete_device", "old"), ("add_device", "new")]


def metric(id_: str, name: str, **extra: Any) -> dict[str, Any]:
    return {"id": id_, "metric": name, "token": "tokA", "delivery_id": "dlv1", **extra}


async def test_one_delivered_and_one_opened_per_delivery_and_token(
    forwarding_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    app = await forwarding_relay.app_api()
    await app.put("/v1/devices/tokA", {"platform": "ios", "customer_id": "c1"})
    await app.post(
        "/v1/metrics",
        {
            "metrics": [
                metric("m1", "delivered"),
                metric("m2", "delivered", source="notification_extension"),
                metric("m3", "tapped", action="buy"),
                metric("m4", "opened"),
            ]
        },
    )
    await app.post("/v1/metrics", {"metrics": [metric("m5", "opened")]})
    await drained(forwarding_relay)
    deliveries = [op for op in ops_of(customerio) if op["type"] == "delivery"]
    assert [(op["identifiers"]["id"], op["name"]) for op in deliveries] == [
        ("dlv1", "delivered"),
        ("dlv1", "opened"),
    ]
    assert all(op["attributes"] == {"device_token": "tokA"} for op in deliveries)


async def test_a_tapped_action_is_also_a_person_event(
    forwarding_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    app = await forwarding_relay.app_api()
    await app.put("/v1/devices/tokA", {"platform": "ios", "customer_id": "c1"})
    await app.post("/v1/metrics", {"metrics": [metric("m1", "tapped", action="buy")]})
    await drained(forwarding_relay)
    (event,) = ops_of(customerio, "event")
    assert event["name"] == "Push Action Tapped"
    assert event["identifiers"] == {"id": "c1"}
    assert event["attributes"] == {"delivery_id": "dlv1", "token": "tokA", "action": "buy"}


async def test_a_deep_link_failure_is_a_person_event(
    forwarding_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    app = await forwarding_relay.app_api()
    await app.put("/v1/devices/tokA", {"platform": "ios", "customer_id": "c1"})
    failure = metric("m1", "deep_link_failed", deep_link="shop://x", reason="no route")
    await app.post("/v1/metrics", {"metrics": [failure]})
    await drained(forwarding_relay)
    (event,) = ops_of(customerio, "event")
    assert event["name"] == "Deep Link Failed"
    assert event["attributes"]["deep_link"] == "shop://x"
    assert event["attributes"]["reason"] == "no route"


async def test_metrics_without_a_delivery_id_stay_local(
    forwarding_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    app = await forwarding_relay.app_api()
    await app.post("/v1/metrics", {"metrics": [{"id": "m1", "metric": "opened", "token": "t"}]})
    await drained(forwarding_relay)
    assert customerio.operations() == []


async def test_metrics_of_an_unregistered_token_are_forwarded_by_delivery(
    forwarding_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    app = await forwarding_relay.app_api()
    await app.post("/v1/metrics", {"metrics": [metric("m1", "delivered")]})
    await drained(forwarding_relay)
    (delivery,) = ops_of(customerio)
    assert delivery["type"] == "delivery"


async def test_a_known_persons_event_is_sent_with_a_ulid(
    forwarding_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    app = await forwarding_relay.app_api()
    yesterday = int(time.time()) - 86_400  # within the [retention] horizon
    event = {
        "id": "e1",
        "name": "Order Completed",
        "customer_id": "c1",
        "timestamp": yesterday,
        "properties": {"total": 12.5},
    }
    await app.post("/v1/events", {"events": [event]})
    await drained(forwarding_relay)
    (sent,) = ops_of(customerio, "event")
    assert sent["name"] == "Order Completed"
    assert sent["timestamp"] == yesterday
    assert sent["attributes"] == {"total": 12.5}
    assert ULID.from_str(sent["id"])


async def test_an_anonymous_event_goes_to_the_v1_anonymous_endpoint(
    forwarding_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    app = await forwarding_relay.app_api()
    event = {"id": "e1", "name": "Viewed Cart", "anonymous_id": "anon-9"}
    await app.post("/v1/events", {"events": [event]})
    await drained(forwarding_relay)
    (call,) = v1_calls(customerio)
    assert call["v1"] == "POST /api/v1/events"
    assert call["body"]["anonymous_id"] == "anon-9"
    assert call["body"]["name"] == "Viewed Cart"


async def test_anonymous_events_arrive_before_the_identify_that_merges_them(
    forwarding_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    app = await forwarding_relay.app_api()
    await app.post("/v1/events", {"events": [{"id": "e1", "name": "X", "anonymous_id": "a1"}]})
    await app.post("/v1/identify", {"customer_id": "c1", "anonymous_id": "a1"})
    await drained(forwarding_relay)
    kinds = ["v1" if "v1" in op else op["action"] for op in customerio.operations()]
    assert kinds == ["v1", "identify"]


async def test_a_duplicate_event_is_forwarded_once(
    forwarding_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    app = await forwarding_relay.app_api()
    event = {"id": "e1", "name": "Order Completed", "customer_id": "c1"}
    await app.post("/v1/events", {"events": [event, event]})
    await app.post("/v1/events", {"events": [event]})
    await drained(forwarding_relay)
    assert len(ops_of(customerio, "event")) == 1


async def test_a_merge_is_forwarded(
    forwarding_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    app, admin = await forwarding_relay.app_api(), await forwarding_relay.admin_api()
    await app.post("/v1/identify", {"customer_id": "p"})
    await app.post("/v1/identify", {"customer_id": "s"})
    await admin.post("/v1/profiles/merge", {"primary": "p", "secondary": "s"})
    await drained(forwarding_relay)
    (merge,) = ops_of(customerio, "merge")
    assert merge["primary"] == {"id": "p"}
    assert merge["secondary"] == {"id": "s"}


async def test_requests_carry_basic_auth_of_the_site_and_key(
    forwarding_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    app = await forwarding_relay.app_api()
    await app.post("/v1/identify", {"customer_id": "c1"})
    await drained(forwarding_relay)
    assert customerio.requests[0].headers["Authorization"].startswith("Basic ")


async def test_readiness_says_forwarding_is_enabled(forwarding_relay: RelayServer) -> None:
    assert (await forwarding_relay.api().get("/readyz")).body["forwarding"] == "enabled"


async def test_without_credentials_nothing_is_sent_and_the_outbox_keeps_it(
    relay: RelayServer, customerio: FakeCustomerIO, start_forwarding_relay: Any
) -> None:
    app = await relay.app_api()
    await app.post("/v1/identify", {"customer_id": "c1"})
    assert (await relay.api().get("/readyz")).body["forwarding"] == "disabled"
    pending = (await (await relay.admin_api()).get("/v1/outbox")).body["pending"]
    assert pending == 1
    await relay.close()
    restarted = await start_forwarding_relay()
    await drained(restarted)
    assert [op["action"] for op in ops_of(customerio)] == ["identify"]


async def test_an_app_key_cannot_read_the_outbox(app_api: Api) -> None:
    assert (await app_api.get("/v1/outbox")).status == 403
