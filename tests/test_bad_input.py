"""Bad input (API.md "Conventions": status codes, problem+json, sizes).

Every refusal is ``application/problem+json`` with ``type``, ``title``, ``status``, ``detail``
and ``errors`` naming the failing field; none is ever a 500 or shows a stack trace.
Driven only through the HTTP API of a real relay with two apps, ``default`` and ``other``.
"""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import pytest

from tests.support import Answer, Api, RelayServer

MIB = 1024 * 1024
PROBLEM = "application/problem+json"

_ids = itertools.count(1)


# --- helpers -------------------------------------------------------------------------------


def fresh(prefix: str = "id") -> str:
    return f"{prefix}-{next(_ids)}"


def metric(**fields: Any) -> dict[str, Any]:
    return {"id": fresh("m"), "metric": "delivered", "token": "tok-bad", **fields}


def event(**fields: Any) -> dict[str, Any]:
    return {"id": fresh("e"), "name": "Order Completed", "customer_id": "cust-bad", **fields}


ITEM = {"metrics": metric, "events": event}


def no_traceback(answer: Answer) -> None:
    assert answer.status < 500, answer.text
    assert "Traceback" not in answer.text
    assert 'File "' not in answer.text
    assert "<html" not in answer.text.lower()


def assert_problem(answer: Answer, status: int, *paths: str) -> None:
    """A problem document with ``status``, whose errors name every one of ``paths``."""
    no_traceback(answer)
    assert answer.status == status, answer.text
    assert answer.content_type == PROBLEM, answer.headers.get("Content-Type")
    body = answer.body
    assert isinstance(body, dict), answer.text
    assert {"type", "title", "status", "detail", "errors"} <= set(body), body
    assert body["status"] == status
    assert isinstance(body["type"], str) and body["type"]
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert isinstance(body["errors"], list)
    named = [error["path"] for error in body["errors"]]
    for error in body["errors"]:
        assert isinstance(error["message"], str) and error["message"]
    for path in paths:
        assert path in named, body


def assert_rejected(answer: Answer, path: str, index: int = 0) -> None:
    """A 200 batch answer whose item ``index`` was rejected, naming ``path`` (item-relative)."""
    no_traceback(answer)
    assert answer.status == 200, answer.text
    rejections = {r["index"]: r["errors"] for r in answer.body["rejected"]}
    assert index in rejections, answer.body
    named = [error["path"] for error in rejections[index]]
    assert any(p == path or p.startswith(path + ".") for p in named), answer.body


async def post_raw(api: Api, path: str, data: bytes | str, content_type: str | None) -> Answer:
    headers = {} if content_type is None else {"Content-Type": content_type}
    return await api.request("POST", path, data=data, headers=headers)


async def send(api: Api, method: str, path: str, body: Any, headers: dict[str, str]) -> Answer:
    """Send ``body`` (bytes, a file-like object or an async iterator) as it is."""
    sent = {"Authorization": f"Bearer {api.key}", **headers}
    async with api.session.request(
        method, api.base_url + path, data=body, headers=sent
    ) as response:
        text = await response.text()
        parsed = json.loads(text) if "json" in response.headers.get("Content-Type", "") else None
        return Answer(response.status, parsed, response.headers, text)


async def send_large(api: Api, method: str, path: str, body: bytes) -> Answer:
    """``body`` with its Content-Length, as a large client upload."""
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    return await send(api, method, path, io.BytesIO(body), headers)


# --- 400 / 415 -----------------------------------------------------------------------------

JSON_ROUTES = [
    ("POST", "/v1/metrics"),
    ("POST", "/v1/events"),
    ("PUT", "/v1/devices/tok-json"),
    ("POST", "/v1/identify"),
]


@pytest.mark.parametrize("method,path", JSON_ROUTES)
@pytest.mark.parametrize(
    "body", [b'{"metrics": [', b"not json", b"", b"\xff\xfe{}"], ids=["cut", "text", "empty", "bin"]
)
async def test_malformed_json_is_400(app_api: Api, method: str, path: str, body: bytes) -> None:
    answer = await app_api.request(
        method, path, data=body, headers={"Content-Type": "application/json"}
    )
    assert_problem(answer, 400)


