"""Identity: identify, the attribution rule, profiles and merges (API.md "Identity").

Driven only through the HTTP API of a real relay with two apps, ``default`` and ``other``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from tests.steps import (
    DEVICE_FIELDS,
    counts,
    counts_of,
    device,
    error_paths,
    identify,
    merge,
    moment,
    profile,
    register,
    report,
    send_event,
    tokens_of,
)
from tests.support import Api, RelayServer

PROFILE_FIELDS = {
    "customer_id",
    "email",
    "anonymous_ids",
    "devices",
    "counts",
    "last_opened_at",
    "last_converted_at",
}
# --- identify ------------------------------------------------------------------------------


async def test_identify_answers_200_with_the_customer_id(app_api: Api) -> None:
    answer = await app_api.post("/v1/identify", {"customer_id": "cust-1", "anonymous_id": "a-1"})
    assert answer.status == 200
    assert answer.body == {"customer_id": "cust-1"}


async def test_identify_requires_customer_id(app_api: Api) -> None:
    answer = await app_api.post("/v1/identify", {"anonymous_id": "a-1"})
    assert answer.status == 422
    assert "customer_id" in error_paths(answer)


async def test_identify_with_a_customer_id_over_150_bytes_is_422(app_api: Api) -> None:
    answer = await app_api.post("/v1/identify", {"customer_id": "c" * 151})
    assert answer.status == 422
    assert "customer_id" in error_paths(answer)


async def test_identify_creates_the_profile_with_its_email(app_api: Api, admin_api: Api) -> None:
    await identify(app_api, "cust-mail", email="ann@example.com")
    shown = await profile(admin_api, "cust-mail")
    assert shown["customer_id"] == "cust-mail"
    assert shown["email"] == "ann@example.com"


async def test_identify_lists_the_anonymous_id_on_the_profile(app_api: Api, admin_api: Api) -> None:
    await identify(app_api, "cust-anon", anonymous_id="anon-1")
    await identify(app_api, "cust-anon", anonymous_id="anon-2")
    assert set((await profile(admin_api, "cust-anon"))["anonymous_ids"]) == {"anon-1", "anon-2"}


async def test_identify_attaches_devices_registered_before_it(app_api: Api, admin_api: Api) -> None:
    await register(app_api, "tok-anon", expect=201, anonymous_id="anon-1")
    await identify(app_api, "cust-1", anonymous_id="anon-1")
    assert (await device(admin_api, "tok-anon"))["customer_id"] == "cust-1"
    assert "tok-anon" in tokens_of(await profile(admin_api, "cust-1"))


async def test_identify_attaches_metrics_reported_before_it(app_api: Api, admin_api: Api) -> None:
    await register(app_api, "tok-anon", expect=201, anonymous_id="anon-1")
    await report(app_api, "tok-anon", "delivered", "opened")
    await identify(app_api, "cust-1", anonymous_id="anon-1")
    assert counts_of(await profile(admin_api, "cust-1")) == counts(delivered=1, opened=1)


async def test_a_device_registered_after_identify_attaches_to_the_customer(
    app_api: Api, admin_api: Api
) -> None:
    await identify(app_api, "cust-1", anonymous_id="anon-1")
    await register(app_api, "tok-late", expect=201, anonymous_id="anon-1")
    assert (await device(admin_api, "tok-late"))["customer_id"] == "cust-1"
    assert "tok-late" in tokens_of(await profile(admin_api, "cust-1"))


async def test_a_device_that_later_reports_an_identified_anonymous_id_attaches(
    app_api: Api, admin_api: Api
) -> None:
    await register(app_api, "tok-plain", expect=201)
    await identify(app_api, "cust-1", anonymous_id="anon-1")
    await register(app_api, "tok-plain", expect=200, anonymous_id="anon-1")
    assert (await device(admin_api, "tok-plain"))["customer_id"] == "cust-1"


async def test_metrics_reported_after_identify_count_for_the_customer(
    app_api: Api, admin_api: Api
) -> None:
    await register(app_api, "tok-anon", expect=201, anonymous_id="anon-1")
    await identify(app_api, "cust-1", anonymous_id="anon-1")
    await report(app_api, "tok-anon", "delivered", "tapped")
    assert counts_of(await profile(admin_api, "cust-1")) == counts(delivered=1, tapped=1)


async def test_waiting_metrics_of_a_token_registered_after_identify_count_for_the_customer(
    app_api: Api, admin_api: Api
) -> None:
    await report(app_api, "tok-early", "delivered")
    await identify(app_api, "cust-1", anonymous_id="anon-1")
    await register(app_api, "tok-early", expect=201, anonymous_id="anon-1")
    assert counts_of(await profile(admin_api, "cust-1")) == counts(delivered=1)


async def test_metrics_of_an_anonymous_device_attach_when_it_reports_an_identified_anonymous_id(
    app_api: Api, admin_api: Api
) -> None:
    await register(app_api, "tok-plain", expect=201)
    await report(app_api, "tok-plain", "delivered")
    await identify(app_api, "cust-1", anonymous_id="anon-1")
    await register(app_api, "tok-plain", expect=200, anonymous_id="anon-1")
    assert counts_of(await profile(admin_api, "cust-1")) == counts(delivered=1)


async def test_events_of_a_device_attach_on_identify(app_api: Api, admin_api: Api) -> None:
    await register(app_api, "tok-anon", expect=201, anonymous_id="anon-1")
    await send_event(app_api, token="tok-anon")
    await identify(app_api, "cust-1", anonymous_id="anon-1")
    assert (await profile(admin_api, "cust-1"))["last_converted_at"] is not None


async def test_events_under_the_anonymous_id_attach_on_identify(
    app_api: Api, admin_api: Api
) -> None:
    await send_event(app_api, anonymous_id="anon-1")
    await identify(app_api, "cust-1", anonymous_id="anon-1")
    assert (await profile(admin_api, "cust-1"))["last_converted_at"] is not None


async def test_identify_in_another_app_leaves_this_apps_devices_alone(
    relay: RelayServer, app_api: Api, admin_api: Api
) -> None:
    await register(app_api, "tok-anon", expect=201, anonymous_id="anon-1")
    await identify(await relay.app_api("other"), "cust-1", anonymous_id="anon-1")
    assert (await device(admin_api, "tok-anon"))["customer_id"] is None
    assert (await admin_api.get("/v1/profiles/cust-1")).status == 404


# --- account switch and logout -------------------------------------------------------------


async def test_account_switch_moves_only_the_device(app_api: Api, admin_api: Api) -> None:
    await register(app_api, "tok-d", expect=201, anonymous_id="anon-1")
    await report(app_api, "tok-d", "delivered")
    await identify(app_api, "cust-a", anonymous_id="anon-1")
    await report(app_api, "tok-d", "opened")
    await register(app_api, "tok-d", expect=200, customer_id="cust-b")
    a = await profile(admin_api, "cust-a")
    b = await profile(admin_api, "cust-b")
    assert counts_of(a) == counts(delivered=1, opened=1)
    assert "tok-d" not in tokens_of(a)
    assert counts_of(b) == counts()
    assert "tok-d" in tokens_of(b)


async def test_logout_moves_only_the_device(app_api: Api, admin_api: Api) -> None:
    await register(app_api, "tok-d", expect=201, anonymous_id="anon-1")
    await identify(app_api, "cust-a", anonymous_id="anon-1")
    await report(app_api, "tok-d", "delivered", "opened")
    await register(app_api, "tok-d", expect=200, customer_id=None)
    a = await profile(admin_api, "cust-a")
    assert counts_of(a) == counts(delivered=1, opened=1)
    assert "tok-d" not in tokens_of(a)
    assert (await device(admin_api, "tok-d"))["customer_id"] is None


async def test_metrics_after_logout_do_not_count_for_the_old_profile(
    app_api: Api, admin_api: Api
) -> None:
    await register(app_api, "tok-d", expect=201, customer_id="cust-a")
    await register(app_api, "tok-d", expect=200, customer_id=None)
    await report(app_api, "tok-d", "delivered")
    assert counts_of(await profile(admin_api, "cust-a")) == counts()


async def test_a_plain_put_does_not_reattach_a_logged_out_device(
    app_api: Api, admin_api: Api
) -> None:
    await register(app_api, "tok-d", expect=201, anonymous_id="anon-1")
    await identify(app_api, "cust-a", anonymous_id="anon-1")
    await register(app_api, "tok-d", expect=200, customer_id=None)
    await register(app_api, "tok-d", expect=200, anonymous_id="anon-1")
    assert (await device(admin_api, "tok-d"))["customer_id"] is None
    assert "tok-d" not in tokens_of(await profile(admin_api, "cust-a"))


async def test_identify_after_logout_reattaches_the_device(app_api: Api, admin_api: Api) -> None:
    await register(app_api, "tok-d", expect=201, anonymous_id="anon-1")
    await identify(app_api, "cust-a", anonymous_id="anon-1")
    await register(app_api, "tok-d", expect=200, customer_id=None)
    await identify(app_api, "cust-a", anonymous_id="anon-1")
    assert (await device(admin_api, "tok-d"))["customer_id"] == "cust-a"
    assert "tok-d" in tokens_of(await profile(admin_api, "cust-a"))


async def test_put_with_customer_id_reattaches_a_logged_out_device(
    app_api: Api, admin_api: Api
) -> None:
    await register(app_api, "tok-d", expect=201, anonymous_id="anon-1")
    await identify(app_api, "cust-a", anonymous_id="anon-1")
    await register(app_api, "tok-d", expect=200, customer_id=None)
    await register(app_api, "tok-d", expect=200, customer_id="cust-a")
    assert (await device(admin_api, "tok-d"))["customer_id"] == "cust-a"
    assert "tok-d" in tokens_of(await profile(admin_api, "cust-a"))


async def test_a_new_device_under_the_anonymous_id_attaches_but_a_logged_out_one_stays_out(
    app_api: Api, admin_api: Api
) -> None:
    """The logout came after the identify: only the new device follows the link."""
    await identify(app_api, "cust-a", anonymous_id="anon-1")
    await register(app_api, "tok-d", expect=201, anonymous_id="anon-1")
    await register(app_api, "tok-d", expect=200, customer_id=None)
    await register(app_api, "tok-e", expect=201, anonymous_id="anon-1")
    assert (await device(admin_api, "tok-d"))["customer_id"] is None
    assert (await device(admin_api, "tok-e"))["customer_id"] == "cust-a"


# --- re-identifying an anonymous id --------------------------------------------------------


async def test_identifying_an_anonymous_id_as_another_customer_moves_it(
    app_api: Api, admin_api: Api
) -> None:
    await identify(app_api, "cust-a", anonymous_id="anon-1")
    await identify(app_api, "cust-b", anonymous_id="anon-1")
    assert "anon-1" not in (await profile(admin_api, "cust-a"))["anonymous_ids"]
    assert "anon-1" in (await profile(admin_api, "cust-b"))["anonymous_ids"]


async def test_identifying_an_anonymous_id_as_another_customer_moves_its_devices(
    app_api: Api, admin_api: Api
) -> None:
    await register(app_api, "tok-d", expect=201, anonymous_id="anon-1")
    await identify(app_api, "cust-a", anonymous_id="anon-1")
    await identify(app_api, "cust-b", anonymous_id="anon-1")
    assert (await device(admin_api, "tok-d"))["customer_id"] == "cust-b"
    assert "tok-d" not in tokens_of(await profile(admin_api, "cust-a"))
    assert "tok-d" in tokens_of(await profile(admin_api, "cust-b"))


async def test_identifying_an_anonymous_id_as_another_customer_leaves_attributed_history(
    app_api: Api, admin_api: Api
) -> None:
    await register(app_api, "tok-d", expect=201, anonymous_id="anon-1")
    await identify(app_api, "cust-a", anonymous_id="anon-1")
    await report(app_api, "tok-d", "delivered")
    await identify(app_api, "cust-b", anonymous_id="anon-1")
    await report(app_api, "tok-d", "opened")
    assert counts_of(await profile(admin_api, "cust-a")) == counts(delivered=1)
    assert counts_of(await profile(admin_api, "cust-b")) == counts(opened=1)


async def test_a_device_registered_after_reidentify_attaches_to_the_new_customer(
    app_api: Api, admin_api: Api
) -> None:
    await identify(app_api, "cust-a", anonymous_id="anon-1")
    await identify(app_api, "cust-b", anonymous_id="anon-1")
    await register(app_api, "tok-new", expect=201, anonymous_id="anon-1")
    assert (await device(admin_api, "tok-new"))["customer_id"] == "cust-b"


# --- merge ---------------------------------------------------------------------------------


async def test_merge_answers_200_with_the_primary_profile(app_api: Api, admin_api: Api) -> None:
    await identify(app_api, "cust-p", email="p@example.com")
    await identify(app_api, "cust-s")
    answer = await merge(admin_api, "cust-p", "cust-s")
    assert answer.status == 200
    assert set(answer.body) >= PROFILE_FIELDS
    assert answer.body["customer_id"] == "cust-p"
    assert answer.body["email"] == "p@example.com"


async def test_merge_moves_the_secondarys_devices(app_api: Api, admin_api: Api) -> None:
    await register(app_api, "tok-p", expect=201, customer_id="cust-p")
    await register(app_api, "tok-s", expect=201, customer_id="cust-s")
    answer = await merge(admin_api, "cust-p", "cust-s")
    assert tokens_of(answer.body) == {"tok-p", "tok-s"}
    assert (await device(admin_api, "tok-s"))["customer_id"] == "cust-p"


async def test_merge_moves_the_secondarys_metrics(app_api: Api, admin_api: Api) -> None:
    await register(app_api, "tok-p", expect=201, customer_id="cust-p")
    await register(app_api, "tok-s", expect=201, customer_id="cust-s")
    await report(app_api, "tok-p", "delivered")
    await report(app_api, "tok-s", "delivered", "opened")
    await merge(admin_api, "cust-p", "cust-s")
    assert counts_of(await profile(admin_api, "cust-p")) == counts(delivered=2, opened=1)


async def test_merge_moves_metrics_the_secondary_kept_after_its_device_left(
    app_api: Api, admin_api: Api
) -> None:
    await register(app_api, "tok-s", expect=201, customer_id="cust-s")
    await report(app_api, "tok-s", "opened")
    await register(app_api, "tok-s", expect=200, customer_id="cust-x")
    await identify(app_api, "cust-p")
    await merge(admin_api, "cust-p", "cust-s")
    assert counts_of(await profile(admin_api, "cust-p")) == counts(opened=1)
    assert counts_of(await profile(admin_api, "cust-x")) == counts()


async def test_merge_moves_the_secondarys_anonymous_ids(app_api: Api, admin_api: Api) -> None:
    await identify(app_api, "cust-p", anonymous_id="anon-p")
    await identify(app_api, "cust-s", anonymous_id="anon-s")
    answer = await merge(admin_api, "cust-p", "cust-s")
    assert set(answer.body["anonymous_ids"]) == {"anon-p", "anon-s"}


async def test_merge_moves_the_secondarys_events(app_api: Api, admin_api: Api) -> None:
    await identify(app_api, "cust-p")
    await send_event(app_api, customer_id="cust-s")
    assert (await profile(admin_api, "cust-p"))["last_converted_at"] is None
    answer = await merge(admin_api, "cust-p", "cust-s")
    assert answer.body["last_converted_at"] is not None


async def test_after_merge_the_secondarys_anonymous_id_attaches_new_devices_to_the_primary(
    app_api: Api, admin_api: Api
) -> None:
    await identify(app_api, "cust-p")
    await identify(app_api, "cust-s", anonymous_id="anon-s")
    await merge(admin_api, "cust-p", "cust-s")
    await register(app_api, "tok-new", expect=201, anonymous_id="anon-s")
    assert (await device(admin_api, "tok-new"))["customer_id"] == "cust-p"


async def test_a_merged_secondary_no_longer_exists(app_api: Api, admin_api: Api) -> None:
    await identify(app_api, "cust-p")
    await identify(app_api, "cust-s")
    await merge(admin_api, "cust-p", "cust-s")
    assert (await admin_api.get("/v1/profiles/cust-s")).status == 404


@pytest.mark.parametrize(
    ("primary", "secondary"), [("cust-known", "cust-ghost"), ("cust-ghost", "cust-known")]
)
async def test_merge_with_an_unknown_profile_is_404(
    app_api: Api, admin_api: Api, primary: str, secondary: str
) -> None:
    await identify(app_api, "cust-known")
    answer = await merge(admin_api, primary, secondary)
    assert answer.status == 404
    assert (await admin_api.get("/v1/profiles/cust-known")).status == 200


async def test_merging_a_profile_with_itself_is_422(app_api: Api, admin_api: Api) -> None:
    await identify(app_api, "cust-p")
    answer = await merge(admin_api, "cust-p", "cust-p")
    assert answer.status == 422
    assert (await admin_api.get("/v1/profiles/cust-p")).status == 200


async def test_merge_needs_an_admin_key(app_api: Api) -> None:
    await identify(app_api, "cust-p")
    await identify(app_api, "cust-s")
    assert (await merge(app_api, "cust-p", "cust-s")).status == 403


async def test_merge_does_not_reach_into_another_app(relay: RelayServer, app_api: Api) -> None:
    await identify(app_api, "cust-p")
    await identify(app_api, "cust-s")
    other_admin = await relay.admin_api("other")
    assert (await merge(other_admin, "cust-p", "cust-s")).status == 404


# --- profiles ------------------------------------------------------------------------------


async def test_a_profile_has_the_documented_fields(app_api: Api, admin_api: Api) -> None:
    await identify(app_api, "cust-1", anonymous_id="anon-1", email="c@example.com")
    shown = await profile(admin_api, "cust-1")
    assert set(shown) >= PROFILE_FIELDS
    assert shown["anonymous_ids"] == ["anon-1"]
    assert shown["devices"] == []
    assert counts_of(shown) == counts()
    assert shown["last_opened_at"] is None
    assert shown["last_converted_at"] is None


async def test_a_profile_lists_its_devices_as_device_objects(app_api: Api, admin_api: Api) -> None:
    await register(app_api, "tok-1", expect=201, customer_id="cust-1", platform="android")
    await report(app_api, "tok-1", "delivered")
    shown = await profile(admin_api, "cust-1")
    assert len(shown["devices"]) == 1
    listed = shown["devices"][0]
    assert set(listed) >= DEVICE_FIELDS
    assert listed["token"] == "tok-1"
    assert listed["platform"] == "android"
    assert listed["customer_id"] == "cust-1"
    assert counts_of(listed) == counts(delivered=1)


async def test_profile_counts_cover_the_metrics_of_all_its_devices(
    app_api: Api, admin_api: Api
) -> None:
    await register(app_api, "tok-1", expect=201, customer_id="cust-1")
    await register(app_api, "tok-2", expect=201, customer_id="cust-1")
    await report(app_api, "tok-1", "delivered", "opened")
    await report(app_api, "tok-2", "delivered", "deep_link_failed")
    assert counts_of(await profile(admin_api, "cust-1")) == counts(
        delivered=2, opened=1, deep_link_failed=1
    )


async def test_profile_last_opened_at_is_the_latest_open(app_api: Api, admin_api: Api) -> None:
    await register(app_api, "tok-1", expect=201, customer_id="cust-1")
    base = int(time.time()) - 3600
    await report(
        app_api, "tok-1", "opened", "opened", "delivered", timestamps=[base, base + 60, base + 120]
    )
    shown = await profile(admin_api, "cust-1")
    assert moment(shown["last_opened_at"]) == datetime.fromtimestamp(base + 60, UTC)


async def test_a_tapped_action_counts_as_the_latest_open(app_api: Api, admin_api: Api) -> None:
    await register(app_api, "tok-1", expect=201, customer_id="cust-1")
    base = int(time.time()) - 3600
    await report(app_api, "tok-1", "opened", "tapped", timestamps=[base, base + 60])
    shown = await profile(admin_api, "cust-1")
    assert moment(shown["last_opened_at"]) == datetime.fromtimestamp(base + 60, UTC)


async def test_a_customer_id_over_150_bytes_in_the_profile_path_is_422(admin_api: Api) -> None:
    answer = await admin_api.get("/v1/profiles/" + "c" * 151)
    assert answer.status == 422


async def test_an_unknown_profile_is_404(admin_api: Api) -> None:
    answer = await admin_api.get("/v1/profiles/cust-nobody")
    assert answer.status == 404
    assert answer.content_type == "application/problem+json"


async def test_a_put_with_customer_id_creates_the_profile(app_api: Api, admin_api: Api) -> None:
    assert (await admin_api.get("/v1/profiles/cust-put")).status == 404
    await register(app_api, "tok-1", expect=201, customer_id="cust-put")
    assert (await profile(admin_api, "cust-put"))["customer_id"] == "cust-put"


async def test_an_event_with_customer_id_creates_the_profile(app_api: Api, admin_api: Api) -> None:
    assert (await admin_api.get("/v1/profiles/cust-evt")).status == 404
    await send_event(app_api, name="Viewed Product", customer_id="cust-evt")
    assert (await profile(admin_api, "cust-evt"))["customer_id"] == "cust-evt"


async def test_an_app_key_cannot_read_a_profile(app_api: Api) -> None:
    await identify(app_api, "cust-1")
    assert (await app_api.get("/v1/profiles/cust-1")).status == 403


async def test_another_apps_profile_is_404(relay: RelayServer, app_api: Api) -> None:
    await identify(app_api, "cust-1")
    other_admin = await relay.admin_api("other")
    assert (await other_admin.get("/v1/profiles/cust-1")).status == 404


async def test_admin_reads_another_apps_profile_with_the_app_parameter(
    relay: RelayServer, admin_api: Api
) -> None:
    await identify(await relay.app_api("other"), "cust-theirs")
    assert (await admin_api.get("/v1/profiles/cust-theirs")).status == 404
    assert (await admin_api.get("/v1/profiles/cust-theirs?app=other")).status == 200


async def test_identify_with_the_app_parameter_and_an_app_key_is_403(app_api: Api) -> None:
    answer = await app_api.post("/v1/identify?app=other", {"customer_id": "cust-1"})
    assert answer.status == 403
