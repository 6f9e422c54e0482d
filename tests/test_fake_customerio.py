"""Specification of the fake Customer.io (relay_fakes) on a real port.

The forwarder's tests trust this fake to accept exactly what Customer.io's published documents
accept (after the errata in customerio.md §10) and to answer the way Customer.io does; these
tests pin that down, using the request shapes from customerio.md §1-§3.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from yarl import URL

from relay_fakes.cio_spec import SPEC_FILES, corrected_spec, load_spec, validator_for
from relay_fakes.fake_customerio import FakeCustomerIO, Reply
from relay_fakes.fake_routes import MAX_BATCH_BYTES, MAX_OPERATION_BYTES
from tests.support import REPO

SITE_ID, API_KEY, CDP_KEY = "site-1", "track-key", "cdp-key"
TOKEN = "f00dcafe" * 8
DELIVERY_ID = "RPILAgUBcRhIBqSfeiIwdIYJKxTY"


def basic(user: str, password: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


TRACK_AUTH = basic(SITE_ID, API_KEY)
CDP_AUTH = basic(CDP_KEY, "")


@dataclass
class Answer:
    status: int
    body: Any
    headers: Any


@dataclass
class Client:
    session: aiohttp.ClientSession
    base_url: str

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
    ) -> Answer:
        if body is not None:
            data = json.dumps(body).encode()
        sent = {"Content-Type": "application/json", **(headers or {})}
        url = URL(self.base_url + path, encoded=True)  # send paths exactly as written
        async with self.session.request(method, url, data=data, headers=sent) as response:
            text = await response.text()
            return Answer(response.status, json.loads(text) if text else None, response.headers)

    async def track(self, method: str, path: str, body: Any = None, **kw: Any) -> Answer:
        return await self.call(method, path, body, headers=TRACK_AUTH, **kw)

    async def batch(self, ops: list[Any]) -> Answer:
        return await self.track("POST", "/api/v2/batch", {"batch": ops})


@pytest.fixture
async def fake() -> AsyncIterator[FakeCustomerIO]:
    async with FakeCustomerIO(site_id=SITE_ID, api_key=API_KEY, cdp_api_key=CDP_KEY) as server:
        yield server


@pytest.fixture
async def client(fake: FakeCustomerIO) -> AsyncIterator[Client]:
    async with aiohttp.ClientSession() as session:
        yield Client(session, fake.url)


# -- shapes from customerio.md §2 ---------------------------------------------------------------

PERSON = {"type": "person", "identifiers": {"id": "cus_1"}}
IDENTIFY = {
    **PERSON,
    "action": "identify",
    "timestamp": 1763900000,
    "attributes": {"email": "ada@example.com", "anonymous_id": "anon-42", "plan": "pro"},
}
ADD_DEVICE = {
    **PERSON,
    "action": "add_device",
    "device": {
        "token": TOKEN,
        "platform": "ios",
        "last_used": 1763900000,
        "attributes": {"push_enabled": "true", "app_version": "5.1.0", "device_os": "iOS 18"},
    },
}
DELETE_DEVICE = {**PERSON, "action": "delete_device", "device": {"token": TOKEN}}
EVENT = {
    **PERSON,
    "action": "event",
    "name": "deep_link_failed",
    "id": "01JDC7E3V9X4Q6W2N8M5K0H1PZ",
    "timestamp": 1763900000,
    "attributes": {"href": "app://orders/7", "delivery_id": DELIVERY_ID},
}
MERGE = {"type": "person", "action": "merge", "primary": {"id": "cus_1"}, "secondary": {"id": "x"}}
DELIVERY = {
    "type": "delivery",
    "action": "event",
    "identifiers": {"id": DELIVERY_ID},
    "name": "opened",
    "attributes": {"device_token": TOKEN},
}
VALID_OPS = [IDENTIFY, ADD_DEVICE, DELETE_DEVICE, EVENT, MERGE, DELIVERY]


def without(op: dict[str, Any], *path: str) -> dict[str, Any]:
    """A deep copy of ``op`` without the key at ``path``."""
    copy = json.loads(json.dumps(op))
    node = copy
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return copy


def changed(op: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {**json.loads(json.dumps(op)), **fields}


MALFORMED_OPS = {
    "add_device without platform": (without(ADD_DEVICE, "device", "platform"), "platform"),
    "add_device with device.id (v1 name)": (
        changed(ADD_DEVICE, device={"id": TOKEN, "platform": "ios"}),
        "token",
    ),
    "add_device with a boolean attribute": (
        changed(ADD_DEVICE, device={**ADD_DEVICE["device"], "attributes": {"push_enabled": True}}),
        "push_enabled",
    ),
    "add_device with platform web": (
        changed(ADD_DEVICE, device={"token": TOKEN, "platform": "web"}),
        "platform",
    ),
    "delete_device without token": (changed(DELETE_DEVICE, device={}), "token"),
    "event without name": (without(EVENT, "name"), "name"),
    "event with a string timestamp": (
        changed(EVENT, timestamp="2026-11-23T10:00:00Z"),
        "timestamp",
    ),
    "identify with two identifiers": (
        changed(IDENTIFY, identifiers={"id": "cus_1", "email": "ada@example.com"}),
        "identifiers",
    ),
    "identify without identifiers": (without(IDENTIFY, "identifiers"), "identifiers"),
    "unknown action": (changed(IDENTIFY, action="upsert"), "action"),
    "merge with empty primary": (changed(MERGE, primary={}), "primary"),
    "delivery without device_token": (changed(DELIVERY, attributes={}), "device_token"),
    "delivery metric clicked (not a push metric)": (changed(DELIVERY, name="clicked"), "name"),
}


# -- Track v2 -----------------------------------------------------------------------------------


async def test_v2_batch_with_every_push_operation_is_accepted(
    fake: FakeCustomerIO, client: Client
) -> None:
    answer = await client.batch(VALID_OPS)

    assert (answer.status, answer.body) == (200, {})
    assert fake.operations() == VALID_OPS
    assert fake.invalid == []
    [request] = fake.requests
    assert (request.method, request.path, request.status) == ("POST", "/api/v2/batch", 200)
    assert request.body == {"batch": VALID_OPS}
    assert request.headers["authorization"] == TRACK_AUTH["Authorization"]


@pytest.mark.parametrize("name", list(MALFORMED_OPS))
async def test_malformed_v2_operation_rejects_the_batch(
    fake: FakeCustomerIO, client: Client, name: str
) -> None:
    op, field_part = MALFORMED_OPS[name]

    answer = await client.batch([IDENTIFY, op])

    assert answer.status == 400, answer.body
    [error, *_] = answer.body["errors"]
    assert error["reason"] == "invalid"
    assert error["field"].startswith("batch.1")
    assert field_part in error["field"] + error["message"]
    assert fake.operations() == []
    [(path, errors)] = fake.invalid
    assert path == "/api/v2/batch" and errors


async def test_v2_error_messages_name_the_field_of_the_selected_operation(client: Client) -> None:
    answer = await client.batch([without(ADD_DEVICE, "device", "platform")])

    assert answer.body == {
        "errors": [
            {
                "reason": "invalid",
                "field": "batch.0.device.platform",
                "message": "'platform' is a required property",
            }
        ]
    }


async def test_v2_entity_takes_one_operation(fake: FakeCustomerIO, client: Client) -> None:
    ok = await client.track("POST", "/api/v2/entity", DELIVERY)
    bad = await client.track("POST", "/api/v2/entity", without(EVENT, "name"))

    assert ok.status == 200
    assert bad.status == 400 and bad.body["errors"][0]["field"] == "name"
    assert fake.operations() == [DELIVERY]


# -- Track v1 -----------------------------------------------------------------------------------


async def test_v1_anonymous_event(fake: FakeCustomerIO, client: Client) -> None:
    event = {
        "name": "push_opened_before_login",
        "anonymous_id": "anon-42",
        "id": "01JDC7E3V9X4Q6W2N8M5K0H1PZ",
        "timestamp": 1763900000,
        "data": {"delivery_id": DELIVERY_ID},
    }
    ok = await client.track("POST", "/api/v1/events", event)
    bad = await client.track("POST", "/api/v1/events", {"anonymous_id": "anon-42", "data": {}})

    assert (ok.status, ok.body) == (200, {})
    assert bad.status == 400
    assert any("'name' is a required property" in e for e in bad.body["meta"]["errors"])
    assert fake.operations() == [{"v1": "POST /api/v1/events", "body": event}]


async def test_v1_push_metric_needs_no_auth_and_passes_the_anyof_correction(
    fake: FakeCustomerIO, client: Client
) -> None:
    metric = {"delivery_id": DELIVERY_ID, "metric": "opened", "recipient": TOKEN, "timestamp": 1}

    answer = await client.call("POST", "/api/v1/metrics", metric)  # no Authorization header

    assert answer.status == 200
    assert fake.operations() == [{"v1": "POST /api/v1/metrics", "body": metric}]
    # The literal document rejects it: push and in-app variants both match its oneOf.
    assert not literal_validator("/api/v1/metrics", load_spec("track")).is_valid(metric)


async def test_v1_metrics_only_require_delivery_id(client: Client) -> None:
    """With the variants read as anyOf, any channel's metric passes: the spec cannot tell a
    push ``clicked`` (no such push metric) from an in-app one."""
    clicked = {"delivery_id": DELIVERY_ID, "metric": "clicked", "recipient": TOKEN}
    assert (await client.call("POST", "/api/v1/metrics", clicked)).status == 200
    bad = await client.call("POST", "/api/v1/metrics", {"metric": "opened"})
    assert bad.body == {"meta": {"errors": ["delivery_id: 'delivery_id' is a required property"]}}


async def test_v1_anonymous_page_event_is_rejected_by_the_published_oneof(client: Client) -> None:
    """§10 does not correct it: ``type: "page"`` matches both the Standard and Page variants."""
    page = {"name": "/pricing", "type": "page", "anonymous_id": "anon-42"}
    answer = await client.track("POST", "/api/v1/events", page)
    assert answer.status == 400


async def test_body_that_is_not_json(fake: FakeCustomerIO, client: Client) -> None:
    answer = await client.track("POST", "/api/v2/batch", data=b'{"batch": [')

    assert answer.status == 400
    assert answer.body["errors"][0]["message"].startswith("body is not valid JSON")
    assert fake.requests[0].body is None and fake.invalid


async def test_v1_merge_customers_requires_an_identifier_per_side(
    fake: FakeCustomerIO, client: Client
) -> None:
    ok = await client.track(
        "POST", "/api/v1/merge_customers", {"primary": {"id": "a"}, "secondary": {"id": "b"}}
    )
    empty = await client.track(
        "POST", "/api/v1/merge_customers", {"primary": {}, "secondary": {"id": "b"}}
    )
    two = await client.track(
        "POST",
        "/api/v1/merge_customers",
        {"primary": {"id": "a", "email": "a@x.io"}, "secondary": {"id": "b"}},
    )

    assert ok.status == 200
    assert empty.status == 400 and empty.body["meta"]["errors"][0].startswith("primary:")
    assert two.status == 400
    assert len(fake.operations()) == 1


async def test_v1_device_calls_and_paths(fake: FakeCustomerIO, client: Client) -> None:
    device = {"device": {"id": TOKEN, "platform": "android", "attributes": {"app_version": "1"}}}
    put = await client.track("PUT", "/api/v1/customers/ada%40example.com/devices", device)
    delete = await client.track("DELETE", f"/api/v1/customers/cus_1/devices/{TOKEN}")
    wrong = await client.track("PUT", "/api/v1/customers/cus_1/devices", {"device": {"id": "t"}})

    assert (put.status, delete.status, wrong.status) == (200, 200, 400)
    assert fake.operations() == [
        {"v1": "PUT /api/v1/customers/ada@example.com/devices", "body": device},
        {"v1": f"DELETE /api/v1/customers/cus_1/devices/{TOKEN}", "body": None},
    ]
    assert fake.requests[0].raw_path == "/api/v1/customers/ada%40example.com/devices"


async def test_v1_identify_attribute_values_are_scalars(client: Client) -> None:
    attributes = {"email": "ada@example.com", "anonymous_id": "anon-42", "created_at": 1}
    ok = await client.track("PUT", "/api/v1/customers/cus_1", attributes)
    nested = await client.track("PUT", "/api/v1/customers/cus_1", {"plan": {"tier": "pro"}})
    fraction = await client.track("PUT", "/api/v1/customers/cus_1", {"score": 1.5})

    assert (ok.status, nested.status, fraction.status) == (200, 400, 400)


async def test_region_names_the_fake_itself(fake: FakeCustomerIO, client: Client) -> None:
    answer = await client.track("GET", "/api/v1/accounts/region")

    assert answer.body == {"url": fake.url, "region": "us", "environment_id": 1}
    assert fake.operations() == []


# -- Pipelines ----------------------------------------------------------------------------------


async def test_pipelines_track_with_user_and_anonymous_id(
    fake: FakeCustomerIO, client: Client
) -> None:
    stitched = {
        "type": "track",
        "userId": "cus_1",
        "anonymousId": "anon-42",
        "event": "Device Created or Updated",
        "context": {"device": {"token": TOKEN, "type": "ios"}},
        "properties": {"push_enabled": "true"},
    }
    metric = {
        "type": "track",
        "anonymousId": DELIVERY_ID,
        "event": "Report Delivery Event",
        "properties": {"metric": "delivered", "deliveryId": DELIVERY_ID, "recipient": TOKEN},
    }

    answers = [
        await client.call("POST", "/v1/track", body, headers=CDP_AUTH)
        for body in (stitched, metric)
    ]
    untyped = await client.call(
        "POST", "/v1/track", {"userId": "u", "event": "x"}, headers=CDP_AUTH
    )

    assert [a.status for a in answers] == [200, 200]
    assert untyped.status == 400 and "type" in untyped.body["meta"]["errors"][0]
    assert fake.operations() == [stitched, metric]


async def test_pipelines_user_variants_overlap_only_literally(client: Client) -> None:
    """userId + anonymousId matches both the Known and the Anonymous variant of a oneOf."""
    call = {"type": "track", "userId": "cus_1", "anonymousId": "anon-42", "event": "Signed In"}

    answer = await client.call("POST", "/v1/track", call, headers=CDP_AUTH)

    assert answer.status == 200
    assert not literal_validator("/track", load_spec("pipelines")).is_valid(call)


async def test_pipelines_batch_items_are_operations(fake: FakeCustomerIO, client: Client) -> None:
    items = [
        {"type": "identify", "userId": "cus_1", "anonymousId": "a", "traits": {"email": "a@x.io"}},
        {"type": "track", "userId": "cus_1", "event": "Device Deleted"},
    ]
    answer = await client.call("POST", "/v1/batch", {"batch": items}, headers=CDP_AUTH)

    assert answer.status == 200
    assert fake.operations() == items


# -- auth ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/api/v2/batch", {}),
        ("/api/v2/batch", basic(SITE_ID, "wrong")),
        ("/api/v2/batch", basic(CDP_KEY, "")),
        ("/api/v2/batch", {"Authorization": f"Bearer {API_KEY}"}),
        ("/v1/batch", basic("wrong", "")),
        ("/v1/batch", TRACK_AUTH),
    ],
)
async def test_bad_credentials_get_401(
    fake: FakeCustomerIO, client: Client, path: str, headers: dict[str, str]
) -> None:
    fake.fail_next(1, 503)

    answer = await client.call("POST", path, {"batch": []}, headers=headers)

    assert answer.status == 401
    assert answer.body == {"meta": {"error": "Unauthorized request"}}
    assert fake.operations() == []
    assert fake.requests[0].status == 401
    assert (
        await client.call("POST", "/api/v2/batch", {"batch": []}, headers=TRACK_AUTH)
    ).status == 503


async def test_credentials_left_unset_are_not_checked(client: Client) -> None:
    async with FakeCustomerIO() as open_fake, aiohttp.ClientSession() as session:
        answer = await Client(session, open_fake.url).call("POST", "/api/v2/batch", {"batch": []})
    assert answer.status == 200


# -- scripted answers ---------------------------------------------------------------------------


async def test_scripted_429_with_retry_after_then_success(
    fake: FakeCustomerIO, client: Client
) -> None:
    fake.script(Reply(status=429, retry_after=7))

    throttled = await client.batch([DELIVERY])
    retried = await client.batch([DELIVERY])

    assert throttled.status == 429 and throttled.headers["Retry-After"] == "7"
    assert "Retry-After" not in retried.headers and retried.status == 200
    assert fake.operations() == [DELIVERY]


async def test_fail_next_answers_503_n_times(fake: FakeCustomerIO, client: Client) -> None:
    fake.fail_next(2)

    statuses = [
        (await client.batch([{**DELIVERY, "name": n}])).status
        for n in ("delivered", "opened", "converted")
    ]

    assert statuses == [503, 503, 200]
    assert fake.operations() == [{**DELIVERY, "name": "converted"}]


async def test_scripted_207_accepts_all_but_the_failed_indexes(
    fake: FakeCustomerIO, client: Client
) -> None:
    fake.script(Reply(status=207, failed_indexes=(1, 3)))

    answer = await client.batch(VALID_OPS)

    assert answer.status == 207
    assert answer.body == {
        "errors": [
            {
                "batch_index": i,
                "reason": "invalid",
                "field": "identifiers",
                "message": "scripted failure",
            }
            for i in (1, 3)
        ]
    }
    assert fake.operations() == [IDENTIFY, DELETE_DEVICE, MERGE, DELIVERY]


async def test_scripted_delay_slows_the_answer(fake: FakeCustomerIO, client: Client) -> None:
    fake.script(Reply(delay=0.3))

    started = time.monotonic()
    answer = await client.batch([DELIVERY])

    assert answer.status == 200 and time.monotonic() - started >= 0.3
    assert fake.operations() == [DELIVERY]


async def test_a_client_that_gives_up_during_a_delay_still_delivered(
    fake: FakeCustomerIO, client: Client
) -> None:
    fake.script(Reply(delay=0.5))

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await client.batch([DELIVERY])
    await asyncio.sleep(0.6)

    assert fake.operations() == [DELIVERY]


async def test_script_path_filter_and_custom_body(fake: FakeCustomerIO, client: Client) -> None:
    fake.script(Reply(status=500, body={"oops": True}), path="/api/v1/customers/{identifier}")

    other = await client.batch([DELIVERY])
    hit = await client.track("PUT", "/api/v1/customers/cus_1", {"plan": "pro"})

    assert other.status == 200
    assert (hit.status, hit.body) == (500, {"oops": True})


async def test_invalid_bodies_do_not_consume_scripted_replies(
    fake: FakeCustomerIO, client: Client
) -> None:
    fake.fail_next(1, 429)

    invalid = await client.batch([without(EVENT, "name")])
    throttled = await client.batch([EVENT])

    assert (invalid.status, throttled.status) == (400, 429)


# -- size limits --------------------------------------------------------------------------------


def event_of_size(size: int) -> dict[str, Any]:
    """A person event whose compact JSON is exactly ``size`` bytes."""
    op = changed(EVENT, attributes={"pad": ""})
    base = len(json.dumps(op, separators=(",", ":")))
    op["attributes"]["pad"] = "x" * (size - base)
    return op


async def test_operation_limit_is_32_kb(fake: FakeCustomerIO, client: Client) -> None:
    fits, too_big = event_of_size(MAX_OPERATION_BYTES), event_of_size(MAX_OPERATION_BYTES + 1)

    assert (await client.batch([fits])).status == 200
    answer = await client.batch([IDENTIFY, too_big])
    entity = await client.track("POST", "/api/v2/entity", too_big)

    assert answer.status == 400 and answer.body["errors"][0]["field"] == "batch.1"
    assert "32000" in answer.body["errors"][0]["message"]
    assert entity.status == 400
    assert fake.operations() == [fits]


async def test_batch_limit_is_500_kb(fake: FakeCustomerIO, client: Client) -> None:
    op = event_of_size(25_000)
    count = MAX_BATCH_BYTES // 25_000  # 20 ops: just over the limit with the envelope
    assert len(json.dumps({"batch": [op] * count})) > MAX_BATCH_BYTES

    over = await client.batch([op] * count)
    under = await client.batch([op] * (count - 1))

    assert over.status == 400 and "500000" in over.body["errors"][0]["message"]
    assert under.status == 200
    assert len(fake.operations()) == count - 1


# -- inspection, control endpoints, unknown paths -----------------------------------------------


async def test_control_endpoints(fake: FakeCustomerIO, client: Client) -> None:
    queued = await client.call(
        "POST", "/_fake/script", [{"status": 429, "retry_after": 2, "path": "/api/v2/batch"}]
    )
    throttled = await client.batch([DELIVERY])
    accepted = await client.batch([DELIVERY])
    requests = await client.call("GET", "/_fake/requests")
    operations = await client.call("GET", "/_fake/operations")
    bad_script = await client.call("POST", "/_fake/script", [{"stauts": 429}])

    assert queued.body == {"queued": 1}
    assert (throttled.status, throttled.headers["Retry-After"], accepted.status) == (429, "2", 200)
    assert [r["status"] for r in requests.body] == [429, 200]
    assert requests.body[0]["body"] == {"batch": [DELIVERY]}
    assert operations.body == [DELIVERY]
    assert bad_script.status == 400

    await client.call("POST", "/_fake/reset")
    assert fake.requests == [] and fake.operations() == []


async def test_unknown_paths_are_recorded_as_invalid(fake: FakeCustomerIO, client: Client) -> None:
    answer = await client.track("POST", "/api/v1/customers/cus_1/devices", {})

    assert answer.status == 404
    assert fake.invalid == [
        (
            "/api/v1/customers/cus_1/devices",
            ["no such Customer.io endpoint: POST /api/v1/customers/cus_1/devices"],
        )
    ]


async def test_request_timestamps_measure_the_client_rate(
    fake: FakeCustomerIO, client: Client
) -> None:
    for _ in range(5):
        await client.batch([DELIVERY])
    await client.call("POST", "/api/v1/metrics", {"delivery_id": "d", "metric": "opened"})

    assert len(fake.timestamps("/api/v2/batch")) == 5
    assert fake.max_rate(window=10.0) == 6
    assert fake.max_rate(window=10.0, path="/api/v2/batch") == 5
    assert fake.max_rate(window=1e-9) == 1
    assert all(r.received_at <= time.time() for r in fake.requests)


async def test_validation_can_be_switched_off_for_benchmarks() -> None:
    async with FakeCustomerIO(validate=False) as fake, aiohttp.ClientSession() as session:
        client = Client(session, fake.url)
        loose = await client.batch([without(EVENT, "name")])
        oversize = await client.batch([event_of_size(MAX_OPERATION_BYTES + 1)])
    assert (loose.status, oversize.status) == (200, 400)


# -- the corrected documents ---------------------------------------------------------------------


def diff_paths(a: Any, b: Any, path: str = "") -> Iterator[str]:
    """JSON pointers where ``a`` and ``b`` differ (key sets compared per object)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(a.keys() | b.keys()):
            if key not in a or key not in b:
                yield f"{path}/{key}"
            else:
                yield from diff_paths(a[key], b[key], f"{path}/{key}")
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from diff_paths(x, y, f"{path}/{i}")
    elif a != b:
        yield path