@pytest.mark.parametrize("method,path", JSON_ROUTES)
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_a_body_that_is_not_application_json_is_415(
    app_api: Api, method: str, path: str, content_type: str | None
) -> None:
    body = json.dumps({"metrics": [metric()], "platform": "ios", "customer_id": "c"})
    headers = {} if content_type is None else {"Content-Type": content_type}
    answer = await app_api.request(method, path, data=body.encode(), headers=headers)
    assert_problem(answer, 415)


async def test_application_json_with_a_charset_is_accepted(app_api: Api) -> None:
    body = json.dumps({"metrics": [metric()]})
    answer = await post_raw(app_api, "/v1/metrics", body, "application/json; charset=utf-8")
    assert answer.status == 200, answer.text


# --- 413 -----------------------------------------------------------------------------------


def padded(envelope: str, items: list[dict[str, Any]], size: int) -> bytes:
    """A valid JSON body of exactly ``size`` bytes (trailing whitespace is valid JSON)."""
    raw = json.dumps({envelope: items}).encode()
    assert len(raw) <= size
    return raw + b" " * (size - len(raw))


@pytest.mark.parametrize("envelope", ["metrics", "events"])
async def test_a_body_over_one_mib_is_413(app_api: Api, envelope: str) -> None:
    body = padded(envelope, [ITEM[envelope]()], MIB + 1)
    answer = await send_large(app_api, "POST", f"/v1/{envelope}", body)
    assert_problem(answer, 413)


@pytest.mark.parametrize("envelope", ["metrics", "events"])
async def test_a_chunked_body_over_one_mib_is_413(app_api: Api, envelope: str) -> None:
    body = padded(envelope, [ITEM[envelope]()], 2 * MIB)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    answer = await send(
        app_api, "POST", f"/v1/{envelope}", chunks(), {"Content-Type": "application/json"}
    )
    assert_problem(answer, 413)


async def test_a_device_body_over_one_mib_is_413(app_api: Api) -> None:
    body = json.dumps({"platform": "ios"}).encode() + b" " * MIB
    answer = await send_large(app_api, "PUT", "/v1/devices/tok-big", body)
    assert_problem(answer, 413)


async def test_a_body_of_exactly_one_mib_is_accepted(app_api: Api) -> None:
    body = padded("metrics", [metric()], MIB)
    answer = await send_large(app_api, "POST", "/v1/metrics", body)
    assert answer.status == 200, answer.text
    assert answer.body["accepted"] == 1


# --- the batch envelope --------------------------------------------------------------------


def broken_envelopes(key: str) -> dict[str, Any]:
    one = ITEM[key]
    return {
        "missing": {},
        "null": {key: None},
        "object": {key: {"0": one()}},
        "string": {key: "items"},
        "empty": {key: []},
        "1001-items": {key: [one() for _ in range(1001)]},
        "1001-bad-items": {key: [{"nonsense": True} for _ in range(1001)]},
        "top-level-list": [one()],
        "top-level-string": "hello",
    }


@pytest.mark.parametrize("envelope", ["metrics", "events"])
@pytest.mark.parametrize("case", list(broken_envelopes("metrics")))
async def test_a_missing_or_malformed_envelope_is_422_naming_it(
    app_api: Api, envelope: str, case: str
) -> None:
    answer = await app_api.post(f"/v1/{envelope}", broken_envelopes(envelope)[case])
    assert_problem(answer, 422, envelope)


@pytest.mark.parametrize("envelope", ["metrics", "events"])
async def test_a_batch_of_exactly_1000_items_is_accepted(app_api: Api, envelope: str) -> None:
    answer = await app_api.post(
        f"/v1/{envelope}", {envelope: [ITEM[envelope]() for _ in range(1000)]}
    )
    assert answer.status == 200, answer.text
    assert answer.body == {"accepted": 1000, "duplicates": 0, "rejected": []}


