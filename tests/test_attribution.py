"""Conversion attribution (API.md "Conversion events"): last touch, by timestamp.

A conversion event (configured names, after aliasing) on a profile within
``attribution.window_hours`` after that profile opened or tapped a push produces exactly one
``converted`` metric for the most recent such delivery, recorded locally and forwarded.
Driven only through the HTTP API; every timestamp is relative to a fixed ``AS_OF`` in the past.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from relay.settings import AttributionSettings, EventsSettings
from relay_fakes.fake_customerio import FakeCustomerIO
from tests.support import Answer, Api, RelayServer, make_settings, two_apps
from tests.test_forwarding import drained, ops_of

HOUR = 3600
WINDOW = 24 * HOUR  # attribution.window_hours default
AS_OF = int(time.time()) // HOUR * HOUR - HOUR

_ids = itertools.count(1)


def hours_ago(hours: float) -> int:
    return int(AS_OF - hours * HOUR)


# --- helpers -------------------------------------------------------------------------------


def check(answer: Answer, *statuses: int) -> Answer:
    assert answer.status in statuses, answer.text
    return answer


async def register(app: Api, token: str = "tokA", **fields: Any) -> None:
    check(await app.put(f"/v1/devices/{token}", {"platform": "ios", **fields}), 200, 201)


async def touch(
    app: Api, delivery_id: str, at: int, token: str = "tokA", metric: str = "opened"
) -> None:
    item = {
        "id": f"m-{next(_ids)}",
        "metric": metric,
        "token": token,
        "delivery_id": delivery_id,
        "timestamp": at,
    }
    answer = check(await app.post("/v1/metrics", {"metrics": [item]}), 200)
    assert answer.body["accepted"] == 1, answer.body


async def conversion(app: Api, at: int, name: str = "Order Completed", **who: Any) -> None:
    """A conversion event at ``at``, by default on customer c1."""
    event = {
        "id": f"e-{next(_ids)}",
        "name": name,
        "timestamp": at,
        **(who or {"customer_id": "c1"}),
    }
    answer = check(await app.post("/v1/events", {"events": [event]}), 200)
    assert answer.body["accepted"] == 1, answer.body


async def profile(admin: Api, customer_id: str = "c1") -> dict[str, Any]:
    return dict(check(await admin.get(f"/v1/profiles/{customer_id}"), 200).body)


async def converted_on_profile(admin: Api, customer_id: str = "c1") -> int:
    return int((await profile(admin, customer_id))["counts"]["converted"])


async def converted_on_device(admin: Api, token: str = "tokA") -> int:
    return int(check(await admin.get(f"/v1/devices/{token}"), 200).body["counts"]["converted"])


async def converted_on_delivery(admin: Api, delivery_id: str) -> int:
    answer = check(await admin.get(f"/v1/deliveries/{delivery_id}"), 200)
    return int(answer.body["funnel"]["converted"])


async def start(tmp_path: Path, **sections: Any) -> RelayServer:
    server = RelayServer(make_settings(tmp_path, apps=two_apps(), **sections))
    await server.start()
    return server


@pytest.fixture
async def relay(tmp_path: Path) -> AsyncIterator[RelayServer]:
    """Default attribution settings, and the alias Purchase → Order Completed."""
    server = await start(tmp_path, events=EventsSettings(aliases={"Purchase": "Order Completed"}))
    yield server
    await server.close()


@pytest.fixture
async def app(relay: RelayServer) -> Api:
    """An app client; device tokA belongs to c1."""
    client = await relay.app_api()
    await register(client, "tokA", customer_id="c1")
    return client


@pytest.fixture
async def admin(relay: RelayServer) -> Api:
    return await relay.admin_api()


# --- the basic rule ------------------------------------------------------------------------


async def test_a_conversion_after_an_open_counts_one_converted_on_the_profile(
    app: Api, admin: Api
) -> None:
    await touch(app, "dlv1", hours_ago(2))
    await conversion(app, hours_ago(1))
    assert await converted_on_profile(admin) == 1


async def test_a_conversion_after_an_open_counts_one_converted_on_the_device(
    app: Api, admin: Api
) -> None:
    await touch(app, "dlv1", hours_ago(2))
    await conversion(app, hours_ago(1))
    assert await converted_on_device(admin) == 1


async def test_the_converted_metric_belongs_to_the_opened_delivery(app: Api, admin: Api) -> None:
    await touch(app, "dlv1", hours_ago(2))
    await conversion(app, hours_ago(1))
    assert await converted_on_delivery(admin, "dlv1") == 1


async def test_a_conversion_after_a_tap_counts(app: Api, admin: Api) -> None:
    await touch(app, "dlv1", hours_ago(2), metric="tapped")
    await conversion(app, hours_ago(1))
    assert await converted_on_delivery(admin, "dlv1") == 1


async def test_a_delivery_without_an_open_is_not_a_touch(app: Api, admin: Api) -> None:
    await touch(app, "dlv1", hours_ago(2), metric="delivered")
    await conversion(app, hours_ago(1))
    assert await converted_on_profile(admin) == 0


async def test_last_touch_credits_the_most_recent_open_before_the_conversion(
    app: Api, admin: Api
) -> None:
    await touch(app, "dlv1", hours_ago(5))
    await touch(app, "dlv2", hours_ago(3), metric="tapped")
    await conversion(app, hours_ago(1))
    credited = [await converted_on_delivery(admin, d) for d in ("dlv1", "dlv2")]
    assert credited == [0, 1]


async def test_last_touch_considers_every_device_of_the_profile(app: Api, admin: Api) -> None:
    await register(app, "tokB", customer_id="c1")
    await touch(app, "dlv1", hours_ago(5), token="tokA")
    await touch(app, "dlv2", hours_ago(3), token="tokB")
    await conversion(app, hours_ago(1))
    credited = [await converted_on_device(admin, t) for t in ("tokA", "tokB")]
    assert credited == [0, 1]


async def test_an_open_after_the_conversion_is_not_credited(app: Api, admin: Api) -> None:
    await touch(app, "dlv1", hours_ago(5))
    await conversion(app, hours_ago(3))
    await touch(app, "dlv2", hours_ago(1))
    credited = [await converted_on_delivery(admin, d) for d in ("dlv1", "dlv2")]
    assert credited == [1, 0]


async def test_a_conversion_one_second_inside_the_window_counts(app: Api, admin: Api) -> None:
    await touch(app, "dlv1", hours_ago(30))
    await conversion(app, hours_ago(30) + WINDOW - 1)
    assert await converted_on_profile(admin) == 1


async def test_a_conversion_one_second_outside_the_window_produces_none(
    app: Api, admin: Api
) -> None:
    await touch(app, "dlv1", hours_ago(30))
    await conversion(app, hours_ago(30) + WINDOW + 1)
    assert await converted_on_profile(admin) == 0


async def test_a_conversion_before_the_only_open_produces_none(app: Api, admin: Api) -> None:
    await conversion(app, hours_ago(3))
    await touch(app, "dlv1", hours_ago(2))
    assert await converted_on_profile(admin) == 0


async def test_a_second_conversion_on_the_same_delivery_produces_none(app: Api, admin: Api) -> None:
    await touch(app, "dlv1", hours_ago(3))
    await conversion(app, hours_ago(2))
    await conversion(app, hours_ago(1))
    assert await converted_on_delivery(admin, "dlv1") == 1


async def test_a_second_conversion_in_one_batch_produces_none(app: Api, admin: Api) -> None:
    await touch(app, "dlv1", hours_ago(3))
    events = [
        {"id": f"e-{next(_ids)}", "name": "Order Completed", "customer_id": "c1", "timestamp": t}
        for t in (hours_ago(2), hours_ago(1))
    ]
    check(await app.post("/v1/events", {"events": events}), 200)
    assert await converted_on_profile(admin) == 1


async def test_an_aliased_event_name_counts_as_a_conversion(app: Api, admin: Api) -> None:
    await touch(app, "dlv1", hours_ago(2))
    await conversion(app, hours_ago(1), name="Purchase")
    assert await converted_on_profile(admin) == 1


async def test_an_event_that_is_not_a_conversion_produces_none(app: Api, admin: Api) -> None:
    await touch(app, "dlv1", hours_ago(2))
    await conversion(app, hours_ago(1), name="Viewed Cart")
    assert await converted_on_profile(admin) == 0


async def test_another_profiles_conversion_produces_none(app: Api, admin: Api) -> None:
    await register(app, "tokB", customer_id="c2")
    await touch(app, "dlv1", hours_ago(2))
    await conversion(app, hours_ago(1), customer_id="c2")
    assert await converted_on_profile(admin, "c1") == 0


async def test_a_conversion_named_by_token_counts_for_the_devices_profile(
    app: Api, admin: Api
) -> None:
    await touch(app, "dlv1", hours_ago(2))
    await conversion(app, hours_ago(1), token="tokA")
    assert await converted_on_profile(admin) == 1


async def test_the_profile_reports_the_last_conversion_time(app: Api, admin: Api) -> None:
    await touch(app, "dlv1", hours_ago(3))
    await conversion(app, hours_ago(2))
    stamp = (await profile(admin))["last_converted_at"]
    assert datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() == hours_ago(2)


# --- late and out-of-order facts -------------------------------------------------------------


async def test_a_late_event_attributes_by_its_timestamp(app: Api, admin: Api) -> None:
    # Received more than a day after the open, but stamped within the window.
    await touch(app, "dlv1", hours_ago(30))
    await conversion(app, hours_ago(29))
    assert await converted_on_delivery(admin, "dlv1") == 1


async def test_a_late_event_credits_the_open_before_its_timestamp_not_the_latest(
    app: Api, admin: Api
) -> None:
    await touch(app, "dlv1", hours_ago(30))
    await touch(app, "dlv2", hours_ago(2))
    await conversion(app, hours_ago(29))
    credited = [await converted_on_delivery(admin, d) for d in ("dlv1", "dlv2")]
    assert credited == [1, 0]


async def test_an_open_reported_after_its_conversion_attributes(app: Api, admin: Api) -> None:
    await conversion(app, hours_ago(1))
    await touch(app, "dlv1", hours_ago(2))
    assert await converted_on_delivery(admin, "dlv1") == 1


async def test_an_open_reported_before_its_token_registered_converts_once_it_does(
    relay: RelayServer, admin: Api
) -> None:
    app = await relay.app_api()
    await touch(app, "dlv1", hours_ago(2), token="tokLate")
    await register(app, "tokLate", customer_id="c1")
    await conversion(app, hours_ago(1))
    assert await converted_on_delivery(admin, "dlv1") == 1


# --- identity ------------------------------------------------------------------------------


async def anonymous_open(relay: RelayServer) -> Api:
    """tokA under anonymous id anon-1 (no customer) opened dlv1 two hours before AS_OF."""
    app = await relay.app_api()
    await register(app, "tokA", anonymous_id="anon-1")
    await touch(app, "dlv1", hours_ago(2))
    return app


async def test_an_anonymous_open_counts_once_identified(relay: RelayServer, admin: Api) -> None:
    app = await anonymous_open(relay)
    check(await app.post("/v1/identify", {"customer_id": "c1", "anonymous_id": "anon-1"}), 200)
    await conversion(app, hours_ago(1))
    assert await converted_on_profile(admin) == 1


async def test_an_anonymous_conversion_produces_none_before_identify(
    relay: RelayServer, admin: Api
) -> None:
    app = await anonymous_open(relay)
    await conversion(app, hours_ago(1), anonymous_id="anon-1")
    assert await converted_on_device(admin) == 0


async def test_an_anonymous_conversion_counts_once_identified(
    relay: RelayServer, admin: Api
) -> None:
    app = await anonymous_open(relay)
    await conversion(app, hours_ago(1), anonymous_id="anon-1")
    check(await app.post("/v1/identify", {"customer_id": "c1", "anonymous_id": "anon-1"}), 200)
    assert await converted_on_profile(admin) == 1


async def test_a_merge_lets_the_secondarys_open_convert_on_the_primary(
    app: Api, admin: Api
) -> None:
    await register(app, "tokB", customer_id="c2")
    await touch(app, "dlv1", hours_ago(2), token="tokB")
    await conversion(app, hours_ago(1), customer_id="c1")
    check(await admin.post("/v1/profiles/merge", {"primary": "c1", "secondary": "c2"}), 200)
    assert await converted_on_profile(admin, "c1") == 1


async def test_an_open_before_a_token_refresh_converts_on_the_new_token(
    app: Api, admin: Api
) -> None:
    await touch(app, "dlv1", hours_ago(2))
    check(await app.post("/v1/devices/tokA/refresh", {"new_token": "tokA2"}), 200)
    await conversion(app, hours_ago(1))
    assert await converted_on_device(admin, "tokA2") == 1


# --- configuration -------------------------------------------------------------------------


async def test_the_window_follows_attribution_window_hours(tmp_path: Path) -> None:
    server = await start(tmp_path, attribution=AttributionSettings(window_hours=1))
    try:
        app, admin = await server.app_api(), await server.admin_api()
        await register(app, "tokA", customer_id="c1")
        await touch(app, "dlv1", hours_ago(3))
        await conversion(app, hours_ago(1))
        assert await converted_on_profile(admin) == 0
    finally:
        await server.close()


@pytest.mark.parametrize(("name", "converted"), [("Signup", 1), ("Order Completed", 0)])
async def test_conversion_events_names_the_conversions(
    tmp_path: Path, name: str, converted: int
) -> None:
    server = await start(tmp_path, attribution=AttributionSettings(conversion_events=("Signup",)))
    try:
        app, admin = await server.app_api(), await server.admin_api()
        await register(app, "tokA", customer_id="c1")
        await touch(app, "dlv1", hours_ago(2))
        await conversion(app, hours_ago(1), name=name)
        assert await converted_on_profile(admin) == converted
    finally:
        await server.close()


# --- forwarding ----------------------------------------------------------------------------


async def test_exactly_one_converted_metric_is_forwarded(
    forwarding_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    app = await forwarding_relay.app_api()
    await register(app, "tokA", customer_id="c1")
    await touch(app, "dlv1", hours_ago(3))
    await conversion(app, hours_ago(2))
    await conversion(app, hours_ago(1))
    await drained(forwarding_relay)
    converted = [
        (op["identifiers"], op["attributes"])
        for op in ops_of(customerio)
        if op.get("type") == "delivery" and op.get("name") == "converted"
    ]
    assert converted == [({"id": "dlv1"}, {"device_token": "tokA"})]
