"""Push metrics and conversion events (API.md "Push metrics", "Conversion events", "[events]").

Driven only through the HTTP API of a real relay with two apps, ``default`` and ``other``.
Stored metrics are observed through the admin device view (``counts``, ``recent_metrics``);
stored events through the profile view (``last_converted_at``, existence of the profile).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from relay.settings import EventsSettings
from tests.steps import counts, counts_of, device, profile
from tests.support import Answer, Api, RelayServer, make_settings, two_apps

# An instant 30 days ago, in whole seconds (its renderings are exact): within the default
# [retention] horizon of 400 days, beyond which timestamps are refused.
PAST = int(time.time()) - 30 * 86_400
PAST_RFC3339 = datetime.fromtimestamp(PAST, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
PAST_AT_PLUS_2 = datetime.fromtimestamp(PAST, timezone(timedelta(hours=2))).isoformat()


# --- helpers -------------------------------------------------------------------------------


_ids = itertools.count(1)


def fresh(prefix: str = "id") -> str:
    return f"{prefix}-{next(_ids)}"


def metric(token: str, kind: str = "delivered", **fields: Any) -> dict[str, Any]:
    return {"id": fresh("m"), "metric": kind, "token": token, **fields}


def event(name: str = "Order Completed", **fields: Any) -> dict[str, Any]:
    return {"id": fresh("e"), "name": name, **fields}


async def register(api: Api, token: str) -> None:
    answer = await api.put(f"/v1/devices/{token}", {"platform": "ios"})
    assert answer.status in (200, 201), answer.text


async def post_metrics(api: Api, *items: dict[str, Any]) -> Answer:
    return await api.post("/v1/metrics", {"metrics": list(items)})


async def post_events(api: Api, *items: dict[str, Any]) -> Answer:
    return await api.post("/v1/events", {"events": list(items)})


def stored(detail: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The device's recent metrics by their client id."""
    return {m["id"]: m for m in detail["recent_metrics"]}


def instant(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339).timestamp()


def rejected_paths(answer: Answer) -> dict[int, list[str]]:
    return {r["index"]: [e["path"] for e in r["errors"]] for r in answer.body["rejected"]}


def ok(answer: Answer, accepted: int, duplicates: int = 0) -> None:
    assert answer.status == 200, answer.text
    assert answer.body["accepted"] == accepted, answer.body
    assert answer.body["duplicates"] == duplicates, answer.body


# --- metrics: accepted batches -------------------------------------------------------------


async def test_a_batch_of_valid_metrics_is_accepted_whole(app_api: Api, admin_api: Api) -> None:
    await register(app_api, "tok-batch")
    answer = await post_metrics(
        app_api,
        metric("tok-batch", "delivered", delivery_id="d1"),
        metric("tok-batch", "opened", delivery_id="d1"),
        metric("tok-batch", "tapped", delivery_id="d1", action="buy"),
        metric("tok-batch", "deep_link_failed", deep_link="app://x", reason="no route"),
    )
    assert answer.status == 200, answer.text
    assert answer.body == {"accepted": 4, "duplicates": 0, "rejected": []}
    assert counts_of(await device(admin_api, "tok-batch")) == counts(
        delivered=1, opened=1, tapped=1, deep_link_failed=1
    )


async def test_a_metric_keeps_every_field_it_was_sent_with(app_api: Api, admin_api: Api) -> None:
    await register(app_api, "tok-fields")
    item = metric(
        "tok-fields",
        "tapped",
        delivery_id="dlv-1",
        timestamp=PAST_RFC3339,
        action="btn-1",
        source="notification_extension",
    )
    ok(await post_metrics(app_api, item), accepted=1)
    shown = stored(await device(admin_api, "tok-fields"))[item["id"]]
    assert shown["metric"] == "tapped"
    assert shown["token"] == "tok-fields"
    assert shown["delivery_id"] == "dlv-1"
    assert shown["action"] == "btn-1"
    assert shown["source"] == "notification_extension"
    assert instant(shown["timestamp"]) == PAST