@pytest.mark.parametrize("envelope", ["metrics", "events"])
async def test_an_unknown_envelope_key_is_422(app_api: Api, envelope: str) -> None:
    answer = await app_api.post(f"/v1/{envelope}", {envelope: [ITEM[envelope]()], "extra": 1})
    assert_problem(answer, 422)
    assert any("extra" in e["path"] or "extra" in e["message"] for e in answer.body["errors"])


@pytest.mark.parametrize("envelope", ["metrics", "events"])
async def test_an_unknown_item_key_rejects_the_item_naming_the_key(
    app_api: Api, envelope: str
) -> None:
    answer = await app_api.post(
        f"/v1/{envelope}", {envelope: [ITEM[envelope](), ITEM[envelope](colour="red")]}
    )
    assert_rejected(answer, "colour", index=1)
    assert answer.body["accepted"] == 1


@pytest.mark.parametrize("envelope", ["metrics", "events"])
async def test_an_item_that_is_not_an_object_is_rejected(app_api: Api, envelope: str) -> None:
    answer = await app_api.post(f"/v1/{envelope}", {envelope: [ITEM[envelope](), 5, "x", None]})
    no_traceback(answer)
    assert answer.status == 200, answer.text
    assert answer.body["accepted"] == 1
    assert [r["index"] for r in answer.body["rejected"]] == [1, 2, 3]


# --- wrong types ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body,path",
    [
        ({"platform": 5}, "platform"),
        ({"platform": "windows"}, "platform"),
        ({}, "platform"),
        ({"platform": "ios", "push_enabled": "yes"}, "push_enabled"),
        ({"platform": "ios", "environment": "staging"}, "environment"),
        ({"platform": "ios", "customer_id": 42}, "customer_id"),
        ({"platform": "ios", "app_version": ["1"]}, "app_version"),
        ({"platform": "ios", "attributes": {"nested": {"a": 1}}}, "attributes"),
        ({"platform": "ios", "attributes": ["a"]}, "attributes"),
        ({"platform": "ios", "wings": 2}, "wings"),
    ],
    ids=lambda v: json.dumps(v) if isinstance(v, dict) else v,
)
async def test_a_device_field_of_the_wrong_type_is_422_naming_it(
    app_api: Api, body: dict[str, Any], path: str
) -> None:
    answer = await app_api.put("/v1/devices/tok-types", body)
    assert_problem(answer, 422)
    named = [e["path"] for e in answer.body["errors"]]
    assert any(p == path or p.startswith(path + ".") for p in named), answer.body


@pytest.mark.parametrize(
    "body,path",
    [
        ({}, "customer_id"),
        ({"customer_id": 7}, "customer_id"),
        ({"customer_id": "c", "email": 3}, "email"),
        ({"customer_id": "c", "attributes": "x"}, "attributes"),
    ],
)
async def test_an_identify_field_of_the_wrong_type_is_422_naming_it(
    app_api: Api, body: dict[str, Any], path: str
) -> None:
    assert_problem(await app_api.post("/v1/identify", body), 422, path)


@pytest.mark.parametrize(
    "field,value",
    [
        ("id", 5),
        ("metric", 1),
        ("token", ["t"]),
        ("delivery_id", {"a": 1}),
        ("timestamp", [1]),
        ("source", "server"),
        ("action", 3),
    ],
)
async def test_a_metric_field_of_the_wrong_type_rejects_the_item_naming_it(
    app_api: Api, field: str, value: Any
) -> None:
    assert_rejected(
        await app_api.post("/v1/metrics", {"metrics": [metric(**{field: value})]}), field
    )


@pytest.mark.parametrize(
    "field,value",
    [("id", 5), ("name", 1), ("customer_id", 9), ("token", 1), ("properties", "x")],
)
async def test_an_event_field_of_the_wrong_type_rejects_the_item_naming_it(
    app_api: Api, field: str, value: Any
) -> None:
    assert_rejected(await app_api.post("/v1/events", {"events": [event(**{field: value})]}), field)


# --- tokens --------------------------------------------------------------------------------

