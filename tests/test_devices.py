"""Devices: register/update, refresh, unregister, inspect (API.md "Devices").

Driven only through the HTTP API of a real relay with two apps, ``default`` and ``other``.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from tests.steps import (
    DEVICE_FIELDS,
    counts,
    counts_of,
    device,
    error_paths,
    moment,
    profile,
    register,
    report,
    tokens_of,
)
from tests.support import Api, RelayServer

# --- helpers -------------------------------------------------------------------------------


async def tick() -> None:
    """Let the clock move past the millisecond resolution of timestamps."""
    await asyncio.sleep(0.01)


# --- register / update ---------------------------------------------------------------------


async def test_registering_a_new_token_answers_201_with_token_and_status(app_api: Api) -> None:
    answer = await register(app_api, "tok-new")
    assert answer.status == 201
    assert answer.body == {"token": "tok-new", "status": "active"}


async def test_registering_a_known_token_again_answers_200(app_api: Api) -> None:
    await register(app_api, "tok-again", expect=201)
    answer = await register(app_api, "tok-again")
    assert answer.status == 200
    assert answer.body == {"token": "tok-again", "status": "active"}


async def test_repeating_the_same_put_changes_nothing(app_api: Api, admin_api: Api) -> None:
    body = {"anonymous_id": "anon-1", "customer_id": "cust-1", "environment": "sandbox"}
    await register(app_api, "tok-idem", expect=201, **body)
    first = await device(admin_api, "tok-idem")
    await register(app_api, "tok-idem", expect=200, **body)
    second = await device(admin_api, "tok-idem")
    for name in DEVICE_FIELDS - {"last_seen", "token_updated_at"}:
        assert second[name] == first[name], name


async def test_app_key_gets_back_only_token_and_status_on_update(app_api: Api) -> None:
    await register(app_api, "tok-ack", expect=201, customer_id="cust-ack")
    answer = await register(app_api, "tok-ack", customer_id="cust-ack", anonymous_id="a")
    assert answer.body == {"token": "tok-ack", "status": "active"}


async def test_admin_key_gets_back_the_device_object(admin_api: Api) -> None:
    answer = await register(
        admin_api, "tok-admin", platform="android", customer_id="cust-adm", anonymous_id="anon-adm"
    )
    assert answer.status == 201
    assert set(answer.body) >= DEVICE_FIELDS
    assert answer.body["token"] == "tok-admin"
    assert answer.body["app_id"] == "default"
    assert answer.body["platform"] == "android"
    assert answer.body["status"] == "active"
    assert answer.body["customer_id"] == "cust-adm"
    assert answer.body["anonymous_id"] == "anon-adm"
    assert answer.body["invalid_reason"] is None
    assert answer.body["replaced_by"] is None
    assert counts_of(answer.body) == counts()


async def test_admin_update_answers_200_with_the_device_object(admin_api: Api) -> None:
    await register(admin_api, "tok-admin2", expect=201)
    answer = await register(admin_api, "tok-admin2", push_enabled=False)
    assert answer.status == 200
    assert set(answer.body) >= DEVICE_FIELDS
    assert answer.body["push_enabled"] is False


async def test_device_timestamps_are_rfc3339_utc(app_api: Api, admin_api: Api) -> None:
    await register(app_api, "tok-times", expect=201)
    shown = await device(admin_api, "tok-times")
    for name in ("first_seen", "last_seen", "token_updated_at"):
        parsed = moment(shown[name])
        assert parsed.utcoffset() is not None and parsed.utcoffset().total_seconds() == 0, name


async def test_a_new_device_is_push_enabled_in_production(app_api: Api, admin_api: Api) -> None:
    await register(app_api, "tok-defaults", expect=201)
    shown = await device(admin_api, "tok-defaults")
    assert shown["push_enabled"] is True
    assert shown["environment"] == "production"
    assert shown["customer_id"] is None
    assert shown["anonymous_id"] is None


async def test_platform_is_required(app_api: Api) -> None:
    answer = await app_api.put("/v1/devices/tok-noplat", {"anonymous_id": "a"})
    assert answer.status == 422
    assert "platform" in error_paths(answer)


async def test_a_malformed_token_in_the_path_is_422(app_api: Api) -> None:
    answer = await register(app_api, "bad!token")
    assert answer.status == 422


async def test_a_token_of_4096_characters_is_accepted(app_api: Api) -> None:
    answer = await register(app_api, "t" * 4096)
    assert answer.status == 201


async def test_a_token_longer_than_4096_characters_is_422(app_api: Api) -> None:
    answer = await register(app_api, "t" * 4097)
    assert answer.status == 422


async def test_omitted_fields_keep_their_stored_values(app_api: Api, admin_api: Api) -> None:
    await register(
        app_api,
        "tok-keep",
        expect=201,
        platform="android",
        anonymous_id="anon-keep",
        customer_id="cust-keep",
        push_enabled=False,
        environment="sandbox",
    )
    await register(app_api, "tok-keep", expect=200, platform="android")
    shown = await device(admin_api, "tok-keep")
    assert shown["platform"] == "android"
    assert shown["anonymous_id"] == "anon-keep"
    assert shown["customer_id"] == "cust-keep"
    assert shown["push_enabled"] is False
    assert shown["environment"] == "sandbox"


async def test_attributes_merge_into_the_stored_ones(app_api: Api, admin_api: Api) -> None:
    await register(app_api, "tok-attrs", expect=201, attributes={"a": 1, "b": "x"})
    await register(app_api, "tok-attrs", expect=200, attributes={"b": "y", "c": True})
    shown = await device(admin_api, "tok-attrs")
    assert shown["attributes"] == {"a": 1, "b": "y", "c": True}


# --- refresh -------------------------------------------------------------------------------


async def test_refresh_answers_200_with_the_new_token_and_its_status(app_api: Api) -> None:
    await register(app_api, "tok-old", expect=201)
    answer = await app_api.post("/v1/devices/tok-old/refresh", {"new_token": "tok-fresh"})
    assert answer.status == 200
    assert answer.body == {"token": "tok-fresh", "status": "active"}


async def test_refresh_marks_the_old_token_replaced_by_the_new_one(
    app_api: Api, admin_api: Api
) -> None:
    await register(app_api, "tok-old", expect=201)
    await app_api.post("/v1/devices/tok-old/refresh", {"new_token": "tok-fresh"})
    old = await device(admin_api, "tok-old")
    assert old["status"] == "replaced"
    assert old["replaced_by"] == "tok-fresh"


async def test_refresh_moves_metrics_to_the_new_token(app_api: Api, admin_api: Api) -> None:
    await register(app_api, "tok-old", expect=201)
    await report(app_api, "tok-old", "delivered", "opened")
    await app_api.post("/v1/devices/tok-old/refresh", {"new_token": "tok-fresh"})
    fresh = await device(admin_api, "tok-fresh")
    assert counts_of(fresh) == counts(delivered=1, opened=1)


async def test_refresh_moves_the_profile_to_the_new_token(app_api: Api, admin_api: Api) -> None:
    await register(app_api, "tok-old", expect=201, customer_id="cust-r", anonymous_id="anon-r")
    await app_api.post("/v1/devices/tok-old/refresh", {"new_token": "tok-fresh"})
    fresh = await device(admin_api, "tok-fresh")
    assert fresh["customer_id"] == "cust-r"
    assert fresh["anonymous_id"] == "anon-r"
    listed = {d["token"]: d for d in (await profile(admin_api, "cust-r"))["devices"]}
    assert listed["tok-fresh"]["status"] == "active"


async def test_refresh_keeps_the_profiles_counts(app_api: Api, admin_api: Api) -> None:
    await register(app_api, "tok-old", expect=201, customer_id="cust-rc")
    await report(app_api, "tok-old", "delivered", "opened")
    await app_api.post("/v1/devices/tok-old/refresh", {"new_token": "tok-fresh"})
    await report(app_api, "tok-fresh", "delivered")
    assert counts_of(await profile(admin_api, "cust-rc")) == counts(delivered=2, opened=1)


async def test_refresh_of_an_unknown_token_is_404(app_api: Api) -> None:
    answer = await app_api.post("/v1/devices/tok-nobody/refresh", {"new_token": "tok-fresh"})
    assert answer.status == 404
    assert answer.content_type == "application/problem+json"


async def test_refresh_onto_the_same_token_is_422_naming_new_token(app_api: Api) -> None:
    await register(app_api, "tok-same", expect=201)
    answer = await app_api.post("/v1/devices/tok-same/refresh", {"new_token": "tok-same"})
    assert answer.status == 422
    assert "new_token" in error_paths(answer)


async def test_refresh_onto_a_malformed_token_is_422_naming_new_token(app_api: Api) -> None:
    await register(app_api, "tok-old", expect=201)
    answer = await app_api.post("/v1/devices/tok-old/refresh", {"new_token": "bad token!"})
    assert answer.status == 422
    assert "new_token" in error_paths(answer)


async def test_refresh_onto_a_registered_token_joins_its_history(
    app_api: Api, admin_api: Api
) -> None:
    await register(app_api, "tok-old", expect=201)
    await register(app_api, "tok-there", expect=201)
    await report(app_api, "tok-old", "delivered", "opened")
    await report(app_api, "tok-there", "delivered")
    answer = await app_api.post("/v1/devices/tok-old/refresh", {"new_token": "tok-there"})
    assert answer.status == 200
    assert answer.body == {"token": "tok-there", "status": "active"}
    assert counts_of(await device(admin_api, "tok-there")) == counts(delivered=2, opened=1)
    assert (await device(admin_api, "tok-old"))["status"] == "replaced"


# --- unregister ----------------------------------------------------------------------------


async def test_delete_answers_204_and_marks_the_device_unregistered(
    app_api: Api, admin_api: Api
) -> None:
    await register(app_api, "tok-del", expect=201)
    answer = await app_api.delete("/v1/devices/tok-del")
    assert answer.status == 204
    assert (await device(admin_api, "tok-del"))["status"] == "unregistered"


async def test_delete_of_an_unknown_token_is_404(app_api: Api) -> None:
    answer = await app_api.delete("/v1/devices/tok-nobody")
    assert answer.status == 404


async def test_deleting_an_unregistered_device_again_answers_204(app_api: Api) -> None:
    await register(app_api, "tok-del2", expect=201)
    assert (await app_api.delete("/v1/devices/tok-del2")).status == 204
    assert (await app_api.delete("/v1/devices/tok-del2")).status == 204


async def test_put_reactivates_an_unregistered_device(app_api: Api, admin_api: Api) -> None:
    await register(app_api, "tok-back", expect=201)
    await app_api.delete("/v1/devices/tok-back")
    answer = await register(app_api, "tok-back")
    assert answer.status == 200
    assert answer.body == {"token": "tok-back", "status": "active"}
    assert (await device(admin_api, "tok-back"))["status"] == "active"


async def test_put_reactivates_a_replaced_token(app_api: Api, admin_api: Api) -> None:
    await register(app_api, "tok-old", expect=201)
    await app_api.post("/v1/devices/tok-old/refresh", {"new_token": "tok-fresh"})
    answer = await register(app_api, "tok-old")
    assert answer.status == 200
    assert answer.body == {"token": "tok-old", "status": "active"}
    shown = await device(admin_api, "tok-old")
    assert shown["status"] == "active"
    assert shown["replaced_by"] is None


# --- customer attachment -------------------------------------------------------------------


async def test_account_switch_moves_the_device_to_the_new_profile(
    app_api: Api, admin_api: Api
) -> None:
    await register(app_api, "tok-sw", expect=201, customer_id="cust-a")
    await register(app_api, "tok-sw", expect=200, customer_id="cust-b")
    assert (await device(admin_api, "tok-sw"))["customer_id"] == "cust-b"
    assert "tok-sw" not in tokens_of(await profile(admin_api, "cust-a"))
    assert "tok-sw" in tokens_of(await profile(admin_api, "cust-b"))


async def test_account_switch_leaves_attributed_metrics_with_the_old_profile(
    app_api: Api, admin_api: Api
) -> None:
    await register(app_api, "tok-sw", expect=201, customer_id="cust-a")
    await report(app_api, "tok-sw", "delivered", "opened")
    await register(app_api, "tok-sw", expect=200, customer_id="cust-b")
    assert counts_of(await profile(admin_api, "cust-a")) == counts(delivered=1, opened=1)
    assert counts_of(await profile(admin_api, "cust-b")) == counts()


async def test_metrics_after_an_account_switch_count_for_the_new_profile(
    app_api: Api, admin_api: Api
) -> None:
    await register(app_api, "tok-sw", expect=201, customer_id="cust-a")
    await register(app_api, "tok-sw", expect=200, customer_id="cust-b")
    await report(app_api, "tok-sw", "delivered")
    assert counts_of(await profile(admin_api, "cust-a")) == counts()
    assert counts_of(await profile(admin_api, "cust-b")) == counts(delivered=1)


async def test_device_counts_cover_metrics_of_every_profile_it_had(
    app_api: Api, admin_api: Api
) -> None:
    await register(app_api, "tok-sw", expect=201, customer_id="cust-a")
    await report(app_api, "tok-sw", "delivered")
    await register(app_api, "tok-sw", expect=200, customer_id="cust-b")
    await report(app_api, "tok-sw", "opened")
    await register(app_api, "tok-sw", expect=200, customer_id=None)
    await report(app_api, "tok-sw", "tapped")
    assert counts_of(await device(admin_api, "tok-sw")) == counts(delivered=1, opened=1, tapped=1)


async def test_logout_makes_the_device_anonymous(app_api: Api, admin_api: Api) -> None:
    await register(app_api, "tok-out", expect=201, customer_id="cust-out", anonymous_id="anon-o")
    answer = await register(app_api, "tok-out", customer_id=None)
    assert answer.status == 200
    shown = await device(admin_api, "tok-out")
    assert shown["customer_id"] is None
    assert shown["anonymous_id"] == "anon-o"


async def test_logout_removes_the_device_from_its_profile(app_api: Api, admin_api: Api) -> None:
    await register(app_api, "tok-out", expect=201, customer_id="cust-out")
    await register(app_api, "tok-out", expect=200, customer_id=None)
    assert "tok-out" not in tokens_of(await profile(admin_api, "cust-out"))


async def test_omitted_customer_id_keeps_the_attachment(app_api: Api, admin_api: Api) -> None:
    await register(app_api, "tok-stay", expect=201, customer_id="cust-stay")
    await register(app_api, "tok-stay", expect=200, anonymous_id="anon-stay")
    assert (await device(admin_api, "tok-stay"))["customer_id"] == "cust-stay"
    assert "tok-stay" in tokens_of(await profile(admin_api, "cust-stay"))


# --- last_seen / token_updated_at ----------------------------------------------------------


async def test_put_moves_last_seen_and_token_updated_at_forward(
    app_api: Api, admin_api: Api
) -> None:
    await register(app_api, "tok-time", expect=201)
    before = await device(admin_api, "tok-time")
    await tick()
    await register(app_api, "tok-time", expect=200)
    after = await device(admin_api, "tok-time")
    assert moment(after["last_seen"]) > moment(before["last_seen"])
    assert moment(after["token_updated_at"]) > moment(before["token_updated_at"])
    assert after["first_seen"] == before["first_seen"]


async def test_a_metric_moves_last_seen_but_not_token_updated_at(
    app_api: Api, admin_api: Api
) -> None:
    await register(app_api, "tok-time", expect=201)
    before = await device(admin_api, "tok-time")
    await tick()
    await report(app_api, "tok-time", "delivered")
    after = await device(admin_api, "tok-time")
    assert moment(after["last_seen"]) > moment(before["last_seen"])
    assert after["token_updated_at"] == before["token_updated_at"]


async def test_a_put_after_a_metric_moves_last_seen_past_the_metric(
    app_api: Api, admin_api: Api
) -> None:
    await register(app_api, "tok-time", expect=201)
    await tick()
    await report(app_api, "tok-time", "delivered")
    seen_by_metric = await device(admin_api, "tok-time")
    await tick()
    await register(app_api, "tok-time", expect=200)
    after = await device(admin_api, "tok-time")
    assert moment(after["last_seen"]) > moment(seen_by_metric["last_seen"])


async def test_last_seen_reads_the_same_on_the_device_and_on_its_profile(
    app_api: Api, admin_api: Api
) -> None:
    await register(app_api, "tok-time", expect=201, customer_id="cust-time")
    await tick()
    await report(app_api, "tok-time", "opened")
    (on_profile,) = (await profile(admin_api, "cust-time"))["devices"]
    assert on_profile["last_seen"] == (await device(admin_api, "tok-time"))["last_seen"]


async def test_refresh_sets_last_seen_and_token_updated_at_of_the_new_token(
    app_api: Api, admin_api: Api
) -> None:
    await register(app_api, "tok-old", expect=201)
    before = await device(admin_api, "tok-old")
    await tick()
    await app_api.post("/v1/devices/tok-old/refresh", {"new_token": "tok-fresh"})
    fresh = await device(admin_api, "tok-fresh")
    assert moment(fresh["token_updated_at"]) > moment(before["token_updated_at"])
    assert moment(fresh["last_seen"]) > moment(before["last_seen"])


async def test_delete_moves_neither_last_seen_nor_token_updated_at(
    app_api: Api, admin_api: Api
) -> None:
    await register(app_api, "tok-time", expect=201)
    before = await device(admin_api, "tok-time")
    await tick()
    await app_api.delete("/v1/devices/tok-time")
    after = await device(admin_api, "tok-time")
    assert after["last_seen"] == before["last_seen"]
    assert after["token_updated_at"] == before["token_updated_at"]


# --- inspect -------------------------------------------------------------------------------


async def test_device_counts_count_each_metric_kind(app_api: Api, admin_api: Api) -> None:
    await register(app_api, "tok-count", expect=201)
    await report(app_api, "tok-count", "delivered", "delivered", "opened", "tapped")
    await report(app_api, "tok-count", "deep_link_failed")
    assert counts_of(await device(admin_api, "tok-count")) == counts(
        delivered=2, opened=1, tapped=1, deep_link_failed=1
    )


async def test_recent_metrics_are_newest_first(app_api: Api, admin_api: Api) -> None:
    await register(app_api, "tok-recent", expect=201)
    base = int(time.time()) - 3600
    for offset in range(3):
        await report(app_api, "tok-recent", "delivered", timestamps=[base + offset])
    shown = await device(admin_api, "tok-recent")
    stamps = [moment(m["timestamp"]) for m in shown["recent_metrics"]]
    assert stamps == [datetime.fromtimestamp(base + o, UTC) for o in (2, 1, 0)]


async def test_recent_metrics_hold_only_the_newest_50(app_api: Api, admin_api: Api) -> None:
    await register(app_api, "tok-many", expect=201)
    base = int(time.time()) - 3600
    items = [
        {"id": f"many-{i}", "metric": "delivered", "token": "tok-many", "timestamp": base + i}
        for i in range(60)
    ]
    answer = await app_api.post("/v1/metrics", {"metrics": items})
    assert answer.body["accepted"] == 60
    shown = await device(admin_api, "tok-many")
    assert [m["id"] for m in shown["recent_metrics"]] == [f"many-{i}" for i in range(59, 9, -1)]
    assert shown["counts"]["delivered"] == 60


async def test_metrics_for_an_unregistered_token_attach_when_it_registers(
    app_api: Api, admin_api: Api
) -> None:
    await report(app_api, "tok-later", "delivered", "opened")
    assert (await admin_api.get("/v1/devices/tok-later")).status == 404
    await register(app_api, "tok-later", expect=201)
    shown = await device(admin_api, "tok-later")
    assert counts_of(shown) == counts(delivered=1, opened=1)
    assert len(shown["recent_metrics"]) == 2


async def test_an_unknown_token_is_404(admin_api: Api) -> None:
    answer = await admin_api.get("/v1/devices/tok-nobody")
    assert answer.status == 404
    assert answer.content_type == "application/problem+json"


async def test_app_key_cannot_read_a_device(app_api: Api) -> None:
    await register(app_api, "tok-secret", expect=201)
    answer = await app_api.get("/v1/devices/tok-secret")
    assert answer.status == 403


async def test_a_registered_device_survives_a_restart(relay: RelayServer) -> None:
    app = await relay.app_api()
    await register(app, "tok-durable", expect=201, customer_id="cust-durable")
    await report(app, "tok-durable", "delivered")
    await relay.restart()
    shown = await device(await relay.admin_api(), "tok-durable")
    assert shown["customer_id"] == "cust-durable"
    assert counts_of(shown) == counts(delivered=1)


# --- apps ----------------------------------------------------------------------------------


async def test_another_apps_admin_does_not_see_the_device(relay: RelayServer, app_api: Api) -> None:
    await register(app_api, "tok-mine", expect=201)
    other_admin = await relay.admin_api("other")
    assert (await other_admin.get("/v1/devices/tok-mine")).status == 404


async def test_another_apps_app_key_cannot_refresh_the_device(
    relay: RelayServer, app_api: Api, admin_api: Api
) -> None:
    await register(app_api, "tok-mine", expect=201)
    other_app = await relay.app_api("other")
    answer = await other_app.post("/v1/devices/tok-mine/refresh", {"new_token": "tok-stolen"})
    assert answer.status == 404
    assert (await device(admin_api, "tok-mine"))["status"] == "active"


async def test_another_apps_app_key_cannot_delete_the_device(
    relay: RelayServer, app_api: Api, admin_api: Api
) -> None:
    await register(app_api, "tok-mine", expect=201)
    other_app = await relay.app_api("other")
    assert (await other_app.delete("/v1/devices/tok-mine")).status == 404
    assert (await device(admin_api, "tok-mine"))["status"] == "active"


async def test_the_same_token_in_another_app_is_a_separate_device(
    relay: RelayServer, app_api: Api, admin_api: Api
) -> None:
    await register(app_api, "tok-shared", expect=201, customer_id="cust-default")
    other_app = await relay.app_api("other")
    answer = await register(other_app, "tok-shared", customer_id="cust-other")
    assert answer.status == 201
    assert (await device(admin_api, "tok-shared"))["customer_id"] == "cust-default"


async def test_admin_reads_another_app_with_the_app_parameter(
    relay: RelayServer, admin_api: Api
) -> None:
    other_app = await relay.app_api("other")
    await register(other_app, "tok-theirs", expect=201)
    answer = await admin_api.get("/v1/devices/tok-theirs?app=other")
    assert answer.status == 200
    assert answer.body["app_id"] == "other"
    assert (await admin_api.get("/v1/devices/tok-theirs")).status == 404


async def test_admin_registers_in_another_app_with_the_app_parameter(
    relay: RelayServer, admin_api: Api
) -> None:
    answer = await admin_api.put("/v1/devices/tok-placed?app=other", {"platform": "ios"})
    assert answer.status == 201
    assert answer.body["app_id"] == "other"
    other_admin = await relay.admin_api("other")
    assert (await other_admin.get("/v1/devices/tok-placed")).status == 200


async def test_app_parameter_with_an_app_key_is_403(app_api: Api) -> None:
    answer = await app_api.put("/v1/devices/tok-x?app=other", {"platform": "ios"})
    assert answer.status == 403


async def test_app_parameter_naming_the_keys_own_app_is_still_403_for_an_app_key(
    app_api: Api,
) -> None:
    answer = await app_api.put("/v1/devices/tok-x?app=default", {"platform": "ios"})
    assert answer.status == 403


async def test_unknown_app_parameter_is_404(admin_api: Api) -> None:
    answer = await admin_api.get("/v1/devices/tok-x?app=nowhere")
    assert answer.status == 404