def test_track_corrections_are_exactly_the_errata() -> None:
    changes = set(diff_paths(load_spec("track"), corrected_spec("track")))

    metrics = "/paths//api/v1/metrics/post/requestBody/content/application/json/schema"
    merge = "/paths//api/v1/merge_customers/post/requestBody/content/application/json/schema"
    expected = {f"{metrics}/oneOf", f"{metrics}/anyOf"} | {
        f"{merge}/properties/{side}/oneOf/{i}/required"
        for side in ("primary", "secondary")
        for i in range(3)
    }
    assert changes == expected


def test_pipelines_corrections_only_turn_oneof_into_anyof() -> None:
    published = json.dumps(load_spec("pipelines"))
    renamed = json.loads(published.replace('"oneOf":', '"anyOf":'))

    assert published.count('"oneOf"') == published.count('"oneOf":') == 18
    assert corrected_spec("pipelines") == renamed


def test_bundled_specs_are_the_published_copies() -> None:
    shared = REPO.parent / "shared" / "specs"
    if not shared.exists():
        pytest.skip("no ../shared/specs next to this checkout")
    for name, file in SPEC_FILES.items():
        assert load_spec(name) == json.loads((shared / file).read_text())


def literal_validator(
    path: str, document: dict[str, Any], method: str = "post"
) -> Draft202012Validator:
    """A plain Draft 2020-12 validator over ``document`` (no dispatch shortcut)."""
    registry = Registry().with_resource("urn:doc", Resource.from_contents(document, DRAFT202012))
    pointer = (
        f"/paths/{path.replace('/', '~1')}/{method}/requestBody/content/application~1json/schema"
    )
    return Draft202012Validator({"$ref": f"urn:doc#{pointer}"}, registry=registry)