BAD_TOKENS = {
    "too-long": "a" * 4097,
    "space": "ab cd",
    "newline": "ab\ncd",
    "nul": "ab\x00cd",
    "tab": "ab\tcd",
    "slash": "ab/cd",
    "non-ascii": "tök",
    "empty": "",
}


@pytest.mark.parametrize("case", [c for c in BAD_TOKENS if c not in ("empty", "slash")])
async def test_a_bad_token_in_the_path_is_422(app_api: Api, case: str) -> None:
    answer = await app_api.put(
        f"/v1/devices/{quote(BAD_TOKENS[case], safe='')}", {"platform": "ios"}
    )
    assert_problem(answer, 422, "token")


async def test_a_token_of_4096_characters_is_accepted(app_api: Api, admin_api: Api) -> None:
    token = "A1._:-" * 682 + "abcd"
    assert len(token) == 4096
    answer = await app_api.put(f"/v1/devices/{token}", {"platform": "android"})
    assert answer.status == 201, answer.text
    assert (await admin_api.get(f"/v1/devices/{token}")).status == 200


@pytest.mark.parametrize("case", list(BAD_TOKENS))
async def test_a_bad_token_in_a_metric_rejects_the_item(app_api: Api, case: str) -> None:
    answer = await app_api.post("/v1/metrics", {"metrics": [metric(token=BAD_TOKENS[case])]})
    assert_rejected(answer, "token")
    assert answer.body["accepted"] == 0


@pytest.mark.parametrize("case", ["too-long", "space", "newline"])
async def test_a_bad_token_in_an_event_rejects_the_item(app_api: Api, case: str) -> None:
    answer = await app_api.post("/v1/events", {"events": [event(token=BAD_TOKENS[case])]})
    assert_rejected(answer, "token")


@pytest.mark.parametrize("case", ["too-long", "space", "newline", "empty"])
async def test_a_bad_new_token_on_refresh_is_422(app_api: Api, case: str) -> None:
    assert (await app_api.put("/v1/devices/tok-refresh", {"platform": "ios"})).status == 201
    answer = await app_api.post("/v1/devices/tok-refresh/refresh", {"new_token": BAD_TOKENS[case]})
    assert_problem(answer, 422, "new_token")


# --- ids (1-150 bytes of UTF-8, Customer.io's limit) ---------------------------------------

LONG_IDS = {
    "151-ascii": "x" * 151,
    "76-two-byte": "é" * 76,  # 76 characters, 152 bytes
    "51-three-byte": "€" * 51,  # 51 characters, 153 bytes
    "empty": "",
}
MAX_ID = "é" * 75  # 150 bytes


@pytest.mark.parametrize("field", ["id", "delivery_id"])
@pytest.mark.parametrize("case", list(LONG_IDS))
async def test_a_metric_id_over_150_bytes_rejects_the_item(
    app_api: Api, field: str, case: str
) -> None:
    answer = await app_api.post("/v1/metrics", {"metrics": [metric(**{field: LONG_IDS[case]})]})
    assert_rejected(answer, field)
    assert answer.body["accepted"] == 0


@pytest.mark.parametrize("field", ["id", "customer_id", "anonymous_id"])
@pytest.mark.parametrize("case", list(LONG_IDS))
async def test_an_event_id_over_150_bytes_rejects_the_item(
    app_api: Api, field: str, case: str
) -> None:
    answer = await app_api.post("/v1/events", {"events": [event(**{field: LONG_IDS[case]})]})
    assert_rejected(answer, field)
    assert answer.body["accepted"] == 0


async def test_ids_of_exactly_150_bytes_are_accepted(app_api: Api) -> None:
    answer = await app_api.post("/v1/metrics", {"metrics": [metric(id=MAX_ID, delivery_id=MAX_ID)]})
    assert answer.body == {"accepted": 1, "duplicates": 0, "rejected": []}, answer.text
    answer = await app_api.post(
        "/v1/events", {"events": [event(id=MAX_ID, customer_id=MAX_ID, anonymous_id=MAX_ID)]}
    )
    assert answer.body == {"accepted": 1, "duplicates": 0, "rejected": []}, answer.text