async def test_a_mixed_batch_stores_the_valid_items_and_rejects_the_others(
    app_api: Api, admin_api: Api
) -> None:
    await register(app_api, "tok-mixed")
    good_first, good_last = metric("tok-mixed"), metric("tok-mixed", "opened")
    answer = await post_metrics(
        app_api,
        good_first,
        {"id": fresh(), "metric": "delivered"},  # no token
        {"id": fresh(), "metric": "bounced", "token": "tok-mixed"},
        metric("tok-mixed", timestamp="not a time"),
        good_last,
    )
    ok(answer, accepted=2)
    assert rejected_paths(answer) == {1: ["token"], 2: ["metric"], 3: ["timestamp"]}
    for rejection in answer.body["rejected"]:
        assert all(error["message"] for error in rejection["errors"])
    detail = await device(admin_api, "tok-mixed")
    assert counts_of(detail) == counts(delivered=1, opened=1)
    assert set(stored(detail)) == {good_first["id"], good_last["id"]}


async def test_rejected_item_paths_are_relative_to_the_item(app_api: Api) -> None:
    answer = await post_metrics(app_api, metric("tok-rel"), {**metric("tok-rel"), "token": 5})
    ok(answer, accepted=1)
    paths = rejected_paths(answer)[1]
    assert paths == ["token"]
    assert not any(path.startswith("metrics") for path in paths)


async def test_a_batch_where_every_item_is_invalid_still_answers_200(
    app_api: Api, admin_api: Api
) -> None:
    await register(app_api, "tok-allbad")
    answer = await post_metrics(
        app_api,
        metric("tok-allbad", "exploded"),
        metric("tok-allbad", timestamp=time.time() + 3600),
    )
    assert answer.status == 200, answer.text
    assert answer.body["accepted"] == 0
    assert answer.body["duplicates"] == 0
    assert rejected_paths(answer) == {0: ["metric"], 1: ["timestamp"]}
    assert counts_of(await device(admin_api, "tok-allbad")) == counts()


async def test_an_unknown_metric_name_is_rejected(app_api: Api) -> None:
    answer = await post_metrics(app_api, metric("tok-x", "clicked"))
    assert answer.status == 200, answer.text
    assert rejected_paths(answer) == {0: ["metric"]}


async def test_id_metric_and_token_are_each_required(app_api: Api) -> None:
    answer = await post_metrics(
        app_api,
        {"metric": "delivered", "token": "tok-req"},
        {"id": fresh(), "token": "tok-req"},
        {"id": fresh(), "metric": "delivered"},
    )
    assert answer.status == 200, answer.text
    assert rejected_paths(answer) == {0: ["id"], 1: ["metric"], 2: ["token"]}


async def test_a_metric_without_delivery_id_is_kept(app_api: Api, admin_api: Api) -> None:
    await register(app_api, "tok-nodlv")
    item = metric("tok-nodlv", "opened")
    ok(await post_metrics(app_api, item), accepted=1)
    detail = await device(admin_api, "tok-nodlv")
    assert counts_of(detail) == counts(opened=1)
    assert stored(detail)[item["id"]]["delivery_id"] is None


async def test_a_metric_for_an_unregistered_token_attaches_when_it_registers(
    app_api: Api, admin_api: Api
) -> None:
    item = metric("tok-later", "delivered")
    ok(await post_metrics(app_api, item), accepted=1)
    await register(app_api, "tok-later")
    detail = await device(admin_api, "tok-later")
    assert counts_of(detail) == counts(delivered=1)
    assert item["id"] in stored(detail)


# --- metrics: de-duplication ---------------------------------------------------------------


