"""Person-level writes on every surface (API.md "Auth", "Customer.io-compatible surfaces"): an
app key ships inside apps, so it is public. It can never merge, delete or suppress a person;
a server key (a back end's secret) can, and so can an admin key. Refused writes leave no trace
in relay's data and never reach Customer.io; allowed ones have their local effects and are
forwarded (checked at a fake Customer.io that validates every request against the specs)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from relay.compat import pipelines, track
from relay_fakes.fake_customerio import FakeCustomerIO
from tests.compat_support import (
    CLIENT_KEY,
    IOS_TOKEN,
    SERVER_KEY,
    basic,
    device,
    device_created,
    forwarding_sections,
    identify_call,
    message_id,
    mobile_batch,
    parsed,
    person_ops,
    profile,
    register_client_key,
    register_server_key,
    sdk_event,
    send,
)
from tests.support import RelayServer, make_settings, two_apps
from tests.test_forwarding import drained

VICTIM = "victim"
OTHER = "other-person"


@pytest.fixture
async def relay(tmp_path: Path, customerio: FakeCustomerIO) -> AsyncIterator[RelayServer]:
    """relay forwarding to the fake's Track API, with the app's shipped key (app role) and a
    back end's key (server role); ``victim`` and ``other-person`` exist, victim on a device."""
    server = RelayServer(
        make_settings(tmp_path, apps=two_apps(), **forwarding_sections(customerio, cdp=False))
    )
    await server.start()
    await register_client_key(server)
    await register_server_key(server)
    batch = mobile_batch(
        device_created(anonymous_id="a1", user_id=VICTIM),
        identify_call(OTHER, anonymous_id="a2"),
    )
    assert (await send(server, "POST", "/cdp/v1/b", batch)).status == 200
    yield server
    await server.close()


def user_event(event: str, user_id: str = VICTIM) -> dict[str, Any]:
    return sdk_event("track", anonymous_id="a1", user_id=user_id, event=event, properties={})


def v2_op(action: str) -> dict[str, Any]:
    if action == "merge":
        return {
            "type": "person",
            "action": "merge",
            "primary": {"id": OTHER},
            "secondary": {"id": VICTIM},
        }
    return {"type": "person", "identifiers": {"id": VICTIM}, "action": action}


MERGE_V1 = {"primary": {"id": OTHER}, "secondary": {"id": VICTIM}}
PERSON_EVENTS = ("User Deleted", "User Suppressed", "User Unsuppressed")

# Every compat route, with a request an app key sends, and what relay answers it.
# (method, path, body, status): 403 = refused for an app key; 200 = allowed.
APP_KEY_WALK: list[tuple[str, str, Any, int]] = [
    ("PUT", "/api/v1/customers/c9", {"email": "c9@example.com"}, 200),
    ("DELETE", f"/api/v1/customers/{VICTIM}", None, 403),
    ("POST", f"/api/v1/customers/{VICTIM}/suppress", None, 403),
    ("POST", f"/api/v1/customers/{VICTIM}/unsuppress", None, 403),
    ("PUT", "/api/v1/customers/c9/devices", {"device": {"id": "tok-c9", "platform": "ios"}}, 200),
    ("DELETE", "/api/v1/customers/c9/devices/tok-c9", None, 200),
    ("POST", "/api/v1/customers/c9/events", {"name": "Viewed"}, 200),
    ("POST", "/api/v1/events", {"name": "Viewed", "anonymous_id": "a9"}, 200),
    ("POST", "/api/v1/metrics", {"delivery_id": "d9", "metric": "opened", "recipient": "t9"}, 200),
    (
        "POST",
        "/api/v1/push/events",
        {"delivery_id": "d9", "event": "opened", "device_id": "t9"},
        200,
    ),
    ("POST", "/push/events", {"delivery_id": "d8", "event": "opened", "device_id": "t8"}, 200),
    ("POST", "/api/v1/merge_customers", MERGE_V1, 403),
    *(("POST", "/api/v2/entity", v2_op(action), 403) for action in track.PERSON_WRITES),
    (
        "POST",
        "/api/v2/entity",
        {"type": "person", "identifiers": {"id": "c9"}, "action": "identify"},
        200,
    ),
    ("POST", "/api/v2/batch", {"batch": [v2_op(a) for a in sorted(track.PERSON_WRITES)]}, 207),
    *(("POST", "/cdp/v1/track", user_event(event), 403) for event in PERSON_EVENTS),
    ("POST", "/cdp/v1/track", user_event("Viewed Product"), 200),
    ("POST", "/cdp/v1/identify", identify_call("c9", anonymous_id="a9"), 200),
    ("POST", "/cdp/v1/screen", sdk_event("screen", anonymous_id="a9", user_id="c9", name="H"), 200),
    ("POST", "/cdp/v1/page", sdk_event("page", anonymous_id="a9", name="Home"), 400),
    ("POST", "/cdp/v1/alias", {"type": "alias", "userId": "c9", "previousId": "a9"}, 400),
    ("POST", "/cdp/v1/group", {"type": "group", "userId": "c9", "groupId": "g9"}, 400),
    *(
        ("POST", path, {"batch": [user_event(e) for e in PERSON_EVENTS]}, 200)
        for path in ("/cdp/v1/b", "/cdp/v1/batch")
    ),
    ("GET", f"/cdp/v1/projects/{CLIENT_KEY}/settings", None, 200),
]