@pytest.mark.parametrize("field", ["customer_id", "anonymous_id"])
@pytest.mark.parametrize("case", list(LONG_IDS))
async def test_a_device_id_over_150_bytes_is_422(app_api: Api, field: str, case: str) -> None:
    answer = await app_api.put("/v1/devices/tok-ids", {"platform": "ios", field: LONG_IDS[case]})
    assert_problem(answer, 422, field)


@pytest.mark.parametrize("field", ["customer_id", "anonymous_id"])
@pytest.mark.parametrize("case", list(LONG_IDS))
async def test_an_identify_id_over_150_bytes_is_422(app_api: Api, field: str, case: str) -> None:
    body = {"customer_id": "cust-ok", field: LONG_IDS[case]}
    assert_problem(await app_api.post("/v1/identify", body), 422, field)


async def test_a_profile_path_id_over_150_bytes_is_422(admin_api: Api) -> None:
    answer = await admin_api.get(f"/v1/profiles/{quote(LONG_IDS['76-two-byte'])}")
    assert_problem(answer, 422, "customer_id")


# --- NUL (U+0000): PostgreSQL's text cannot hold it, so neither engine takes it -------------

WITH_NUL = "a\x00b"
NUL_MESSAGE = "must not contain NUL (U+0000)"


def names_nul(answer: Answer, path: str) -> None:
    errors = (
        answer.body["errors"] if "errors" in answer.body else answer.body["rejected"][0]["errors"]
    )
    assert {"path": path, "message": NUL_MESSAGE} in errors, answer.body


@pytest.mark.parametrize(
    ("envelope", "field"),
    [
        *(("metrics", field) for field in ("id", "delivery_id", "action", "deep_link")),
        *(("events", field) for field in ("id", "name", "customer_id", "anonymous_id")),
    ],
)
async def test_a_nul_in_an_item_rejects_it_naming_the_field(
    app_api: Api, envelope: str, field: str
) -> None:
    answer = await app_api.post(
        f"/v1/{envelope}", {envelope: [ITEM[envelope](**{field: WITH_NUL})]}
    )
    assert_rejected(answer, field)
    names_nul(answer, field)


@pytest.mark.parametrize("field", ["customer_id", "anonymous_id", "app_version", "timezone"])
async def test_a_nul_in_a_device_field_is_422_naming_it(app_api: Api, field: str) -> None:
    answer = await app_api.put("/v1/devices/tok-nul", {"platform": "ios", field: WITH_NUL})
    assert_problem(answer, 422, field)
    names_nul(answer, field)


@pytest.mark.parametrize("field", ["customer_id", "anonymous_id"])
async def test_a_nul_in_an_identify_is_422_naming_the_field(app_api: Api, field: str) -> None:
    answer = await app_api.post("/v1/identify", {"customer_id": "cust-ok", field: WITH_NUL})
    assert_problem(answer, 422, field)
    names_nul(answer, field)


async def test_a_nul_in_a_merge_is_422_naming_the_field(admin_api: Api) -> None:
    answer = await admin_api.post("/v1/profiles/merge", {"primary": WITH_NUL, "secondary": "b"})
    assert_problem(answer, 422, "primary")
    names_nul(answer, "primary")


@pytest.mark.parametrize(
    ("resource", "field"), [("profiles", "customer_id"), ("deliveries", "delivery_id")]
)
async def test_a_nul_in_a_path_id_is_422(admin_api: Api, resource: str, field: str) -> None:
    answer = await admin_api.get(f"/v1/{resource}/{quote(WITH_NUL)}")
    assert_problem(answer, 422, field)
    names_nul(answer, field)


@pytest.mark.parametrize(
    ("properties", "path"),
    [
        ({"note": WITH_NUL}, "properties.note"),
        ({"items": [{"sku": WITH_NUL}]}, "properties.items[0].sku"),
        ({WITH_NUL: 1}, "properties.a\\u0000b"),
    ],
    ids=["value", "nested-value", "key"],
)
async def test_a_nul_in_event_properties_rejects_the_item_naming_where(
    app_api: Api, properties: dict[str, Any], path: str
) -> None:
    """Stored maps are read as jsonb on PostgreSQL (data health, retention), which cannot
    hold NUL."""
    answer = await app_api.post("/v1/events", {"events": [event(properties=properties)]})
    assert_rejected(answer, path)
    names_nul(answer, path)