async def test_a_repeated_id_in_the_same_batch_is_a_duplicate_and_the_first_copy_wins(
    app_api: Api, admin_api: Api
) -> None:
    await register(app_api, "tok-dup1")
    first = metric("tok-dup1", "delivered", timestamp=PAST)
    second = {**first, "metric": "opened", "timestamp": PAST + 60}
    ok(await post_metrics(app_api, first, second), accepted=1, duplicates=1)
    detail = await device(admin_api, "tok-dup1")
    assert counts_of(detail) == counts(delivered=1)
    shown = stored(detail)[first["id"]]
    assert shown["metric"] == "delivered"
    assert instant(shown["timestamp"]) == PAST


async def test_a_repeated_id_in_a_later_request_is_a_duplicate_and_the_first_copy_wins(
    app_api: Api, admin_api: Api
) -> None:
    await register(app_api, "tok-dup2")
    first = metric("tok-dup2", "opened", delivery_id="d-first", timestamp=PAST)
    ok(await post_metrics(app_api, first), accepted=1)
    replay = {**first, "metric": "tapped", "delivery_id": "d-second", "timestamp": PAST + 5}
    ok(await post_metrics(app_api, replay, metric("tok-dup2", "delivered")), 1, duplicates=1)
    detail = await device(admin_api, "tok-dup2")
    assert counts_of(detail) == counts(opened=1, delivered=1)
    shown = stored(detail)[first["id"]]
    assert shown["metric"] == "opened"
    assert shown["delivery_id"] == "d-first"
    assert instant(shown["timestamp"]) == PAST


async def test_concurrent_requests_carrying_one_metric_store_it_once_and_say_so_once(
    app_api: Api, admin_api: Api
) -> None:
    # Requests arriving together are stored together: each still hears its own counts.
    await register(app_api, "tok-together")
    shared = metric("tok-together", "delivered")
    answers = await asyncio.gather(
        *(post_metrics(app_api, shared, metric("tok-together", "opened")) for _ in range(20))
    )
    bodies = [answer.body for answer in answers]
    assert all(answer.status == 200 for answer in answers)
    assert sorted(body["accepted"] for body in bodies) == [1] * 19 + [2]
    assert sum(body["duplicates"] for body in bodies) == 19
    assert counts_of(await device(admin_api, "tok-together")) == counts(delivered=1, opened=20)


async def test_replaying_a_whole_batch_changes_nothing(app_api: Api, admin_api: Api) -> None:
    await register(app_api, "tok-replay")
    batch = [metric("tok-replay", "delivered"), metric("tok-replay", "opened")]
    ok(await post_metrics(app_api, *batch), accepted=2)
    ok(await post_metrics(app_api, *batch), accepted=0, duplicates=2)
    assert counts_of(await device(admin_api, "tok-replay")) == counts(delivered=1, opened=1)


async def test_the_same_metric_id_in_another_app_is_not_a_duplicate(relay: RelayServer) -> None:
    default_app, other_app = await relay.app_api("default"), await relay.app_api("other")
    await register(default_app, "tok-shared")
    await register(other_app, "tok-shared")
    item = metric("tok-shared", "delivered")
    ok(await post_metrics(default_app, item), accepted=1)
    ok(await post_metrics(other_app, item), accepted=1)
    for app_id in ("default", "other"):
        detail = await device(await relay.admin_api(app_id), "tok-shared")
        assert counts_of(detail) == counts(delivered=1), app_id


async def test_a_metric_and_an_event_may_share_an_id(app_api: Api, admin_api: Api) -> None:
    await register(app_api, "tok-kinds")
    shared = fresh("shared")
    ok(await post_metrics(app_api, metric("tok-kinds", id=shared)), accepted=1)
    ok(await post_events(app_api, event(id=shared, customer_id="cust-kinds")), accepted=1)
    assert counts_of(await device(admin_api, "tok-kinds")) == counts(delivered=1)
    assert (await profile(admin_api, "cust-kinds"))["last_converted_at"] is not None


# --- metrics: timestamps -------------------------------------------------------------------


