"""Segments (API.md "Segments"): the catalogue, exports with known answers, membership sync.

Membership is checked against a small fleet whose every profile sits on or next to a boundary
of some segment. Every timestamp is relative to a fixed ``AS_OF`` (the hour before the last one)
so that nothing reported lies in the future, and exports name that moment with ``as_of``.
Driven only through the HTTP API of real relays (and, for sync, a validating Customer.io fake).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from relay.settings import (
    CustomerioSettings,
    EventsSettings,
    ForwardingSettings,
    SegmentsSettings,
)
from relay_fakes.fake_customerio import FakeCustomerIO
from tests.conftest import API_KEY, SITE_ID
from tests.support import Answer, Api, RelayServer, make_settings, two_apps
from tests.test_forwarding import drained, ops_of, v1_calls

DAY = 86_400
AS_OF = int(time.time()) // 3600 * 3600 - 3600
"""The moment every export is computed at: on the hour, at least one hour ago."""

COLUMNS = [
    "customer_id",
    "email",
    "devices",
    "last_delivered_at",
    "last_opened_at",
    "opens_window",
    "deliveries_window",
    "last_converted_at",
]
TIMESTAMP_COLUMNS = ("last_delivered_at", "last_opened_at", "last_converted_at")
CATALOGUE = {
    "push_engaged": {"days": 7},
    "delivered_not_opened": {"days": 30, "min_deliveries": 3},
    "opened_not_converted": {"days": 7},
    "deep_link_failures": {"days": 7},
    "push_fatigued": {"min_deliveries": 5},
    "lapsed_push_engaged": {"days": 30, "lapsed_days": 90},
    "unreachable": {},
}
ALIASES = {"Purchase": "Order Completed"}
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")

_ids = itertools.count(1)


def ago(days: int = 0, plus: int = 0) -> int:
    """``days`` days before AS_OF, then ``plus`` seconds later."""
    return AS_OF - days * DAY + plus


# --- helpers -------------------------------------------------------------------------------


def check(answer: Answer, *statuses: int) -> Answer:
    assert answer.status in statuses, answer.text
    return answer


async def register(app: Api, token: str, **fields: Any) -> None:
    check(await app.put(f"/v1/devices/{token}", {"platform": "ios", **fields}), 200, 201)


async def identify(app: Api, customer_id: str, **fields: Any) -> None:
    check(await app.post("/v1/identify", {"customer_id": customer_id, **fields}), 200)


async def report(app: Api, token: str, metric: str, *moments: int) -> None:
    """One ``metric`` per moment for ``token``, each on its own delivery."""
    items = [
        {
            "id": f"m-{next(_ids)}",
            "metric": metric,
            "token": token,
            "delivery_id": f"dlv-{next(_ids)}",
            "timestamp": moment,
        }
        for moment in moments
    ]
    answer = check(await app.post("/v1/metrics", {"metrics": items}), 200)
    assert answer.body["accepted"] == len(items), answer.body


async def send_event(app: Api, name: str, moment: int, **who: Any) -> None:
    event = {"id": f"e-{next(_ids)}", "name": name, "timestamp": moment, **who}
    answer = check(await app.post("/v1/events", {"events": [event]}), 200)
    assert answer.body["accepted"] == 1, answer.body


# --- the fleet -----------------------------------------------------------------------------

# customer id -> metric -> moments; each profile has one active, push-enabled device.
METRICS: dict[str, dict[str, list[int]]] = {
    "engaged-edge-in": {"opened": [ago(7, 1)]},
    "engaged-edge-out": {"opened": [ago(7)]},
    "after-as-of": {
        "opened": [ago(0, 1)],
        "delivered": [ago(0, 1)] * 5,
        "deep_link_failed": [ago(0, 1)],
    },
    "converted-before-open": {"opened": [ago(1)]},
    "converted-after-open": {"opened": [ago(2)]},
    "converted-after-as-of": {"opened": [ago(1)]},
    "converted-by-alias": {"opened": [ago(2)]},
    "non-conversion-event": {"opened": [ago(2)]},
    "delivered-3": {"delivered": [ago(30, 1), ago(10), ago(1)]},
    "delivered-edge": {"delivered": [ago(30), ago(30, 1), ago(1)]},
    "delivered-and-opened": {"delivered": [ago(3), ago(2), ago(1)], "opened": [ago(20)]},
    "delivered-lapsed": {"delivered": [ago(3), ago(2), ago(1)], "opened": [ago(40)]},
    "fatigued": {"delivered": [ago(7, 1), ago(3), ago(2), ago(1), ago(0, -1)]},
    "fatigued-edge": {"delivered": [ago(7), ago(3), ago(2), ago(1), ago(0, -1)]},
    "link-failed": {"deep_link_failed": [ago(1)]},
    "link-failed-edge": {"deep_link_failed": [ago(7)]},
    "lapsed-edge-in": {"opened": [ago(90, 1)]},
    "lapsed-edge-out": {"opened": [ago(90)]},
    "lapsed-recent-edge": {"opened": [ago(30)]},
}
# (customer id, event name, moment)
EVENTS = [
    ("converted-before-open", "Order Completed", ago(2)),
    ("converted-after-open", "Order Completed", ago(1)),
    ("converted-after-as-of", "Order Completed", ago(0, 1)),
    ("converted-by-alias", "Purchase", ago(1)),
    ("non-conversion-event", "Viewed Cart", ago(1)),
]


async def build_fleet(relay: RelayServer) -> None:
    """The known-answer fleet; see the expected memberships in the tests below."""
    app, admin = await relay.app_api(), await relay.admin_api()
    for customer_id, metrics in METRICS.items():
        await register(app, f"tok-{customer_id}", customer_id=customer_id)
        for metric, moments in metrics.items():
            await report(app, f"tok-{customer_id}", metric, *moments)
    for customer_id, name, moment in EVENTS:
        await send_event(app, name, moment, customer_id=customer_id)
    await identify(app, "converted-before-open", email="before@example.com")

    # Reachability: no device; push disabled; unregistered; two devices, one push-disabled.
    await identify(app, "no-device", email="no-device@example.com")
    await register(app, "tok-push-disabled", customer_id="push-disabled", push_enabled=False)
    await report(app, "tok-push-disabled", "delivered", ago(20), ago(1))
    await register(app, "tok-unregistered", customer_id="unregistered")
    check(await app.delete("/v1/devices/tok-unregistered"), 204)
    await register(app, "tok-two-devices-a", customer_id="two-devices", push_enabled=False)
    await register(app, "tok-two-devices-b", customer_id="two-devices")
    # A profile left with only a replaced token: refreshed, then the new token switched account.
    await register(app, "tok-switch-old", customer_id="switched-away")
    check(await app.post("/v1/devices/tok-switch-old/refresh", {"new_token": "tok-switch"}), 200)
    await register(app, "tok-switch", customer_id="switched-to")

    # Merged profiles: the secondary's open counts on the primary; the secondary is gone.
    await register(app, "tok-merge-primary", customer_id="merge-primary")
    await register(app, "tok-merge-secondary", customer_id="merge-secondary")
    await report(app, "tok-merge-secondary", "opened", ago(1))
    merged = await admin.post(
        "/v1/profiles/merge", {"primary": "merge-primary", "secondary": "merge-secondary"}
    )
    check(merged, 200)

    # Refreshed token: deliveries on the old token follow the device to its profile.
    await register(app, "tok-refresh-old")
    await report(app, "tok-refresh-old", "delivered", ago(3), ago(2))
    check(
        await app.post("/v1/devices/tok-refresh-old/refresh", {"new_token": "tok-refresh-new"}),
        200,
    )
    await report(app, "tok-refresh-new", "delivered", ago(1))
    await register(app, "tok-refresh-new", customer_id="refreshed")

    # Anonymous, then identified: the anonymous open counts.
    await register(app, "tok-identified-later", anonymous_id="anon-later")
    await report(app, "tok-identified-later", "opened", ago(1))
    await identify(app, "identified-later", anonymous_id="anon-later")

    # Never identified: not a profile, in no segment.
    await register(app, "tok-anonymous", anonymous_id="anon-never")
    await report(app, "tok-anonymous", "opened", ago(1))
    await report(app, "tok-anonymous", "delivered", *[ago(1)] * 5)

    # Another app's profile: only there.
    other = await relay.app_api("other")
    await register(other, "tok-other-app", customer_id="other-app")
    await report(other, "tok-other-app", "opened", ago(1))


@pytest.fixture
async def fleet(tmp_path: Path) -> AsyncIterator[RelayServer]:
    """A relay (apps ``default`` and ``other``, alias Purchase → Order Completed) with the fleet."""
    settings = make_settings(tmp_path, apps=two_apps(), events=EventsSettings(aliases=ALIASES))
    server = RelayServer(settings)
    await server.start()
    await build_fleet(server)
    yield server
    await server.close()


@pytest.fixture
async def admin(fleet: RelayServer) -> Api:
    return await fleet.admin_api()


# --- reading exports -----------------------------------------------------------------------


async def fetch(api: Api, path: str) -> tuple[int, Any, bytes]:
    """A raw GET: status, headers, body bytes."""
    headers = {"Authorization": f"Bearer {api.key}"} if api.key else {}
    async with api.session.get(api.base_url + path, headers=headers) as response:
        return response.status, response.headers, await response.read()


def export_path(name: str, **query: Any) -> str:
    return f"/v1/segments/{name}/export?{urlencode(query)}"


async def export(api: Api, name: str, **query: Any) -> bytes:
    """The export of ``name`` as of AS_OF (unless ``as_of`` is given), body bytes."""
    query.setdefault("as_of", AS_OF)
    status, _, body = await fetch(api, export_path(name, **query))
    assert status == 200, body
    return body


def csv_table(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))


def csv_rows(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode("utf-8"), newline="")))


def jsonl_rows(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in body.decode("utf-8").splitlines()]


async def members(api: Api, name: str, **query: Any) -> list[str]:
    return sorted(row["customer_id"] for row in csv_rows(await export(api, name, **query)))


def rfc3339_seconds(text: str) -> float:
    assert RFC3339.match(text), f"not an RFC 3339 timestamp: {text!r}"
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def typed_row(row: dict[str, str]) -> dict[str, Any]:
    """A CSV row with counts as ints, timestamps as unix seconds, empty cells as None."""
    typed: dict[str, Any] = {}
    for name in COLUMNS:
        value = row[name]
        if value == "":
            typed[name] = None
        elif name in TIMESTAMP_COLUMNS:
            typed[name] = rfc3339_seconds(value)
        elif name in ("devices", "opens_window", "deliveries_window"):
            typed[name] = int(value)
        else:
            typed[name] = value
    return typed


async def row_of(api: Api, name: str, customer_id: str, **query: Any) -> dict[str, Any]:
    rows = [
        r for r in csv_rows(await export(api, name, **query)) if r["customer_id"] == customer_id
    ]
    assert len(rows) == 1, rows
    return typed_row(rows[0])


def error_paths(answer: Answer) -> list[str]:
    return [e["path"] for e in answer.body.get("errors", [])]


# --- catalogue -----------------------------------------------------------------------------


async def test_the_catalogue_lists_the_seven_segments_with_their_default_params(
    admin: Api,
) -> None:
    answer = check(await admin.get("/v1/segments"), 200)
    assert {s["name"]: s["params"] for s in answer.body} == CATALOGUE


async def test_every_catalogued_segment_has_a_description(admin: Api) -> None:
    answer = check(await admin.get("/v1/segments"), 200)
    assert all(isinstance(s["description"], str) and s["description"] for s in answer.body)


# --- membership: push_engaged ----------------------------------------------------------------

PUSH_ENGAGED = [
    "converted-after-as-of",
    "converted-after-open",
    "converted-before-open",
    "converted-by-alias",
    "engaged-edge-in",
    "identified-later",
    "merge-primary",
    "non-conversion-event",
]


async def test_push_engaged_is_an_open_within_7_days(admin: Api) -> None:
    assert await members(admin, "push_engaged") == PUSH_ENGAGED


async def test_push_engaged_with_days_30_includes_older_opens_but_not_one_exactly_30_days_old(
    admin: Api,
) -> None:
    expected = sorted([*PUSH_ENGAGED, "delivered-and-opened", "engaged-edge-out"])
    assert await members(admin, "push_engaged", days=30) == expected


async def test_push_engaged_with_days_8_includes_the_open_exactly_7_days_old(admin: Api) -> None:
    assert await members(admin, "push_engaged", days=8) == sorted(
        [*PUSH_ENGAGED, "engaged-edge-out"]
    )


async def test_as_of_accepts_rfc3339_like_unix_seconds(admin: Api) -> None:
    rfc3339 = datetime.fromtimestamp(AS_OF).astimezone().isoformat()
    assert await members(admin, "push_engaged", as_of=rfc3339) == PUSH_ENGAGED


async def test_as_of_defaults_to_now(admin: Api) -> None:
    status, _, body = await fetch(admin, export_path("push_engaged"))
    assert status == 200
    found = sorted(row["customer_id"] for row in csv_rows(body))
    # now is 1-2 h after AS_OF: the open at AS_OF+1 s counts, the one at AS_OF-7 d+1 s is out.
    assert found == sorted([*set(PUSH_ENGAGED) - {"engaged-edge-in"}, "after-as-of"])


async def test_another_apps_profiles_are_exported_only_for_that_app(admin: Api) -> None:
    assert await members(admin, "push_engaged", app="other") == ["other-app"]


# --- membership: opened_not_converted --------------------------------------------------------

OPENED_NOT_CONVERTED = [
    "converted-after-as-of",
    "converted-before-open",
    "engaged-edge-in",
    "identified-later",
    "merge-primary",
    "non-conversion-event",
]


async def test_opened_not_converted_excludes_conversions_after_the_latest_open(
    admin: Api,
) -> None:
    assert await members(admin, "opened_not_converted") == OPENED_NOT_CONVERTED


async def test_opened_not_converted_with_days_30(admin: Api) -> None:
    expected = sorted([*OPENED_NOT_CONVERTED, "delivered-and-opened", "engaged-edge-out"])
    assert await members(admin, "opened_not_converted", days=30) == expected


# --- membership: delivered_not_opened --------------------------------------------------------

DELIVERED_NOT_OPENED = [
    "delivered-3",
    "delivered-lapsed",
    "fatigued",
    "fatigued-edge",
    "refreshed",
]


async def test_delivered_not_opened_is_3_deliveries_and_no_open_within_30_days(
    admin: Api,
) -> None:
    assert await members(admin, "delivered_not_opened") == DELIVERED_NOT_OPENED


async def test_delivered_not_opened_with_min_deliveries_4(admin: Api) -> None:
    found = await members(admin, "delivered_not_opened", min_deliveries=4)
    assert found == ["fatigued", "fatigued-edge"]


async def test_delivered_not_opened_with_days_31_counts_the_delivery_exactly_30_days_old(
    admin: Api,
) -> None:
    expected = sorted([*DELIVERED_NOT_OPENED, "delivered-edge"])
    assert await members(admin, "delivered_not_opened", days=31) == expected


# --- membership: push_fatigued ---------------------------------------------------------------


async def test_push_fatigued_is_5_deliveries_within_7_days(admin: Api) -> None:
    assert await members(admin, "push_fatigued") == ["fatigued"]


async def test_push_fatigued_with_min_deliveries_4(admin: Api) -> None:
    found = await members(admin, "push_fatigued", min_deliveries=4)
    assert found == ["fatigued", "fatigued-edge"]


# --- membership: deep_link_failures ----------------------------------------------------------


async def test_deep_link_failures_is_a_failure_within_7_days(admin: Api) -> None:
    assert await members(admin, "deep_link_failures") == ["link-failed"]


async def test_deep_link_failures_with_days_8(admin: Api) -> None:
    found = await members(admin, "deep_link_failures", days=8)
    assert found == ["link-failed", "link-failed-edge"]


# --- membership: lapsed_push_engaged ---------------------------------------------------------

LAPSED = ["delivered-lapsed", "lapsed-edge-in", "lapsed-recent-edge"]


async def test_lapsed_push_engaged_is_an_open_within_90_days_but_none_within_30(
    admin: Api,
) -> None:
    assert await members(admin, "lapsed_push_engaged") == LAPSED


async def test_lapsed_push_engaged_with_lapsed_days_120(admin: Api) -> None:
    found = await members(admin, "lapsed_push_engaged", lapsed_days=120)
    assert found == sorted([*LAPSED, "lapsed-edge-out"])


async def test_lapsed_push_engaged_with_days_7(admin: Api) -> None:
    found = await members(admin, "lapsed_push_engaged", days=7)
    assert found == sorted([*LAPSED, "delivered-and-opened", "engaged-edge-out"])


# --- membership: unreachable -----------------------------------------------------------------


async def test_unreachable_is_every_profile_without_an_active_push_enabled_device(
    admin: Api,
) -> None:
    found = await members(admin, "unreachable")
    assert found == ["no-device", "push-disabled", "switched-away", "unregistered"]


# --- columns -------------------------------------------------------------------------------


async def test_a_row_carries_the_profiles_statistics(admin: Api) -> None:
    assert await row_of(admin, "opened_not_converted", "converted-before-open") == {
        "customer_id": "converted-before-open",
        "email": "before@example.com",
        "devices": 1,
        "last_delivered_at": None,
        "last_opened_at": ago(1),
        "opens_window": 1,
        "deliveries_window": 0,
        "last_converted_at": ago(2),
    }


async def test_columns_ignore_data_after_as_of(admin: Api) -> None:
    row = await row_of(admin, "push_engaged", "converted-after-as-of")
    assert (row["last_opened_at"], row["last_converted_at"]) == (ago(1), None)


async def test_last_opened_at_is_the_latest_open_even_outside_the_window(admin: Api) -> None:
    row = await row_of(admin, "lapsed_push_engaged", "delivered-lapsed")
    assert (row["last_opened_at"], row["opens_window"]) == (ago(40), 0)


async def test_a_merged_primary_counts_the_secondarys_devices_and_opens(admin: Api) -> None:
    row = await row_of(admin, "push_engaged", "merge-primary")
    assert (row["devices"], row["opens_window"], row["last_opened_at"]) == (2, 1, ago(1))


async def test_devices_counts_only_active_devices(admin: Api) -> None:
    unregistered = await row_of(admin, "unreachable", "unregistered")
    switched_away = await row_of(admin, "unreachable", "switched-away")
    assert (unregistered["devices"], switched_away["devices"]) == (0, 0)


async def test_devices_counts_an_active_device_with_push_disabled(admin: Api) -> None:
    assert (await row_of(admin, "unreachable", "push-disabled"))["devices"] == 1


async def test_window_columns_use_days(admin: Api) -> None:
    row = await row_of(admin, "delivered_not_opened", "fatigued-edge")
    assert row["deliveries_window"] == 5


async def test_window_columns_of_push_fatigued_use_7_days(admin: Api) -> None:
    row = await row_of(admin, "push_fatigued", "fatigued-edge", min_deliveries=4)
    assert (row["deliveries_window"], row["last_delivered_at"]) == (4, ago(0, -1))


async def test_window_columns_of_unreachable_use_30_days(admin: Api) -> None:
    row = await row_of(admin, "unreachable", "push-disabled")
    assert row["deliveries_window"] == 2  # ago(20) and ago(1); 7 days would count 1


async def test_window_columns_follow_a_non_default_days(admin: Api) -> None:
    row = await row_of(admin, "delivered_not_opened", "fatigued-edge", days=3)
    assert row["deliveries_window"] == 3  # ago(2), ago(1), ago(0, -1); ago(3) is exactly 3 days


async def test_timestamps_are_rfc3339(admin: Api) -> None:
    rows = csv_rows(await export(admin, "push_engaged", days=30))
    stamps = [row[name] for row in rows for name in TIMESTAMP_COLUMNS if row[name]]
    assert stamps
    for stamp in stamps:
        assert RFC3339.match(stamp), stamp


# --- CSV and JSONL encodings ---------------------------------------------------------------


async def test_csv_starts_with_the_header_row(admin: Api) -> None:
    header = csv_table(await export(admin, "push_engaged"))[0]
    assert header[: len(COLUMNS)] == COLUMNS


async def test_csv_has_one_row_per_member_after_the_header(admin: Api) -> None:
    table = csv_table(await export(admin, "push_engaged"))
    assert len(table) == 1 + len(PUSH_ENGAGED)


async def test_csv_is_the_default_format(admin: Api) -> None:
    status, headers, _ = await fetch(admin, export_path("push_engaged", as_of=AS_OF))
    assert status == 200
    assert headers["Content-Type"].split(";")[0] == "text/csv"


async def test_csv_is_utf8_without_bom(admin: Api) -> None:
    body = await export(admin, "push_engaged")
    assert not body.startswith(b"\xef\xbb\xbf")
    body.decode("utf-8")


async def test_an_empty_segment_is_just_the_header_row(relay: RelayServer) -> None:
    admin = await relay.admin_api()
    assert csv_table(await export(admin, "deep_link_failures"))[0][: len(COLUMNS)] == COLUMNS
    assert len(csv_table(await export(admin, "deep_link_failures"))) == 1


async def test_export_is_streamed(admin: Api) -> None:
    status, headers, _ = await fetch(admin, export_path("push_engaged", as_of=AS_OF))
    assert status == 200
    assert "Content-Length" not in headers
    assert headers.get("Transfer-Encoding") == "chunked"


async def test_exports_abandoned_midway_leave_the_next_one_whole(relay: RelayServer) -> None:
    # More rows than one chunk, and more abandoned exports than the engine has readers: a
    # reader (and its half-read query) not given back would hang or truncate the last export.
    app, admin = await relay.app_api(), await relay.admin_api()
    customers = [f"c-many-{i:04d}" for i in range(2_500)]
    for start in range(0, len(customers), 1_000):
        events = [
            {"id": f"e-{c}", "name": "Signed Up", "customer_id": c}
            for c in customers[start : start + 1_000]
        ]
        check(await app.post("/v1/events", {"events": events}), 200)
    headers = {"Authorization": f"Bearer {admin.key}"}
    url = admin.base_url + export_path("unreachable", as_of=int(time.time()) + 1)
    for _ in range(12):
        async with admin.session.get(url, headers=headers) as response:
            assert response.status == 200
            await response.content.readexactly(1_000)
            response.close()  # the client goes away with the rest unread
    body = await export(admin, "unreachable", as_of=int(time.time()) + 1)
    assert [row["customer_id"] for row in csv_rows(body)] == customers


async def test_jsonl_lines_parse_and_match_the_csv(admin: Api) -> None:
    from_csv = [typed_row(r) for r in csv_rows(await export(admin, "push_engaged", days=30))]
    lines = jsonl_rows(await export(admin, "push_engaged", days=30, format="jsonl"))
    from_jsonl = [
        {
            name: rfc3339_seconds(line[name])
            if name in TIMESTAMP_COLUMNS and line[name] is not None
            else line[name]
            for name in COLUMNS
        }
        for line in lines
    ]
    assert from_jsonl == from_csv


QUOTED_ID = 'odd, "quoted"\nid é'
QUOTED_EMAIL = '"a,b"@example.com'


async def test_csv_quotes_commas_quotes_and_newlines_in_ids_and_emails(relay: RelayServer) -> None:
    app, admin = await relay.app_api(), await relay.admin_api()
    await identify(app, QUOTED_ID, email=QUOTED_EMAIL)
    (row,) = csv_rows(await export(admin, "unreachable"))
    assert (row["customer_id"], row["email"]) == (QUOTED_ID, QUOTED_EMAIL)


async def test_jsonl_carries_ids_with_newlines_intact(relay: RelayServer) -> None:
    app, admin = await relay.app_api(), await relay.admin_api()
    await identify(app, QUOTED_ID, email=QUOTED_EMAIL)
    (line,) = jsonl_rows(await export(admin, "unreachable", format="jsonl"))
    assert (line["customer_id"], line["email"]) == (QUOTED_ID, QUOTED_EMAIL)


# --- bad input -----------------------------------------------------------------------------


async def test_an_unknown_segment_export_is_404_listing_the_known_ones(admin: Api) -> None:
    answer = await admin.get("/v1/segments/nope/export")
    assert answer.status == 404
    assert answer.content_type == "application/problem+json"
    assert all(name in answer.body["detail"] for name in CATALOGUE), answer.body


async def test_an_unknown_segment_sync_is_404_listing_the_known_ones(
    forwarding_relay: RelayServer,
) -> None:
    answer = await (await forwarding_relay.admin_api()).post("/v1/segments/nope/sync")
    assert answer.status == 404
    assert all(name in answer.body["detail"] for name in CATALOGUE), answer.body


@pytest.mark.parametrize(
    ("segment", "query", "named"),
    [
        ("push_engaged", "bogus=1", "bogus"),
        ("push_fatigued", "days=7", "days"),
        ("unreachable", "days=30", "days"),
        ("push_engaged", "days=abc", "days"),
        ("push_engaged", "days=1.5", "days"),
        ("push_engaged", "days=-1", "days"),
        ("delivered_not_opened", "min_deliveries=x", "min_deliveries"),
        ("push_engaged", "format=xml", "format"),
        ("push_engaged", "as_of=yesterday", "as_of"),
    ],
    ids=[
        "unknown-param",
        "param-of-another-segment",
        "param-on-paramless-segment",
        "days-not-a-number",
        "days-fractional",
        "days-negative",
        "min-deliveries-not-a-number",
        "format-xml",
        "as-of-garbage",
    ],
)
async def test_a_bad_export_query_is_422_naming_it(
    admin: Api, segment: str, query: str, named: str
) -> None:
    answer = await admin.get(f"/v1/segments/{segment}/export?{query}")
    assert answer.status == 422, answer.text
    assert answer.content_type == "application/problem+json"
    assert any(named in path for path in error_paths(answer)), answer.body


async def test_a_bad_sync_query_is_422_naming_it(forwarding_relay: RelayServer) -> None:
    admin = await forwarding_relay.admin_api()
    answer = await admin.post("/v1/segments/push_engaged/sync?bogus=1")
    assert answer.status == 422
    assert "bogus" in error_paths(answer)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/segments"),
        ("GET", "/v1/segments/push_engaged/export"),
        ("POST", "/v1/segments/push_engaged/sync"),
    ],
)
async def test_an_app_key_is_403(app_api: Api, method: str, path: str) -> None:
    assert (await app_api.request(method, path)).status == 403


# --- sync ----------------------------------------------------------------------------------


async def sync(admin: Api, name: str, **query: Any) -> dict[str, int]:
    query.setdefault("as_of", AS_OF)
    answer = check(await admin.post(f"/v1/segments/{name}/sync?{urlencode(query)}"), 200)
    return dict(answer.body)


def flags(fake: FakeCustomerIO, attribute: str) -> list[tuple[str, bool]]:
    """(customer id, value) of every identify that set ``attribute``, in arrival order."""
    return [
        (op["identifiers"]["id"], op["attributes"][attribute])
        for op in ops_of(fake, "identify")
        if attribute in op.get("attributes", {})
    ]


async def engaged_pair(relay: RelayServer) -> None:
    """c1 and c2 are push_engaged as of AS_OF; c3 is a profile that is not."""
    app = await relay.app_api()
    for customer_id in ("c1", "c2", "c3"):
        await register(app, f"tok-{customer_id}", customer_id=customer_id)
    await report(app, "tok-c1", "opened", ago(1))
    await report(app, "tok-c2", "tapped", ago(2))


async def test_a_first_sync_adds_every_member(forwarding_relay: RelayServer) -> None:
    await engaged_pair(forwarding_relay)
    admin = await forwarding_relay.admin_api()
    assert await sync(admin, "push_engaged") == {"added": 2, "removed": 0}


async def test_a_first_sync_sets_relay_segment_true_on_each_member(
    forwarding_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    await engaged_pair(forwarding_relay)
    await sync(await forwarding_relay.admin_api(), "push_engaged")
    await drained(forwarding_relay)
    assert sorted(flags(customerio, "relay_push_engaged")) == [("c1", True), ("c2", True)]


async def test_a_sync_sends_only_the_membership_attribute(
    forwarding_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    await engaged_pair(forwarding_relay)
    await sync(await forwarding_relay.admin_api(), "push_engaged")
    await drained(forwarding_relay)
    sent = [
        op["attributes"]
        for op in ops_of(customerio, "identify")
        if "relay_push_engaged" in op.get("attributes", {})
    ]
    assert sent == [{"relay_push_engaged": True}] * 2


async def unreachable_pair(relay: RelayServer) -> Api:
    """c1 and c2: profiles without devices (unreachable). Returns the app client."""
    app = await relay.app_api()
    await identify(app, "c1")
    await identify(app, "c2")
    return app


async def test_a_second_sync_removes_who_left(forwarding_relay: RelayServer) -> None:
    app = await unreachable_pair(forwarding_relay)
    admin = await forwarding_relay.admin_api()
    await sync(admin, "unreachable")
    await register(app, "tok-c2", customer_id="c2")
    assert await sync(admin, "unreachable") == {"added": 0, "removed": 1}


async def test_a_second_sync_clears_relay_segment_of_who_left(
    forwarding_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    app = await unreachable_pair(forwarding_relay)
    admin = await forwarding_relay.admin_api()
    await sync(admin, "unreachable")
    await drained(forwarding_relay)
    customerio.reset()
    await register(app, "tok-c2", customer_id="c2")
    await sync(admin, "unreachable")
    await drained(forwarding_relay)
    assert flags(customerio, "relay_unreachable") == [("c2", False)]


async def test_a_sync_without_changes_sends_nothing(
    forwarding_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    await unreachable_pair(forwarding_relay)
    admin = await forwarding_relay.admin_api()
    await sync(admin, "unreachable")
    await drained(forwarding_relay)
    customerio.reset()
    assert await sync(admin, "unreachable") == {"added": 0, "removed": 0}
    await drained(forwarding_relay)
    assert customerio.operations() == []


async def test_a_sync_without_customerio_credentials_is_422(relay: RelayServer) -> None:
    answer = await (await relay.admin_api()).post("/v1/segments/push_engaged/sync")
    assert answer.status == 422
    assert answer.content_type == "application/problem+json"


@pytest.fixture
async def manual_relay(tmp_path: Path, customerio: FakeCustomerIO) -> AsyncIterator[RelayServer]:
    """Forwarding to the fake, with push_engaged → manual segment 42, unreachable → 43."""
    settings = make_settings(
        tmp_path,
        apps=two_apps(),
        customerio=CustomerioSettings(site_id=SITE_ID, api_key=API_KEY, track_url=customerio.url),
        forwarding=ForwardingSettings(
            retry_initial_seconds=0.05, retry_max_seconds=0.2, max_requests_per_second=1000.0
        ),
        segments=SegmentsSettings(customerio_ids={"push_engaged": "42", "unreachable": "43"}),
    )
    server = RelayServer(settings)
    await server.start()
    yield server
    await server.close()


def segment_calls(fake: FakeCustomerIO) -> list[tuple[str, list[str]]]:
    return [
        (call["v1"], call["body"]["ids"])
        for call in v1_calls(fake)
        if call["v1"].startswith("POST /api/v1/segments/")
    ]


async def test_a_manual_segment_sync_adds_members_by_id(
    manual_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    await engaged_pair(manual_relay)
    assert await sync(await manual_relay.admin_api(), "push_engaged") == {
        "added": 2,
        "removed": 0,
    }
    await drained(manual_relay)
    assert segment_calls(customerio) == [("POST /api/v1/segments/42/add_customers", ["c1", "c2"])]


async def test_a_manual_segment_sync_sets_no_attribute(
    manual_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    await engaged_pair(manual_relay)
    await sync(await manual_relay.admin_api(), "push_engaged")
    await drained(manual_relay)
    assert flags(customerio, "relay_push_engaged") == []


async def test_a_manual_segment_sync_removes_who_left(
    manual_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    app = await unreachable_pair(manual_relay)
    admin = await manual_relay.admin_api()
    await sync(admin, "unreachable")
    await drained(manual_relay)
    customerio.reset()
    await register(app, "tok-c2", customer_id="c2")
    assert await sync(admin, "unreachable") == {"added": 0, "removed": 1}
    await drained(manual_relay)
    assert segment_calls(customerio) == [("POST /api/v1/segments/43/remove_customers", ["c2"])]


async def test_a_manual_segment_sync_sends_ids_in_chunks_customerio_accepts(
    manual_relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    app = await manual_relay.app_api()
    everyone = [f"p{i:04d}" for i in range(1001)]
    for chunk in (everyone[:1000], everyone[1000:]):
        events = [{"id": f"e-{c}", "name": "Signed Up", "customer_id": c} for c in chunk]
        check(await app.post("/v1/events", {"events": events}), 200)
    admin = await manual_relay.admin_api()
    assert await sync(admin, "unreachable") == {"added": 1001, "removed": 0}
    await drained(manual_relay)
    calls = segment_calls(customerio)
    assert {path for path, _ in calls} == {"POST /api/v1/segments/43/add_customers"}
    assert all(1 <= len(ids) <= 1000 for _, ids in calls)  # Customer.io's documented limit
    assert sorted(i for _, ids in calls for i in ids) == everyone