async def test_a_nul_in_device_attributes_is_422_naming_where(app_api: Api) -> None:
    body = {"platform": "ios", "attributes": {"plan": WITH_NUL}}
    answer = await app_api.put("/v1/devices/tok-nul", body)
    assert_problem(answer, 422, "attributes.plan")
    names_nul(answer, "attributes.plan")


# --- event names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["n" * 101, "é" * 51, ""], ids=["101-ascii", "51-two-byte", "empty"]
)
async def test_an_event_name_over_100_bytes_rejects_the_item(app_api: Api, name: str) -> None:
    answer = await app_api.post("/v1/events", {"events": [event(name=name)]})
    assert_rejected(answer, "name")
    assert answer.body["accepted"] == 0


async def test_an_event_name_of_exactly_100_bytes_is_accepted(app_api: Api) -> None:
    answer = await app_api.post("/v1/events", {"events": [event(name="é" * 50)]})
    assert answer.body == {"accepted": 1, "duplicates": 0, "rejected": []}, answer.text


# --- properties and attributes -------------------------------------------------------------

OVERSIZED_MAPS = {
    "301-keys": {f"k{i}": i for i in range(301)},
    "over-16KB": {f"k{i}": "v" * 900 for i in range(20)},  # ~18 KB, no value over 1000 bytes
    "1001-byte-string": {"note": "x" * 1001},
    "multibyte-string": {"note": "€" * 334},  # 334 characters, 1002 bytes
}


@pytest.mark.parametrize("case", list(OVERSIZED_MAPS))
async def test_oversized_event_properties_reject_the_item(app_api: Api, case: str) -> None:
    answer = await app_api.post("/v1/events", {"events": [event(properties=OVERSIZED_MAPS[case])]})
    assert_rejected(answer, "properties")
    assert answer.body["accepted"] == 0


async def test_a_nested_property_string_over_1000_bytes_rejects_the_item(app_api: Api) -> None:
    properties = {"cart": {"items": [{"title": "ok"}, {"title": "x" * 1001}]}}
    answer = await app_api.post("/v1/events", {"events": [event(properties=properties)]})
    assert_rejected(answer, "properties")


async def test_properties_at_every_limit_are_accepted(app_api: Api) -> None:
    properties = {f"k{i}": i for i in range(299)}
    properties["note"] = "x" * 1000
    answer = await app_api.post("/v1/events", {"events": [event(properties=properties)]})
    assert answer.body == {"accepted": 1, "duplicates": 0, "rejected": []}, answer.text


@pytest.mark.parametrize("case", list(OVERSIZED_MAPS))
async def test_oversized_device_attributes_are_422(app_api: Api, case: str) -> None:
    body = {"platform": "ios", "attributes": OVERSIZED_MAPS[case]}
    answer = await app_api.put("/v1/devices/tok-attrs", body)
    assert_problem(answer, 422)
    assert any(e["path"].startswith("attributes") for e in answer.body["errors"]), answer.body


@pytest.mark.parametrize("case", list(OVERSIZED_MAPS))
async def test_oversized_identify_attributes_are_422(app_api: Api, case: str) -> None:
    body = {"customer_id": "cust-attrs", "attributes": OVERSIZED_MAPS[case]}
    answer = await app_api.post("/v1/identify", body)
    assert_problem(answer, 422)
    assert any(e["path"].startswith("attributes") for e in answer.body["errors"]), answer.body


@pytest.mark.parametrize("depth", [990, 5000])
async def test_deeply_nested_properties_never_cause_a_500(app_api: Api, depth: int) -> None:
    nested = "[" * depth + "]" * depth  # well under 16 KB serialized
    body = '{"events": [{"id": "deep", "name": "x", "customer_id": "c", "properties": {"a": %s}}]}'
    answer = await post_raw(app_api, "/v1/events", body % nested, "application/json")
    no_traceback(answer)
    if answer.status == 200:
        assert answer.body["accepted"] + len(answer.body["rejected"]) == 1
    else:
        assert_problem(answer, answer.status)