@pytest.mark.parametrize(
    "timestamp",
    [PAST_RFC3339, PAST_AT_PLUS_2, PAST, float(PAST), PAST + 0.25],
    ids=["rfc3339-utc", "rfc3339-offset", "unix-int", "unix-float", "unix-fraction"],
)
async def test_timestamps_may_be_rfc3339_or_unix_seconds(
    app_api: Api, admin_api: Api, timestamp: str | float
) -> None:
    await register(app_api, "tok-ts")
    item = metric("tok-ts", timestamp=timestamp)
    ok(await post_metrics(app_api, item), accepted=1)
    shown = stored(await device(admin_api, "tok-ts"))[item["id"]]
    expected = PAST + 0.25 if timestamp == PAST + 0.25 else PAST
    assert instant(shown["timestamp"]) == pytest.approx(expected, abs=0.001)


async def test_response_timestamps_are_rfc3339_utc(app_api: Api, admin_api: Api) -> None:
    await register(app_api, "tok-utc")
    item = metric("tok-utc", timestamp=PAST_AT_PLUS_2)
    ok(await post_metrics(app_api, item), accepted=1)
    shown = stored(await device(admin_api, "tok-utc"))[item["id"]]
    for name in ("timestamp", "received_at"):
        parsed = datetime.fromisoformat(shown[name])
        assert parsed.utcoffset() is not None and parsed.utcoffset().total_seconds() == 0
    assert shown["timestamp"].startswith(PAST_RFC3339.removesuffix("Z"))


async def test_a_timestamp_defaults_to_the_time_of_receipt(app_api: Api, admin_api: Api) -> None:
    await register(app_api, "tok-now")
    item = metric("tok-now")
    before = time.time()
    ok(await post_metrics(app_api, item), accepted=1)
    after = time.time()
    shown = stored(await device(admin_api, "tok-now"))[item["id"]]
    assert before - 1 <= instant(shown["timestamp"]) <= after + 1


async def test_a_timestamp_more_than_five_minutes_ahead_is_rejected(
    app_api: Api, admin_api: Api
) -> None:
    await register(app_api, "tok-future")
    answer = await post_metrics(app_api, metric("tok-future", timestamp=time.time() + 6 * 60))
    assert answer.status == 200, answer.text
    assert answer.body["accepted"] == 0
    assert rejected_paths(answer) == {0: ["timestamp"]}
    assert counts_of(await device(admin_api, "tok-future")) == counts()


async def test_a_timestamp_four_minutes_ahead_is_accepted(app_api: Api, admin_api: Api) -> None:
    await register(app_api, "tok-soon")
    soon = datetime.fromtimestamp(time.time() + 4 * 60, UTC).isoformat()
    ok(await post_metrics(app_api, metric("tok-soon", timestamp=soon)), accepted=1)
    assert counts_of(await device(admin_api, "tok-soon")) == counts(delivered=1)


async def test_a_timestamp_that_is_not_a_time_is_rejected(app_api: Api) -> None:
    answer = await post_metrics(
        app_api,
        metric("tok-bad-ts", timestamp="yesterday"),
        metric("tok-bad-ts", timestamp="2023-11-14T22:13:20"),  # no offset: ambiguous
        metric("tok-bad-ts", timestamp=True),
        metric("tok-bad-ts", timestamp=-5),
    )
    assert answer.status == 200, answer.text
    assert answer.body["accepted"] == 0
    assert rejected_paths(answer) == {i: ["timestamp"] for i in range(4)}


# --- events --------------------------------------------------------------------------------


async def test_a_batch_of_valid_events_is_accepted_whole(app_api: Api) -> None:
    await register(app_api, "tok-ev")
    answer = await post_events(
        app_api,
        event(customer_id="cust-ev"),
        event("Viewed Product", anonymous_id="anon-ev", properties={"sku": "A1", "qty": 2}),
        event("Added To Cart", token="tok-ev", timestamp=PAST),
    )
    assert answer.status == 200, answer.text
    assert answer.body == {"accepted": 3, "duplicates": 0, "rejected": []}