@pytest.mark.parametrize("op", VALID_OPS + [op for op, _ in MALFORMED_OPS.values()])
def test_dispatch_shortcut_gives_the_literal_verdict(op: dict[str, Any]) -> None:
    for path, body in (("/api/v2/batch", {"batch": [op]}), ("/api/v2/entity", op)):
        literal = literal_validator(path, corrected_spec("track")).is_valid(body)
        assert (validator_for("POST", path)(body) == []) == literal


def test_validation_speed() -> None:
    """§10 warns validation is slow; the dispatch shortcut keeps a full batch well under 1 s."""
    body = {"batch": (VALID_OPS * 84)[:500]}
    validate = validator_for("POST", "/api/v2/batch")
    validate(body)
    started = time.perf_counter()
    assert validate(body) == []
    assert time.perf_counter() - started < 1.0


# -- the launcher script --------------------------------------------------------------------------


async def test_launcher_serves_logs_and_stops_on_ctrl_c() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "scripts" / "fake_customerio.py"),
            "--port",
            "0",
            "--site-id",
            SITE_ID,
            "--api-key",
            API_KEY,
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stderr is not None
        line = await asyncio.to_thread(process.stderr.readline)
        url = re.search(r"serving on (http://\S+)", line)
        assert url, line
        async with aiohttp.ClientSession() as session:
            client = Client(session, url.group(1))
            assert (await client.batch([DELIVERY])).status == 200
            assert (await client.batch([without(EVENT, "name")])).status == 400
        logged = [await asyncio.to_thread(process.stderr.readline) for _ in range(2)]
        process.send_signal(signal.SIGINT)
        assert await asyncio.to_thread(process.wait, 10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()
    assert "POST /api/v2/batch -> 200 ops=1 accepted=1" in logged[0]
    assert "-> 400 ops=1 accepted=0" in logged[1] and "'name' is a required property" in logged[1]
