"""Keys, roles and apps (API.md "Conventions": auth, apps; "Operations": no-auth routes).

Driven through the HTTP API of a real relay with two apps, ``default`` and ``other``. Keys are
created and revoked through the store, as the CLI does; one test reads the SQLite file
(read-only) to show that secrets are stored only as hashes.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests import engines
from tests.support import Answer, Api, RelayServer

PROBLEM = "application/problem+json"

APP_ROUTES = [
    ("PUT", "/v1/devices/tok-auth", {"platform": "ios"}),
    ("POST", "/v1/devices/tok-auth/refresh", {"new_token": "tok-auth-2"}),
    ("DELETE", "/v1/devices/tok-auth", None),
    ("POST", "/v1/identify", {"customer_id": "cust-auth"}),
    ("POST", "/v1/metrics", {"metrics": [{"id": "m", "metric": "opened", "token": "t"}]}),
    ("POST", "/v1/events", {"events": [{"id": "e", "name": "n", "customer_id": "c"}]}),
]
ADMIN_ROUTES = [
    ("GET", "/v1/devices/tok-auth", None),
    ("GET", "/v1/profiles/cust-auth", None),
    ("POST", "/v1/profiles/merge", {"primary": "cust-a", "secondary": "cust-b"}),
]
ALL_ROUTES = APP_ROUTES + ADMIN_ROUTES


def route_id(route: tuple[str, str, Any]) -> str:
    return f"{route[0]} {route[1]}"


# --- helpers -------------------------------------------------------------------------------


def assert_problem(answer: Answer, status: int) -> None:
    assert answer.status == status, answer.text
    assert answer.content_type == PROBLEM, answer.headers.get("Content-Type")
    assert {"type", "title", "status", "detail", "errors"} <= set(answer.body), answer.body
    assert answer.body["status"] == status
    assert "Traceback" not in answer.text


async def call(api: Api, route: tuple[str, str, Any], query: str = "") -> Answer:
    method, path, body = route
    return await api.request(method, path + query, json=body)


async def register(api: Api, token: str, **fields: Any) -> Answer:
    answer = await api.put(f"/v1/devices/{token}", {"platform": "ios", **fields})
    assert answer.status in (200, 201), answer.text
    return answer


async def key_id_of(relay: RelayServer, role: str, app_id: str) -> str:
    (record,) = [k for k in await relay.store.list_keys() if (k.role, k.app_id) == (role, app_id)]
    return record.id


# --- 401 -----------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ALL_ROUTES, ids=route_id)
async def test_a_request_without_a_key_is_401(
    relay: RelayServer, route: tuple[str, str, Any]
) -> None:
    assert_problem(await call(relay.api(None), route), 401)


@pytest.mark.parametrize(
    "authorization",
    ["Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token {key}", "{key}"],
    ids=["bearer-no-key", "bearer-blank", "basic", "other-scheme", "bare-key"],
)
async def test_an_authorization_that_is_not_a_bearer_key_is_401(
    relay: RelayServer, authorization: str
) -> None:
    key = await relay.key("app")
    answer = await relay.api(None).put(
        "/v1/devices/tok-scheme",
        {"platform": "ios"},
        headers={"Authorization": authorization.format(key=key)},
    )
    assert_problem(answer, 401)


@pytest.mark.parametrize("route", ALL_ROUTES, ids=route_id)
async def test_an_unknown_key_is_401(relay: RelayServer, route: tuple[str, str, Any]) -> None:
    assert_problem(await call(relay.api("rly_this-key-was-never-issued"), route), 401)


async def test_the_bearer_scheme_is_case_insensitive(relay: RelayServer) -> None:
    key = await relay.key("app")
    answer = await relay.api(None).put(
        "/v1/devices/tok-case", {"platform": "ios"}, headers={"Authorization": f"bearer {key}"}
    )
    assert answer.status == 201, answer.text


async def test_a_revoked_key_is_401(relay: RelayServer) -> None:
    app = await relay.app_api()
    await register(app, "tok-revoke")
    await relay.store.revoke_key(await key_id_of(relay, "app", "default"))
    assert_problem(await app.put("/v1/devices/tok-revoke", {"platform": "ios"}), 401)
    assert_problem(await app.post("/v1/identify", {"customer_id": "cust-revoked"}), 401)


async def test_a_revoked_admin_key_is_401(relay: RelayServer) -> None:
    admin = await relay.admin_api()
    await register(admin, "tok-revoke-admin")
    await relay.store.revoke_key(await key_id_of(relay, "admin", "default"))
    assert_problem(await admin.get("/v1/devices/tok-revoke-admin"), 401)


async def test_revoking_a_key_leaves_the_other_keys_working(relay: RelayServer) -> None:
    app, admin = await relay.app_api(), await relay.admin_api()
    other = await relay.app_api("other")
    await relay.store.revoke_key(await key_id_of(relay, "app", "default"))
    assert (await admin.put("/v1/devices/tok-still", {"platform": "ios"})).status == 201
    assert (await other.put("/v1/devices/tok-still", {"platform": "ios"})).status == 201
    assert_problem(await app.put("/v1/devices/tok-still", {"platform": "ios"}), 401)


async def test_a_revoked_key_changes_nothing(relay: RelayServer) -> None:
    app, admin = await relay.app_api(), await relay.admin_api()
    await register(app, "tok-frozen")
    await relay.store.revoke_key(await key_id_of(relay, "app", "default"))
    await app.delete("/v1/devices/tok-frozen")
    await app.post(
        "/v1/metrics", {"metrics": [{"id": "m1", "metric": "opened", "token": "tok-frozen"}]}
    )
    shown = await admin.get("/v1/devices/tok-frozen")
    assert shown.body["status"] == "active"
    assert shown.body["counts"]["opened"] == 0


# --- 403: roles ----------------------------------------------------------------------------


@pytest.mark.parametrize("route", ADMIN_ROUTES, ids=route_id)
async def test_an_app_key_on_an_admin_route_is_403(
    app_api: Api, route: tuple[str, str, Any]
) -> None:
    await register(app_api, "tok-auth", customer_id="cust-auth")
    assert_problem(await call(app_api, route), 403)


async def test_an_app_key_cannot_read_a_device_it_registered(app_api: Api) -> None:
    await register(app_api, "tok-mine")
    assert_problem(await app_api.get("/v1/devices/tok-mine"), 403)


@pytest.mark.parametrize("app_id", ["default", "other", "nowhere"])
@pytest.mark.parametrize("route", APP_ROUTES, ids=route_id)
async def test_an_app_key_naming_an_app_is_403(
    app_api: Api, route: tuple[str, str, Any], app_id: str
) -> None:
    assert_problem(await call(app_api, route, f"?app={app_id}"), 403)


async def test_an_app_key_gets_back_only_the_token_and_its_status(app_api: Api) -> None:
    answer = await app_api.put(
        "/v1/devices/tok-ack", {"platform": "ios", "customer_id": "cust-ack", "locale": "fr"}
    )
    assert answer.status == 201, answer.text
    assert answer.body == {"token": "tok-ack", "status": "active"}


async def test_an_admin_key_may_use_the_app_routes(admin_api: Api) -> None:
    answer = await admin_api.put("/v1/devices/tok-by-admin", {"platform": "android"})
    assert answer.status == 201, answer.text
    assert answer.body["token"] == "tok-by-admin"
    assert answer.body["app_id"] == "default"
    assert answer.body["platform"] == "android"
    metrics = {"metrics": [{"id": "m-admin", "metric": "delivered", "token": "tok-by-admin"}]}
    assert (await admin_api.post("/v1/metrics", metrics)).body["accepted"] == 1


# --- apps ----------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ALL_ROUTES, ids=route_id)
async def test_an_admin_key_naming_an_unknown_app_is_404(
    admin_api: Api, route: tuple[str, str, Any]
) -> None:
    assert_problem(await call(admin_api, route, "?app=nowhere"), 404)


async def test_an_admin_key_may_act_in_another_app(relay: RelayServer) -> None:
    admin = await relay.admin_api("default")
    await register(await relay.app_api("other"), "tok-elsewhere")
    shown = await admin.get("/v1/devices/tok-elsewhere?app=other")
    assert shown.status == 200, shown.text
    assert shown.body["app_id"] == "other"
    assert_problem(await admin.get("/v1/devices/tok-elsewhere"), 404)


async def test_an_admin_key_writes_into_the_app_it_names(relay: RelayServer) -> None:
    admin = await relay.admin_api("default")
    answer = await admin.put("/v1/devices/tok-placed?app=other", {"platform": "ios"})
    assert answer.status == 201, answer.text
    assert answer.body["app_id"] == "other"
    assert (await (await relay.admin_api("other")).get("/v1/devices/tok-placed")).status == 200
    assert_problem(await admin.get("/v1/devices/tok-placed"), 404)


async def test_another_apps_admin_key_cannot_see_this_apps_device(relay: RelayServer) -> None:
    await register(await relay.app_api("default"), "tok-private")
    other_admin = await relay.admin_api("other")
    assert_problem(await other_admin.get("/v1/devices/tok-private"), 404)


async def test_another_apps_key_cannot_unregister_this_apps_device(relay: RelayServer) -> None:
    await register(await relay.app_api("default"), "tok-keep")
    other = await relay.app_api("other")
    assert_problem(await other.delete("/v1/devices/tok-keep"), 404)
    shown = await (await relay.admin_api("default")).get("/v1/devices/tok-keep")
    assert shown.body["status"] == "active"


async def test_another_apps_key_cannot_refresh_this_apps_device(relay: RelayServer) -> None:
    await register(await relay.app_api("default"), "tok-stay")
    other = await relay.app_api("other")
    answer = await other.post("/v1/devices/tok-stay/refresh", {"new_token": "tok-stolen"})
    assert_problem(answer, 404)
    admin = await relay.admin_api("default")
    shown = await admin.get("/v1/devices/tok-stay")
    assert shown.body["status"] == "active"
    assert shown.body["replaced_by"] is None
    assert_problem(await admin.get("/v1/devices/tok-stolen"), 404)


async def test_the_same_token_in_another_app_is_another_device(relay: RelayServer) -> None:
    await register(await relay.app_api("default"), "tok-twice", customer_id="cust-d")
    answer = await (await relay.app_api("other")).put(
        "/v1/devices/tok-twice", {"platform": "android"}
    )
    assert answer.status == 201, answer.text
    shown = await (await relay.admin_api("default")).get("/v1/devices/tok-twice")
    assert shown.body["platform"] == "ios"
    assert shown.body["customer_id"] == "cust-d"


async def test_another_apps_metrics_do_not_count_for_this_apps_device(relay: RelayServer) -> None:
    await register(await relay.app_api("default"), "tok-count")
    other = await relay.app_api("other")
    batch = {"metrics": [{"id": "m-other", "metric": "opened", "token": "tok-count"}]}
    assert (await other.post("/v1/metrics", batch)).body["accepted"] == 1
    shown = await (await relay.admin_api("default")).get("/v1/devices/tok-count")
    assert shown.body["counts"]["opened"] == 0
    assert shown.body["recent_metrics"] == []


async def test_another_apps_profiles_are_not_there(relay: RelayServer) -> None:
    answer = await (await relay.app_api("default")).post("/v1/identify", {"customer_id": "cust-x"})
    assert answer.status == 200, answer.text
    assert (await (await relay.admin_api("default")).get("/v1/profiles/cust-x")).status == 200
    assert_problem(await (await relay.admin_api("other")).get("/v1/profiles/cust-x"), 404)


# --- keys at rest --------------------------------------------------------------------------


async def test_keys_are_stored_only_as_hashes(relay: RelayServer) -> None:
    secrets = [await relay.key("app"), await relay.key("admin"), await relay.key("app", "other")]
    records = await relay.store.list_keys()
    assert len(records) == 3
    for secret in secrets:
        assert all(secret not in repr(record) for record in records)
    rows = engines.query(relay.settings.storage.url, "SELECT * FROM api_keys")
    assert len(rows) == 3
    dump = repr(rows)
    for secret in secrets:
        assert secret not in dump
        assert secret.removeprefix("rly_") not in dump
    # and the keys still work: relay checks the presented key against the hash
    for secret in secrets[:2]:
        assert (await relay.api(secret).put("/v1/devices/tok-h", {"platform": "ios"})).status in (
            200,
            201,
        )


# --- no key needed -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/openapi.json"])
async def test_operations_routes_need_no_key(relay: RelayServer, path: str) -> None:
    answer = await relay.api(None).get(path)
    assert answer.status == 200, answer.text
    assert answer.text