async def test_a_mixed_batch_of_events_lists_the_invalid_ones(app_api: Api, admin_api: Api) -> None:
    answer = await post_events(
        app_api,
        event(customer_id="cust-mix", timestamp=PAST),
        {"id": fresh(), "customer_id": "cust-mix"},  # no name
        event(customer_id="cust-mix", timestamp=time.time() + 3600),
        event(customer_id="cust-mix", properties=["not", "a", "map"]),
    )
    ok(answer, accepted=1)
    assert rejected_paths(answer) == {1: ["name"], 2: ["timestamp"], 3: ["properties"]}
    shown = await profile(admin_api, "cust-mix")
    assert instant(shown["last_converted_at"]) == PAST


async def test_an_event_names_a_customer_an_anonymous_id_or_a_token(app_api: Api) -> None:
    answer = await post_events(
        app_api,
        event(),
        event(customer_id="cust-who"),
        event(anonymous_id="anon-who"),
        event(token="tok-who"),
    )
    ok(answer, accepted=3)
    assert [r["index"] for r in answer.body["rejected"]] == [0]
    paths = rejected_paths(answer)[0]
    assert paths and set(paths) <= {"customer_id", "anonymous_id", "token"}


async def test_an_event_with_a_customer_id_creates_the_profile(
    admin_api: Api, app_api: Api
) -> None:
    assert (await admin_api.get("/v1/profiles/cust-new")).status == 404
    ok(await post_events(app_api, event("Signed Up", customer_id="cust-new")), accepted=1)
    shown = await profile(admin_api, "cust-new")
    assert shown["customer_id"] == "cust-new"


async def test_a_repeated_event_id_is_a_duplicate_and_the_first_copy_wins(
    app_api: Api, admin_api: Api
) -> None:
    first = event(customer_id="cust-dup", timestamp=PAST)
    same_batch = {**first, "timestamp": PAST + 10}
    ok(await post_events(app_api, first, same_batch), accepted=1, duplicates=1)
    later = {**first, "timestamp": PAST + 20}
    ok(await post_events(app_api, later), accepted=0, duplicates=1)
    assert instant((await profile(admin_api, "cust-dup"))["last_converted_at"]) == PAST


async def test_the_same_event_id_in_another_app_is_not_a_duplicate(relay: RelayServer) -> None:
    item = event(customer_id="cust-apps")
    ok(await post_events(await relay.app_api("default"), item), accepted=1)
    ok(await post_events(await relay.app_api("other"), item), accepted=1)
    for app_id in ("default", "other"):
        shown = await profile(await relay.admin_api(app_id), "cust-apps")
        assert shown["last_converted_at"] is not None, app_id


async def test_event_names_not_in_the_alias_table_pass_through(
    app_api: Api, admin_api: Api
) -> None:
    ok(await post_events(app_api, event("Purchase", customer_id="cust-noalias")), 1)
    assert (await profile(admin_api, "cust-noalias"))["last_converted_at"] is None
    ok(await post_events(app_api, event("Order Completed", customer_id="cust-noalias")), 1)
    assert (await profile(admin_api, "cust-noalias"))["last_converted_at"] is not None


@pytest.fixture
async def aliased(tmp_path: Path) -> AsyncIterator[RelayServer]:
    """relay with ``[events] aliases = { "Purchase" = "Order Completed" }``."""
    settings = make_settings(
        tmp_path, apps=two_apps(), events=EventsSettings(aliases={"Purchase": "Order Completed"})
    )
    server = RelayServer(settings)
    await server.start()
    yield server
    await server.close()


async def test_event_names_pass_through_the_configured_alias_table(aliased: RelayServer) -> None:
    app, admin = await aliased.app_api(), await aliased.admin_api()
    ok(await post_events(app, event("Purchase", customer_id="cust-alias", timestamp=PAST)), 1)
    shown = await profile(admin, "cust-alias")
    assert instant(shown["last_converted_at"]) == PAST