def auth_for(path: str, key: str) -> dict[str, str]:
    """Track clients send Basic SITE_ID:KEY; Pipelines clients Basic KEY:."""
    if path.startswith("/cdp/"):
        return {"Authorization": basic(key)}
    return {"Authorization": basic("any-site-id", key)}


def test_the_walk_covers_every_compat_route() -> None:
    served = {(r.method, r.path) for r in (*track.ROUTES, *pipelines.ROUTES)}
    walked = {(method, path) for method, path, _, _ in APP_KEY_WALK}
    unwalked = {
        (method, path)
        for method, path in served
        if not any(method == m and _matches(path, p) for m, p in walked)
    }
    assert unwalked == set()


def _matches(template: str, path: str) -> bool:
    parts, given = template.split("/"), path.split("/")
    return len(parts) == len(given) and all(
        t == g or t.startswith("{") for t, g in zip(parts, given, strict=True)
    )


async def test_an_app_key_is_refused_every_person_level_write_on_every_surface(
    relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    for method, path, body, status in APP_KEY_WALK:
        answer = await send(relay, method, path, body, headers=auth_for(path, CLIENT_KEY))
        assert answer.status == status, (method, path, answer.text)
        if status == 403:
            assert "server key" in answer.text, answer.text
        if status == 207:
            errors = parsed(answer)["errors"]
            assert [e["batch_index"] for e in errors] == list(range(len(track.PERSON_WRITES)))
            assert {e["reason"] for e in errors} == {"forbidden"}

    victim = await profile(relay, VICTIM)
    assert victim["suppressed"] is False
    assert [d["status"] for d in victim["devices"]] == ["active"]
    assert (await profile(relay, OTHER))["devices"] == []
    await drained(relay)
    harmful = {"delete", "merge", "suppress", "unsuppress"}
    assert [op for op in person_ops(customerio) if op["action"] in harmful] == []


async def test_refused_pipelines_batch_items_are_in_the_rejected_items_log(
    relay: RelayServer,
) -> None:
    batch = {"batch": [user_event(e) for e in PERSON_EVENTS]}
    await send(relay, "POST", "/cdp/v1/b", batch, headers=auth_for("/cdp/v1/b", CLIENT_KEY))
    admin = await relay.admin_api()
    logged = (await admin.get("/v1/rejected")).body
    assert [(e["path"], e["reason"]) for e in logged] == [
        ("batch[2].event", "forbidden"),
        ("batch[1].event", "forbidden"),
        ("batch[0].event", "forbidden"),
    ]
    assert logged[0]["item"]["event"] == "User Unsuppressed"
    assert logged[0]["surface"] == "pipelines"
    exposition = (await relay.api().get("/metrics")).text
    assert 'relay_rejected_items_total{reason="forbidden",surface="pipelines"} 3.0' in exposition


@pytest.mark.parametrize("surface", ["track_v1", "track_v2", "pipelines"])
async def test_a_server_key_deletes_a_person_on_every_surface(
    relay: RelayServer, customerio: FakeCustomerIO, surface: str
) -> None:
    if surface == "track_v1":
        path, body = f"/api/v1/customers/{VICTIM}", None
        answer = await send(relay, "DELETE", path, body, headers=auth_for(path, SERVER_KEY))
    elif surface == "track_v2":
        path, body = "/api/v2/batch", {"batch": [v2_op("delete")]}
        answer = await send(relay, "POST", path, body, headers=auth_for(path, SERVER_KEY))
    else:
        answer = await send(
            relay,
            "POST",
            "/cdp/v1/b",
            mobile_batch(user_event("User Deleted"), write_key=SERVER_KEY),
        )
    assert answer.status == 200, answer.text
    assert parsed(answer) == {}

    admin = await relay.admin_api()
    assert (await admin.get(f"/v1/profiles/{VICTIM}")).status == 404
    gone = await device(relay, IOS_TOKEN)
    assert (gone["status"], gone["customer_id"]) == ("unregistered", None)
    await drained(relay)
    assert [op["identifiers"] for op in person_ops(customerio, "delete")] == [{"id": VICTIM}]


async def test_a_deleted_persons_anonymous_id_is_released_and_their_device_stays_deleted(
    relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    path = f"/api/v1/customers/{VICTIM}"
    assert (await send(relay, "DELETE", path, headers=auth_for(path, SERVER_KEY))).status == 200
    again = mobile_batch(identify_call("newcomer", anonymous_id="a1"))
    assert (await send(relay, "POST", "/cdp/v1/b", again)).status == 200
    newcomer = await profile(relay, "newcomer")
    assert newcomer["anonymous_ids"] == ["a1"]
    assert newcomer["devices"] == []
    assert (await device(relay, IOS_TOKEN))["status"] == "unregistered"
    await drained(relay)
    assert [op["identifiers"]["id"] for op in person_ops(customerio, "add_device")] == [VICTIM]


async def test_a_suppressed_person_gets_no_test_push_and_leaves_segment_exports(
    relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    admin = await relay.admin_api()
    suppress = mobile_batch(user_event("User Suppressed"), write_key=SERVER_KEY)
    assert (await send(relay, "POST", "/cdp/v1/b", suppress)).status == 200
    assert (await profile(relay, VICTIM))["suppressed"] is True

    pushed = await admin.post(
        "/v1/test-pushes", {"customer_id": VICTIM, "title": "t", "body": "b", "dry_run": True}
    )
    assert pushed.status == 422
    assert "suppressed" in pushed.body["detail"]
    exported = await admin.get("/v1/segments/unreachable/export?format=jsonl")
    assert VICTIM not in exported.text and OTHER in exported.text

    unsuppress = mobile_batch(user_event("User Unsuppressed"), write_key=SERVER_KEY)
    assert (await send(relay, "POST", "/cdp/v1/b", unsuppress)).status == 200
    assert (await profile(relay, VICTIM))["suppressed"] is False
    await drained(relay)
    actions = [op["action"] for op in person_ops(customerio) if op["action"].endswith("suppress")]
    assert actions == ["suppress", "unsuppress"]


async def test_a_server_key_merges_through_track_v1(
    relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    path = "/api/v1/merge_customers"
    answer = await send(relay, "POST", path, MERGE_V1, headers=auth_for(path, SERVER_KEY))
    assert answer.status == 200, answer.text
    assert [d["token"] for d in (await profile(relay, OTHER))["devices"]] == [IOS_TOKEN]
    await drained(relay)
    merges = person_ops(customerio, "merge")
    assert [(m["primary"], m["secondary"]) for m in merges] == [({"id": OTHER}, {"id": VICTIM})]


async def test_a_merge_naming_a_person_relay_never_saw_is_still_forwarded(
    relay: RelayServer, customerio: FakeCustomerIO
) -> None:
    body = {"primary": {"id": OTHER}, "secondary": {"id": "only-at-customerio"}}
    path = "/api/v1/merge_customers"
    answer = await send(relay, "POST", path, body, headers=auth_for(path, SERVER_KEY))
    assert answer.status == 200, answer.text
    await drained(relay)
    assert [m["secondary"] for m in person_ops(customerio, "merge")] == [
        {"id": "only-at-customerio"}
    ]


# --- the native API ------------------------------------------------------------------------


async def test_native_person_writes_need_a_server_key(relay: RelayServer) -> None:
    app = await relay.app_api()
    for method, path, body in (
        ("POST", "/v1/profiles/merge", {"primary": OTHER, "secondary": VICTIM}),
        ("DELETE", f"/v1/profiles/{VICTIM}", None),
        ("POST", f"/v1/profiles/{VICTIM}/suppress", None),
        ("POST", f"/v1/profiles/{VICTIM}/unsuppress", None),
    ):
        answer = await app.request(method, path, json=body)
        assert answer.status == 403, (path, answer.text)
    assert (await profile(relay, VICTIM))["devices"][0]["status"] == "active"


async def test_a_native_merge_with_a_server_key_answers_only_the_customer_id(
    relay: RelayServer,
) -> None:
    server = relay.api(SERVER_KEY)
    answer = await server.post("/v1/profiles/merge", {"primary": OTHER, "secondary": VICTIM})
    assert answer.status == 200, answer.text
    assert answer.body == {"customer_id": OTHER}


async def test_a_server_key_reads_nothing(relay: RelayServer) -> None:
    server = relay.api(SERVER_KEY)
    assert (await server.get(f"/v1/profiles/{VICTIM}")).status == 403
    assert (await server.get(f"/v1/devices/{IOS_TOKEN}")).status == 403
    assert (await server.get("/v1/rejected")).status == 403
    assert (await server.post("/v1/identify?app=other", {"customer_id": "x"})).status == 403


async def test_native_delete_and_suppress_with_a_server_key(relay: RelayServer) -> None:
    server = relay.api(SERVER_KEY)
    suppressed = await server.post(f"/v1/profiles/{OTHER}/suppress", None)
    assert suppressed.body == {"customer_id": OTHER, "suppressed": True}
    assert (await profile(relay, OTHER))["suppressed"] is True
    assert (await server.request("DELETE", f"/v1/profiles/{VICTIM}")).status == 204
    assert (await server.request("DELETE", f"/v1/profiles/{VICTIM}")).status == 404


async def test_a_refused_item_of_a_replayed_batch_is_logged_once(relay: RelayServer) -> None:
    item = {**user_event("User Deleted"), "messageId": message_id()}
    for _ in range(2):
        answer = await send(relay, "POST", "/cdp/v1/b", mobile_batch(item))
        assert answer.status == 200
    admin = await relay.admin_api()
    assert len((await admin.get("/v1/rejected")).body) == 1