@pytest.mark.parametrize("depth", [990, 5000])
async def test_deeply_nested_device_attributes_never_cause_a_500(app_api: Api, depth: int) -> None:
    body = '{"platform": "ios", "attributes": {"a": %s}}' % ("[" * depth + "]" * depth)
    answer = await app_api.request(
        "PUT", "/v1/devices/tok-deep", data=body, headers={"Content-Type": "application/json"}
    )
    no_traceback(answer)
    assert answer.status in (400, 422), answer.text
    assert_problem(answer, answer.status)


# --- routing -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/nothing", "/v2/metrics", "/", "/v1/devices"])
async def test_an_unknown_route_is_a_404_problem(app_api: Api, path: str) -> None:
    assert_problem(await app_api.get(path), 404)


@pytest.mark.parametrize(
    "method,path",
    [("GET", "/v1/metrics"), ("DELETE", "/v1/events"), ("PATCH", "/v1/devices/tok-m")],
)
async def test_a_wrong_method_is_a_405_problem(app_api: Api, method: str, path: str) -> None:
    answer = await app_api.request(method, path)
    assert_problem(answer, 405)
    assert answer.headers.get("Allow"), answer.headers


# --- nothing is ever a 500 -----------------------------------------------------------------

ODD_BODIES = {
    "null": b"null",
    "empty-list": b"[]",
    "zero": b"0",
    "string": b'"x"',
    "empty-object": b"{}",
    "empty-metric": b'{"metrics": [{}]}',
    "empty-event": b'{"events": [{}]}',
    "infinite-timestamp": b'{"metrics": [{"id": "a", "metric": "opened", "token": "t",'
    b' "timestamp": 1e400}]}',
    "huge-int-timestamp": b'{"metrics": [{"id": "a", "metric": "opened", "token": "t",'
    b' "timestamp": 1' + b"0" * 40 + b"}]}",
    "impossible-date": b'{"metrics": [{"id": "a", "metric": "opened", "token": "t",'
    b' "timestamp": "9999-99-99T00:00Z"}]}',
    "negative-timestamp": b'{"events": [{"id": "a", "name": "n", "customer_id": "c",'
    b' "timestamp": -1e308}]}',
    "huge-int-attribute": b'{"platform": "ios", "attributes": {"n": 1' + b"0" * 40 + b"}}",
    "lone-surrogate": b'{"customer_id": "\\ud800"}',
    "bad-email": b'{"customer_id": "c", "email": "no-at-sign"}',
    "null-new-token": b'{"new_token": null}',
    "5000-deep-array": b"[" * 5000 + b"]" * 5000,
    "5000-deep-envelope": b'{"metrics": ' + b"[" * 5000 + b"]" * 5000 + b"}",
}


ODD_TARGETS = [
    ("app", "POST", "/v1/metrics"),
    ("app", "POST", "/v1/events"),
    ("app", "PUT", "/v1/devices/tok-odd"),
    ("app", "POST", "/v1/devices/tok-odd/refresh"),
    ("app", "POST", "/v1/identify"),
    ("admin", "POST", "/v1/profiles/merge"),
]


@pytest.mark.parametrize("role,method,path", ODD_TARGETS)
@pytest.mark.parametrize("case", list(ODD_BODIES))
async def test_odd_bodies_never_cause_a_500(
    relay: RelayServer, role: str, method: str, path: str, case: str
) -> None:
    body = ODD_BODIES[case]
    app = await relay.app_api()
    assert (await app.put("/v1/devices/tok-odd", {"platform": "ios"})).status == 201
    api = app if role == "app" else await relay.admin_api()
    answer = await api.request(
        method, path, data=body, headers={"Content-Type": "application/json"}
    )
    no_traceback(answer)
    if answer.status >= 400:
        assert_problem(answer, answer.status)
